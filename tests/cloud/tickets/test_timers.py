"""The timer worker with a controllable clock: accept timeouts re-dispatch to the next best (never back to the one
who timed out); SLA clocks warn before a breach, escalate to the team lead at the breach and to the manager
later; waiting for the owner and hours outside business hours do not count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.notify.models import Notification
from cloud.tickets import services
from cloud.tickets.models import (
    Assignment,
    AssignmentState,
    Category,
    Priority,
    SlaMark,
    SlaPolicy,
    Ticket,
    TicketEvent,
    TicketSiteSettings,
    TicketState,
)
from cloud.tickets.sla import BusinessHours, advance, clocks, counted_seconds
from cloud.tickets.timers import TicketTimers
from tests.cloud.tickets.conftest import NOW, World, at


def open_plumbing(w: World, priority: Priority = Priority.NORMAL) -> int:
    with w.session() as s, s.begin():
        return services.open_from_staff(
            s,
            w.users["engineer_x"],
            site_id=w.ids["site_x"],
            category=Category.PLUMBING,
            priority=priority,
            title="漏水",
            now=NOW,
            unit_id=w.ids["unit_b"],
        ).id


def notes(s: Session, kind: str) -> list[tuple[int | None, str]]:
    rows = s.scalars(select(Notification).where(Notification.kind == kind).order_by(Notification.id))
    return [(n.user_id, n.title) for n in rows]


def test_accept_timeout_redispatches_to_the_next_best_and_never_back(world: World) -> None:
    ticket_id = open_plumbing(world)
    timers = TicketTimers(world.engine)
    assert timers.run_once(at(9.9)).timeouts == 0
    assert timers.run_once(at(10)).timeouts == 1
    with world.session() as s:
        ticket = s.get(Ticket, ticket_id)
        rounds = s.scalars(select(Assignment).where(Assignment.ticket_id == ticket_id).order_by(Assignment.round)).all()
        assert [(a.round, a.technician_id, a.state) for a in rounds] == [
            (1, world.techs["plumber_b2"], AssignmentState.TIMED_OUT),
            (2, world.techs["plumber_b1"], AssignmentState.OFFERED),
        ]
        assert (ticket.state, ticket.assignee_id) == (TicketState.ASSIGNED, world.techs["plumber_b1"])
        assert [u for u, _ in notes(s, "ticket.assigned")] == [
            world.users["plumber_b2"].id,
            world.users["plumber_b1"].id,
        ]
        history = s.scalars(
            select(TicketEvent.action).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        assert list(history) == ["open", "assign", "time_out", "assign"]
    assert timers.run_once(at(20)).timeouts == 1
    with world.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert (ticket.state, ticket.assignee_id) == (TicketState.NEW, None), "both plumbers passed: nobody left"
        assert [u for u, _ in notes(s, "ticket.no_technician")] == [world.users["lead_x"].id]


def test_an_accepted_offer_does_not_time_out(world: World) -> None:
    ticket_id = open_plumbing(world)
    with world.session() as s, s.begin():
        services.accept(s, services.lock_ticket(s, ticket_id), world.users["plumber_b2"], at(3))
    assert TicketTimers(world.engine).run_once(at(30)).timeouts == 0
    with world.session() as s:
        assert s.get(Ticket, ticket_id).state is TicketState.ACCEPTED


def test_sla_warns_then_escalates_to_the_team_lead_then_the_manager(world: World) -> None:
    with world.session() as s, s.begin():
        s.scalars(select(TicketSiteSettings)).one().accept_timeout_s = 3600
    ticket_id = open_plumbing(world, Priority.URGENT)  # response 15 min: warning at 12, breach 15, level 2 at 22.5
    timers = TicketTimers(world.engine)
    assert timers.run_once(at(11.9)).sla_marks == 0
    assert timers.run_once(at(12)).sla_marks == 1
    with world.session() as s:
        assert notes(s, "ticket.sla_warning") == [
            (world.users["plumber_b2"].id, f"工单 #{ticket_id}「漏水」响应时限即将超时")
        ]
        assert s.get(Ticket, ticket_id).escalation_level == 0
    assert timers.run_once(at(12.5)).sla_marks == 0, "a mark is made once"
    assert timers.run_once(at(15)).sla_marks == 1
    with world.session() as s:
        assert [u for u, _ in notes(s, "ticket.sla_breach")] == [world.users["lead_x"].id]
        assert s.get(Ticket, ticket_id).escalation_level == 1
        assert notes(s, "ticket.sla_level2") == []
    assert timers.run_once(at(22.5)).sla_marks == 1
    with world.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert [u for u, _ in notes(s, "ticket.sla_level2")] == [world.users["admin_x"].id]
        assert ticket.escalation_level == 2
        marks = s.scalars(select(SlaMark.mark).where(SlaMark.ticket_id == ticket_id).order_by(SlaMark.id)).all()
        assert marks == ["warning", "breach", "level2"]
        response, resolution = clocks(ticket, [], None, at(23))
        assert (response.status, response.elapsed_s, response.due_at) == ("breached", 23 * 60, None)
        assert (resolution.status, resolution.due_at) == ("ok", NOW + timedelta(hours=4))
        assert ticket.next_sla_check_at == NOW + timedelta(hours=4) * 0.8, "next: the resolution warning"


def test_waiting_for_the_owner_stops_the_clocks(world: World) -> None:
    ticket_id = open_plumbing(world, Priority.URGENT)  # resolution 4 h
    with world.session() as s, s.begin():
        ticket = services.lock_ticket(s, ticket_id)
        services.accept(s, ticket, world.users["plumber_b2"], at(5))
        services.wait_for_owner(s, ticket, world.users["plumber_b2"], "业主不在家，约明天上午", at(60))
        assert ticket.next_sla_check_at is None, "nothing can fall due while paused"
    timers = TicketTimers(world.engine)
    assert timers.run_once(at(600)).sla_marks == 0
    with world.session() as s, s.begin():
        ticket = services.lock_ticket(s, ticket_id)
        services.resume(s, ticket, world.users["plumber_b2"], at(600))
        _, resolution = clocks(ticket, services.pauses_of(s, ticket), None, at(600))
        assert resolution.elapsed_s == 60 * 60, "9 hours of waiting did not count"
        assert resolution.due_at == at(600 + 180)
    assert timers.run_once(at(600 + 180 * 0.8 - 12)).sla_marks == 1, "the resolution warning, on the paused clock"
    assert timers.run_once(at(779)).sla_marks == 0
    assert timers.run_once(at(780)).sla_marks == 1


def test_business_hours_clocks_skip_nights_and_weekends(world: World) -> None:
    hours = BusinessHours(frozenset({1, 2, 3, 4, 5}), 9 * 60, 18 * 60)
    friday_5pm = datetime(2026, 3, 6, 9, tzinfo=UTC)  # 17:00 in Shanghai
    monday_10am = datetime(2026, 3, 9, 2, tzinfo=UTC)
    assert advance(friday_5pm, 2 * 3600, hours) == monday_10am
    assert counted_seconds(friday_5pm, monday_10am, hours) == 2 * 3600
    with world.session() as s, s.begin():
        settings = s.scalars(select(TicketSiteSettings)).one()
        settings.business_days, settings.business_start_min, settings.business_end_min = [1, 2, 3, 4, 5], 540, 1080
        settings.accept_timeout_s = 7 * 86400
        s.add(
            SlaPolicy(
                site_id=world.ids["site_x"],
                category="plumbing",
                priority=Priority.LOW,
                response_min=120,
                resolution_min=600,
                business_hours=True,
                warn_percent=50,
                level2_percent=200,
            )
        )
        ticket = services.open_from_staff(
            s,
            world.users["engineer_x"],
            site_id=world.ids["site_x"],
            category=Category.PLUMBING,
            priority=Priority.LOW,
            title="水龙头滴水",
            now=friday_5pm,
            unit_id=world.ids["unit_b"],
        )
        assert (ticket.response_target_s, ticket.warn_percent, ticket.business_hours) == (7200, 50, True)
        assert ticket.next_sla_check_at == friday_5pm + timedelta(hours=1), "the warning at 50 %: Friday 18:00"
        ticket_id = ticket.id
    timers = TicketTimers(world.engine)
    timers.run_once(friday_5pm + timedelta(hours=1))
    timers.run_once(friday_5pm + timedelta(days=2))
    with world.session() as s:
        ticket = s.get(Ticket, ticket_id)
        marks = s.scalars(select(SlaMark.mark).where(SlaMark.ticket_id == ticket_id)).all()
        assert marks == ["warning"], "the weekend does not count towards the breach"
        assert ticket.next_sla_check_at == monday_10am
    assert timers.run_once(monday_10am).sla_marks == 1
