"""Several hub replicas on one PostgreSQL: evaluators running at the same time never raise an alarm twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from cloud.alarms.evaluator import Evaluator
from cloud.alarms.models import RuleKind, Severity
from cloud.alarms.services import Fault, raise_alarm
from cloud.db import make_engine, session_factory
from tests.cloud.alarms.helpers import PUMP, add_rule, alarms, event, every, samples, tickets, transitions
from tests.cloud.api.hub_app import Hub

T = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
STEP = timedelta(seconds=5)
postgres_only = pytest.mark.parametrize("migrated_url", ["postgresql"], indirect=True)


@postgres_only
def test_two_evaluators_racing_over_the_same_data_raise_once(hub: Hub) -> None:
    add_rule(hub, RuleKind.THRESHOLD, "low", equipment_id=hub.ids["equipment_x"], point="outlet_pressure",
             params={"below": 200, "raise_after_s": 10})  # fmt: skip
    engines = [make_engine(str(hub.engine.url.render_as_string(hide_password=False))) for _ in range(2)]
    replicas = [Evaluator(e) for e in engines]
    ran = [0, 0]
    start = threading.Barrier(2)

    def replica(n: int) -> None:
        start.wait()
        for step in range(40):
            ran[n] += replica_pass(replicas[n], T + step * STEP)

    def replica_pass(evaluator: Evaluator, now: datetime) -> int:
        return int(evaluator.run_once(now, clock_checks=False).ran)

    samples(hub.engine, PUMP, every(T, STEP, [150.0] * 40))
    event(hub.engine, "alarm_raised", T, message="low", rule="edge-low", severity="critical", value=150.0)
    threads = [threading.Thread(target=replica, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert sum(ran) >= 40, "the passes ran (a replica finding the other mid-pass skips that one)"
    kinds = sorted(a.kind.value for a in alarms(hub.engine))
    assert kinds == ["edge_alarm", "threshold"], "each fault raised once"
    for alarm in alarms(hub.engine):
        assert transitions(hub.engine, alarm.id) == [("raised", "active")]
    assert len(tickets(hub.engine)) == 2


@postgres_only
def test_the_database_refuses_a_second_open_alarm_even_without_the_evaluator_lock(hub: Hub) -> None:
    """Two transactions raise the same fault at once; the unique active key lets one in, the other sees it."""
    fault = Fault(site_id=hub.ids["site_x"], source_key="rule:test", asset_key=f"equipment:{hub.ids['equipment_x']}",
                  kind=RuleKind.THRESHOLD, severity=Severity.WARNING, title="t", message="m", flap_window_s=0,
                  equipment_id=hub.ids["equipment_x"])  # fmt: skip
    sessions = session_factory(hub.engine)
    inside, results = threading.Barrier(2), []

    def raise_once() -> None:
        with sessions.begin() as session:
            inside.wait()
            results.append(raise_alarm(session, fault, T, T))

    threads = [threading.Thread(target=raise_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r is None for r in results) == [False, True]
    assert len(alarms(hub.engine)) == 1
