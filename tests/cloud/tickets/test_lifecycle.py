"""The ticket's life: the state machine refuses what the state does not allow (and says what it does), every step
is in the history with time and actor, the owner hears of each, reopen starts over, cancel needs a reason, an
alarm's ticket goes to verify when the alarm clears, a chargeable repair bills the unit, a rating comes once from
the reporting owner."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.alarms.models import Alarm, AlarmState, RuleKind, Severity
from cloud.billing.models import EntryKind, EntryState, LedgerEntry
from cloud.notify.models import Notification
from cloud.tickets import services
from cloud.tickets.models import Category, ItemKind, Priority, Source, Ticket, TicketEvent, TicketState
from cloud.tickets.states import InvalidTransition, TicketError
from tests.cloud.tickets.conftest import NOW, World, at


def repair(s: Session, w: World, owner: str = "owner_b", unit: str = "unit_b") -> Ticket:
    return services.open_repair_request(
        s, w.users[owner], unit_id=w.ids[unit], category=Category.PLUMBING, description="厨房水管漏水", now=NOW
    )


def work_through(s: Session, w: World, ticket: Ticket) -> None:
    tech = w.users["plumber_b2"]
    services.accept(s, ticket, tech, at(2))
    services.arrive(s, ticket, tech, at(20))
    services.complete(s, ticket, tech, at(50), note="更换三通")


def test_invalid_requests_and_transitions_are_refused_saying_what_is_allowed(world: World) -> None:
    with world.session() as s, s.begin():
        with pytest.raises(TicketError, match=f"unit {world.ids['unit_a']} not found"):
            repair(s, world, owner="owner_b", unit="unit_a")
        with pytest.raises(TicketError, match="describe the problem"):
            services.open_repair_request(
                s,
                world.users["owner_b"],
                unit_id=world.ids["unit_b"],
                category=Category.PLUMBING,
                description=" ",
                now=NOW,
            )
        assert s.scalars(select(Ticket)).all() == [], "refused requests leave nothing"
        ticket = repair(s, world)
        assert ticket.state is TicketState.ASSIGNED
        with pytest.raises(InvalidTransition) as refused:
            services.complete(s, ticket, world.users["plumber_b2"], at(1))
        assert str(refused.value) == (
            f"cannot complete: ticket {ticket.id} is assigned (已派单); complete needs one of: in_progress, verify; "
            "from assigned you may: assign, accept, decline, time_out, fault_cleared, cancel"
        )
        assert refused.value.status == 409
        with pytest.raises(TicketError, match="is not assigned to you"):
            services.accept(s, ticket, world.users["plumber_b1"], at(1))
        with pytest.raises(TicketError, match="only the owner who reported the ticket can rate it"):
            services.rate(s, ticket, world.users["owner_a"], speed=5, attitude=5, quality=5, comment="", now=at(1))
        assert ticket.state is TicketState.ASSIGNED


def test_the_whole_life_is_in_the_history_and_the_owner_hears_of_each_step(world: World) -> None:
    with world.session() as s, s.begin():
        ticket = repair(s, world)
        tech = world.users["plumber_b2"]
        services.accept(s, ticket, tech, at(2))
        services.wait_for_owner(s, ticket, tech, "请确认上门时间", at(5))
        services.resume(s, ticket, world.users["owner_b"], at(15))
        services.arrive(s, ticket, tech, at(20))
        services.complete(s, ticket, tech, at(50), note="更换三通")
        services.follow_up(s, ticket, world.users["engineer_x"], "业主满意", at(60))
        services.close(s, ticket, world.users["engineer_x"], at(61))
        history = s.execute(
            select(TicketEvent.action, TicketEvent.from_state, TicketEvent.to_state, TicketEvent.actor, TicketEvent.at)
            .where(TicketEvent.ticket_id == ticket.id)
            .order_by(TicketEvent.id)
        ).all()
        assert [tuple(h) for h in history] == [
            ("open", None, "new", world.users["owner_b"].username, NOW),
            ("assign", "new", "assigned", "dispatch", NOW),
            ("accept", "assigned", "accepted", "plumber_b2", at(2)),
            ("wait_for_owner", "accepted", "accepted", "plumber_b2", at(5)),
            ("resume", "accepted", "accepted", world.users["owner_b"].username, at(15)),
            ("arrive", "accepted", "in_progress", "plumber_b2", at(20)),
            ("complete", "in_progress", "done", "plumber_b2", at(50)),
            ("follow_up", "done", "follow_up", "engineer_x", at(60)),
            ("close", "follow_up", "closed", "engineer_x", at(61)),
        ]
        told = s.scalars(
            select(Notification.title)
            .where(Notification.user_id == world.users["owner_b"].id)
            .order_by(Notification.id)
        ).all()
        assert told[3] == f"工单 #{ticket.id}「厨房水管漏水」等待您的回复：请确认上门时间"
        del told[3]
        assert [t.rsplit("状态：", 1)[1] for t in told] == [
            "待受理",
            "已派单",
            "已接单",
            "处理中",
            "已完成",
            "回访",
            "已关闭",
        ]
        assert ticket.arrived_at == at(20)
        assert ticket.completed_at == at(50)


def test_reopen_starts_over_with_new_clocks_and_a_new_dispatch(world: World) -> None:
    with world.session() as s, s.begin():
        ticket = repair(s, world)
        work_through(s, world, ticket)
        with pytest.raises(TicketError, match="say why the ticket is reopened"):
            services.reopen(s, ticket, world.users["owner_b"], " ", at(70))
        services.reopen(s, ticket, world.users["owner_b"], "又漏了", at(70))
        assert ticket.state is TicketState.ASSIGNED, "reopened, then dispatched again"
        assert (ticket.reopen_count, ticket.sla_started_at, ticket.accepted_at, ticket.completed_at) == (
            1,
            at(70),
            None,
            None,
        )
        services.accept(s, ticket, world.users[_assignee_name(world, ticket)], at(75))
        assert ticket.accepted_at == at(75)


def _assignee_name(w: World, ticket: Ticket) -> str:
    return next(name for name, tech_id in w.techs.items() if tech_id == ticket.assignee_id)


def test_cancel_needs_a_reason_and_an_owner_cannot_cancel_work_under_way(world: World) -> None:
    with world.session() as s, s.begin():
        ticket = repair(s, world)
        with pytest.raises(TicketError, match="give a reason for cancelling"):
            services.cancel(s, ticket, world.users["owner_b"], "", at(1))
        with pytest.raises(TicketError, match="only admins and engineers may cancel tickets"):
            services.cancel(s, ticket, world.users["plumber_b2"], "不想修", at(1))
        services.accept(s, ticket, world.users["plumber_b2"], at(2))
        services.start(s, ticket, world.users["plumber_b2"], at(3))
        with pytest.raises(TicketError, match="work on ticket .* has started"):
            services.cancel(s, ticket, world.users["owner_b"], "自己修好了", at(4))
        services.cancel(s, ticket, world.users["engineer_x"], "业主自行维修", at(5))
        assert (ticket.state, ticket.cancel_reason, ticket.next_sla_check_at) == (
            TicketState.CANCELLED,
            "业主自行维修",
            None,
        )
        with pytest.raises(InvalidTransition, match=r"is cancelled \(已取消\).*you may: nothing \(it is final\)"):
            services.reopen(s, ticket, world.users["engineer_x"], "再看看", at(6))


def test_rating_only_when_done_only_once_only_by_the_reporting_owner(world: World) -> None:
    with world.session() as s, s.begin():
        ticket = repair(s, world)
        with pytest.raises(TicketError, match="can be rated once it is done or closed"):
            services.rate(s, ticket, world.users["owner_b"], speed=5, attitude=5, quality=5, comment="", now=at(1))
        work_through(s, world, ticket)
        services.rate(s, ticket, world.users["owner_b"], speed=4, attitude=5, quality=3, comment="还行", now=at(60))
        with pytest.raises(TicketError, match="was rated already"):
            services.rate(s, ticket, world.users["owner_b"], speed=1, attitude=1, quality=1, comment="", now=at(61))
        with pytest.raises(TicketError, match="only the owner who reported"):
            services.rate(s, ticket, world.users["engineer_x"], speed=5, attitude=5, quality=5, comment="", now=at(61))


def alarm(s: Session, w: World, key: str = "x") -> Alarm:
    row = Alarm(
        site_id=w.ids["site_x"],
        source_key="rule:1",
        asset_key=f"equipment:{w.ids['equipment_x']}",
        active_key=key,
        kind=RuleKind.THRESHOLD,
        severity=Severity.CRITICAL,
        state=AlarmState.ACTIVE,
        equipment_id=w.ids["equipment_x"],
        title="泵房出水压力低",
        message="outlet_pressure 120 kPa < 150",
        raised_at=NOW,
        flaps=0,
        occurrences=1,
        data={},
    )
    s.add(row)
    s.flush()
    return row


def test_an_alarm_opens_one_ticket_and_its_clearing_moves_it_to_verify(world: World) -> None:
    with world.session() as s, s.begin():
        fault = alarm(s, world)
        ticket = services.open_from_alarm(s, fault, NOW)
        assert services.open_from_alarm(s, fault, at(1)) is ticket, "one ticket per fault episode"
        assert (ticket.source, ticket.category, ticket.priority) == (Source.ALARM, Category.PLUMBING, Priority.URGENT)
        assert (ticket.alarm_id, ticket.equipment_id) == (fault.id, world.ids["equipment_x"])
        assert ticket.state is TicketState.ASSIGNED, "the pump's fault went to a plumber at once"
        services.accept(s, ticket, world.users[_assignee_name(world, ticket)], at(3))
        services.alarm_cleared(s, fault, at(10))
        assert (ticket.state, ticket.fault_cleared_at) == (TicketState.VERIFY, at(10))
        assert services.open_from_alarm(s, fault, at(12)) is ticket, "the episode came back (flapping)"
        assert (ticket.state, ticket.fault_cleared_at) == (TicketState.IN_PROGRESS, None), "back to the technician"
        services.alarm_cleared(s, fault, at(20))
        assert ticket.state is TicketState.VERIFY
        services.complete(s, ticket, world.users["engineer_x"], at(30), note="压力恢复正常，确认关闭")
        assert ticket.state is TicketState.DONE
        services.alarm_cleared(s, fault, at(31))
        assert ticket.state is TicketState.DONE, "a finished ticket stays finished while the fault stays away"
        actions = s.scalars(
            select(TicketEvent.action).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
        )
        assert list(actions) == [
            "open",
            "assign",
            "accept",
            "fault_cleared",
            "start",
            "fault_cleared",
            "complete",
            "fault_cleared",
        ]
        # an episode that clears before anyone accepted goes back to dispatch when it returns
        fault = alarm(s, world, key="y")
        ticket = services.open_from_alarm(s, fault, NOW)
        first = ticket.assignee_id
        services.alarm_cleared(s, fault, at(2))
        assert ticket.state is TicketState.VERIFY
        services.open_from_alarm(s, fault, at(4))
        assert (ticket.state, ticket.dispatch_round) == (TicketState.ASSIGNED, 2)
        assert ticket.assignee_id == first, "the best technician is still the best"


def test_a_chargeable_repair_in_the_unit_creates_a_pending_repair_ledger_entry(world: World) -> None:
    with world.session() as s, s.begin():
        ticket = repair(s, world)
        tech = world.users["plumber_b2"]
        services.accept(s, ticket, tech, at(2))
        services.arrive(s, ticket, tech, at(20))
        with pytest.raises(TicketError, match="add the materials and labour to charge"):
            services.complete(s, ticket, tech, at(40), chargeable=True)
        services.add_item(
            s,
            ticket,
            tech,
            kind=ItemKind.MATERIAL,
            description="三通 DN20",
            quantity=Decimal("2"),
            unit_price_fen=1250,
            now=at(30),
        )
        services.add_item(
            s,
            ticket,
            tech,
            kind=ItemKind.LABOUR,
            description="人工",
            quantity=Decimal("0.333"),
            unit_price_fen=8000,
            now=at(31),
        )
        services.complete(s, ticket, tech, at(40), chargeable=True)
        entry = s.get(LedgerEntry, ticket.ledger_entry_id)
        assert (entry.kind, entry.state, entry.amount_fen, entry.unit_id) == (
            EntryKind.REPAIR,
            EntryState.PENDING,
            2500 + 2664,
            world.ids["unit_b"],
        )
        assert entry.approvals_required == 1
        assert ticket.charge_fen == 5164
