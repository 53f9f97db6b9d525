"""Several hub replicas on one PostgreSQL run the ticket timers at the same moment: every ticket is dispatched
exactly once per round, and an accept timeout re-dispatches it exactly once, to someone else."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select, update

from cloud.db import make_engine, session_factory
from cloud.notify.models import Notification
from cloud.schema import create_schema
from cloud.tickets import services
from cloud.tickets.models import Assignment, Category, Priority, Technician, Ticket, TicketState
from cloud.tickets.timers import TicketTimers
from tests.cloud.api.hub_app import seed
from tests.cloud.tickets.conftest import NOW, add_technicians, at

TICKETS = 40
REPLICAS = 4


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, pool_size=REPLICAS + 2)
    create_schema(engine)
    yield engine
    engine.dispose()


def run_replicas(engine: Engine, now: datetime) -> list[BaseException]:
    """Each replica has its own worker and its own connections; all start the same pass together."""
    start = threading.Barrier(REPLICAS)
    errors: list[BaseException] = []

    def replica() -> None:
        timers = TicketTimers(engine)
        start.wait()
        try:
            timers.run_once(now)
        except Exception as exc:  # reported by the caller's assertion, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(REPLICAS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def rounds_per_ticket(engine: Engine) -> dict[int, list[tuple[int, int]]]:
    with session_factory(engine)() as s:
        rows = s.execute(select(Assignment.ticket_id, Assignment.round, Assignment.technician_id)).all()
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for ticket_id, round_, tech in rows:
        found[ticket_id].append((round_, tech))
    return {k: sorted(v) for k, v in found.items()}


def test_concurrent_replicas_dispatch_each_ticket_once_per_round(pg_engine: Engine) -> None:
    users, ids = seed(pg_engine)
    add_technicians(pg_engine, users, ids)
    sessions = session_factory(pg_engine)
    with sessions.begin() as s:
        s.execute(update(Technician).values(on_duty=False))  # nobody: every ticket waits for the retry
        ticket_ids = [
            services.open_from_staff(
                s,
                users["engineer_x"],
                site_id=ids["site_x"],
                category=Category.PLUMBING,
                priority=Priority.NORMAL,
                title=f"漏水 {n}",
                now=NOW,
                unit_id=ids["unit_a" if n % 2 else "unit_b"],
            ).id
            for n in range(TICKETS)
        ]
        s.execute(update(Technician).values(on_duty=True))
    assert run_replicas(pg_engine, at(5)) == []
    rounds = rounds_per_ticket(pg_engine)
    assert sorted(rounds) == sorted(ticket_ids)
    assert all(len(r) == 1 and r[0][0] == 1 for r in rounds.values()), rounds
    with sessions() as s:
        assert s.scalar(select(func.count()).where(Notification.kind == "ticket.assigned")) == TICKETS
        assert set(s.scalars(select(Ticket.state))) == {TicketState.ASSIGNED}

    assert run_replicas(pg_engine, at(15)) == []  # every offer timed out at 5 + 10 minutes
    rounds = rounds_per_ticket(pg_engine)
    for ticket_id in ticket_ids:
        (r1, first), (r2, second) = rounds[ticket_id]
        assert (r1, r2) == (1, 2)
        assert first != second, "never re-dispatched to the technician who timed out"
    with sessions() as s:
        assert s.scalar(select(func.count()).where(Notification.kind == "ticket.assigned")) == 2 * TICKETS
