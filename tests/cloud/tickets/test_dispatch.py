"""Dispatch: the skilled, on-shift, less-loaded technician in the ticket's zone gets it, with the score kept;
nobody qualified leaves it new and tells staff; staff can override; grab mode lets the first taker win."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.auth.models import Role
from cloud.notify.models import Notification
from cloud.tickets import services
from cloud.tickets.models import (
    Assignment,
    AssignmentMode,
    AssignmentState,
    Category,
    GrabOffer,
    Priority,
    Technician,
    Ticket,
    TicketEvent,
    TicketSiteSettings,
    TicketState,
)
from cloud.tickets.states import TicketError
from cloud.tickets.technicians import add_shift, upsert_technician
from cloud.tickets.timers import TicketTimers
from tests.cloud.api.hub_app import add_user
from tests.cloud.tickets.conftest import NOW, World, at


def staff_ticket(session: Session, w: World, category: Category, *, now=NOW, **where: int) -> Ticket:
    return services.open_from_staff(
        session,
        w.users["engineer_x"],
        site_id=w.ids["site_x"],
        category=category,
        priority=Priority.NORMAL,
        title=f"{category.value} fault",
        now=now,
        **where,
    )


def assignments(session: Session, ticket: Ticket) -> list[Assignment]:
    return list(session.scalars(select(Assignment).where(Assignment.ticket_id == ticket.id).order_by(Assignment.round)))


def test_dispatch_picks_the_skilled_technician_of_the_zone_and_stores_the_score(world: World) -> None:
    with world.session() as s, s.begin():
        ticket = staff_ticket(s, world, Category.PLUMBING, unit_id=world.ids["unit_b"])
        assert ticket.state is TicketState.ASSIGNED
        assert ticket.assignee_id == world.techs["plumber_b2"]
        (a,) = assignments(s, ticket)
        assert (a.mode, a.state, a.round) == (AssignmentMode.AUTO, AssignmentState.OFFERED, 1)
        assert a.score["skill"] == "plumbing"
        assert (a.score["zone"], a.score["shift"], a.score["load"]) == (30, 100, 0)
        assert a.score["total"] == 135  # + 5 for on-time without history
        assert a.deadline_at == NOW + timedelta(seconds=600)
        told = s.scalars(select(Notification).where(Notification.kind == "ticket.assigned")).all()
        assert [n.user_id for n in told] == [world.users["plumber_b2"].id]
        assert "请在 10 分钟内接单" in told[0].title


def test_dispatch_prefers_the_less_loaded_then_the_on_shift_technician_and_never_the_off_duty(world: World) -> None:
    pump = world.ids["equipment_x"]  # no building: neither plumber's zone matches
    with world.session() as s, s.begin():
        first = staff_ticket(s, world, Category.PLUMBING, unit_id=world.ids["unit_b"])
        assert first.assignee_id == world.techs["plumber_b2"]
        second = staff_ticket(s, world, Category.PLUMBING, equipment_id=pump)
        assert second.assignee_id == world.techs["plumber_b1"], "plumber_b2 holds one open ticket already"
        (a,) = assignments(s, second)
        assert a.score["open_tickets"] == 0
        later = NOW + timedelta(hours=11)  # both shifts are over; plumber_b2 has another one
        add_shift(
            s, s.get(Technician, world.techs["plumber_b2"]), later - timedelta(hours=1), later + timedelta(hours=8)
        )
        third = staff_ticket(s, world, Category.PLUMBING, equipment_id=pump, now=later)
        assert third.assignee_id == world.techs["plumber_b2"], "on shift beats a lighter load"
        for name in ("plumber_b1", "plumber_b2"):
            s.get(Technician, world.techs[name]).on_duty = False
        fourth = staff_ticket(s, world, Category.PLUMBING, unit_id=world.ids["unit_b"], now=later)
        assert (fourth.state, fourth.assignee_id) == (TicketState.NEW, None), "off duty: never, and no electrician"
        assert assignments(s, fourth) == []


def test_no_skilled_technician_leaves_the_ticket_new_tells_staff_and_retries_later(world: World) -> None:
    with world.session() as s, s.begin():
        ticket = staff_ticket(s, world, Category.LIFT, unit_id=world.ids["unit_b"])
        assert (ticket.state, ticket.dispatch_round) == (TicketState.NEW, 0)
        assert ticket.next_dispatch_at == NOW + timedelta(minutes=5)
        told = s.scalars(select(Notification).where(Notification.kind == "ticket.no_technician")).all()
        assert [n.user_id for n in told] == [world.users["lead_x"].id], "the team lead dispatches by hand"
        assert "无可派技师" in told[0].title
        actions = s.scalars(select(TicketEvent.action).where(TicketEvent.ticket_id == ticket.id)).all()
        assert actions == ["open", "no_technician"]
        lifty = add_user(s, "lifty", Role.TECHNICIAN, sites=[world.ids["site_x"]])
        tech = upsert_technician(s, lifty, world.ids["site_x"], skills=[Category.LIFT])
        add_shift(s, tech, NOW, NOW + timedelta(hours=8))
        ticket_id = ticket.id
    timers = TicketTimers(world.engine)
    assert timers.run_once(at(4)).dispatched == 0, "not due yet"
    assert timers.run_once(at(5)).dispatched == 1
    with world.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert (ticket.state, ticket.assignee_id, ticket.next_dispatch_at) == (TicketState.ASSIGNED, tech.id, None)
        told = s.scalars(select(Notification).where(Notification.kind == "ticket.no_technician")).all()
        assert len(told) == 1, "staff are told once, not at every retry"


def test_staff_override_withdraws_the_offer_and_keeps_the_score(world: World) -> None:
    with world.session() as s, s.begin():
        ticket = staff_ticket(s, world, Category.PLUMBING, unit_id=world.ids["unit_b"])
        services.assign_manually(s, ticket, world.users["engineer_x"], world.techs["plumber_b1"], at(1))
        first, second = assignments(s, ticket)
        assert first.state is AssignmentState.WITHDRAWN
        assert (second.mode, second.technician_id, second.round) == (
            AssignmentMode.MANUAL,
            world.techs["plumber_b1"],
            2,
        )
        assert second.score["override_by"] == "engineer_x"
        assert second.score["zone"] == 0, "the score it overrode is kept for the record"
        assert ticket.assignee_id == world.techs["plumber_b1"]
        with pytest.raises(TicketError, match="lacks the skill plumbing"):
            services.assign_manually(s, ticket, world.users["engineer_x"], world.techs["electrician"], at(2))
        with pytest.raises(TicketError, match="only admins and engineers may dispatch by hand"):
            services.assign_manually(s, ticket, world.users["plumber_b1"], world.techs["plumber_b2"], at(2))


def test_grab_mode_offers_everyone_qualified_and_the_first_grab_wins(world: World) -> None:
    with world.session() as s, s.begin():
        s.scalars(select(TicketSiteSettings)).one().grab_mode = True
        ticket = staff_ticket(s, world, Category.PLUMBING, unit_id=world.ids["unit_b"])
        assert ticket.state is TicketState.NEW
        offered = s.scalars(select(GrabOffer.technician_id).where(GrabOffer.ticket_id == ticket.id)).all()
        assert sorted(offered) == sorted([world.techs["plumber_b1"], world.techs["plumber_b2"]])
        services.grab(s, ticket, world.users["plumber_b1"], at(1))
        assert (ticket.state, ticket.assignee_id) == (TicketState.ACCEPTED, world.techs["plumber_b1"])
        with pytest.raises(TicketError, match="cannot grab: ticket .* is accepted"):
            services.grab(s, ticket, world.users["plumber_b2"], at(1))
        with pytest.raises(TicketError, match="is not offered to you"):
            other = staff_ticket(s, world, Category.PLUMBING, unit_id=world.ids["unit_b"])
            services.grab(s, other, world.users["electrician"], at(1))
        ticket_id, round_ = ticket.id, ticket.dispatch_round
    with world.session() as s, s.begin(), pytest.raises(IntegrityError):  # the database refuses a second winner
        s.add(
            Assignment(
                ticket_id=ticket_id,
                round=round_,
                technician_id=world.techs["plumber_b2"],
                mode=AssignmentMode.GRAB,
                state=AssignmentState.ACCEPTED,
                score={},
                offered_at=NOW,
            )
        )
        s.flush()


def test_an_ungrabbed_ticket_is_assigned_to_the_best_when_the_offer_ends(world: World) -> None:
    with world.session() as s, s.begin():
        s.scalars(select(TicketSiteSettings)).one().grab_mode = True
        ticket_id = staff_ticket(s, world, Category.PLUMBING, unit_id=world.ids["unit_b"]).id
    TicketTimers(world.engine).run_once(at(10))
    with world.session() as s:
        ticket = s.get(Ticket, ticket_id)
        assert (ticket.state, ticket.assignee_id, ticket.dispatch_round) == (
            TicketState.ASSIGNED,
            world.techs["plumber_b2"],
            2,
        )
        with pytest.raises(TicketError, match="is not offered to you|cannot grab"):
            services.grab(s, ticket, world.users["plumber_b1"], at(11))
