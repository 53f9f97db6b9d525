"""Alarms from what the edge reports: its own alarms pass straight through, counter events raise per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from cloud.alarms.evaluator import Evaluator
from cloud.alarms.models import AlarmState, RuleKind, Severity
from cloud.db import session_factory
from cloud.ingest.models import EventRow
from cloud.tickets.models import TicketState
from tests.cloud.alarms.helpers import add_rule, alarms, event, tickets, transitions
from tests.cloud.api.hub_app import Hub

T = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
EDGE_RULE = {"rule": "pump-1-low-pressure", "severity": "critical", "limit": 200, "hysteresis": 20}


def test_an_edge_alarm_passes_through_and_its_clear_moves_the_ticket_to_verify(hub: Hub) -> None:
    event(hub.engine, "alarm_raised", T, message="pump-station.outlet_pressure = 150 below 200 for 30s",
          value=150.0, **EDGE_RULE)  # fmt: skip
    Evaluator(hub.engine).run_once(T + timedelta(seconds=1))
    (alarm,) = alarms(hub.engine)
    assert alarm.kind is RuleKind.EDGE_ALARM and alarm.severity is Severity.CRITICAL and alarm.rule_id is None
    assert alarm.equipment_id == hub.ids["equipment_x"] and alarm.site_id == hub.ids["site_x"]
    assert alarm.raised_at == T and alarm.value == 150.0 and alarm.state is AlarmState.ACTIVE
    (ticket,) = tickets(hub.engine)
    assert ticket.alarm_id == alarm.id and ticket.equipment_id == hub.ids["equipment_x"]

    event(hub.engine, "alarm_cleared", T + timedelta(minutes=5), message="back", value=230.0, **EDGE_RULE)
    Evaluator(hub.engine).run_once(T + timedelta(minutes=5, seconds=1))
    (alarm,) = alarms(hub.engine)
    assert alarm.state is AlarmState.CLEARED and alarm.cleared_at == T + timedelta(minutes=5)
    assert transitions(hub.engine, alarm.id) == [("raised", "active"), ("cleared", "cleared")]
    (ticket,) = tickets(hub.engine)
    assert ticket.state is TicketState.VERIFY


def test_a_replayed_edge_alarm_does_not_raise_twice(hub: Hub) -> None:
    evaluator = Evaluator(hub.engine)
    for minute in range(3):  # the edge restarted and raised again; the same alarm stays open
        event(hub.engine, "alarm_raised", T + timedelta(minutes=minute), message="low", value=150.0, **EDGE_RULE)
        evaluator.run_once(T + timedelta(minutes=minute, seconds=1))
    (alarm,) = alarms(hub.engine)
    assert alarm.occurrences == 3 and len(tickets(hub.engine)) == 1


def test_counter_decrease_raises_a_tamper_alarm_per_rule_and_counts_repeats(hub: Hub) -> None:
    add_rule(hub, RuleKind.TAMPER, "reverse-flow", severity=Severity.WARNING)
    add_rule(hub, RuleKind.METER_REPLACED, "replaced", severity=Severity.INFO)
    for minute in (0, 7):
        event(hub.engine, "counter_decrease", T + timedelta(minutes=minute), device="b2-u01-water",
              point="forward_total", message="forward_total decreased", previous=12.5, current=12.1)  # fmt: skip
    event(
        hub.engine,
        "counter_rollover",
        T,
        device="b2-u01-water",
        point="forward_total",
        message="rolled over",
        previous=99999.9,
        current=0.2,
    )  # fmt: skip (no rollover rule: nothing)
    Evaluator(hub.engine).run_once(T + timedelta(minutes=8))
    (alarm,) = alarms(hub.engine)
    assert alarm.kind is RuleKind.TAMPER and alarm.meter_id == hub.ids["water_b"] and alarm.occurrences == 2
    assert alarm.value == 12.1 and alarm.severity is Severity.WARNING


def test_meter_replacement_is_an_informational_alarm_a_person_clears(hub: Hub) -> None:
    add_rule(hub, RuleKind.METER_REPLACED, "replaced", severity=Severity.INFO)
    event(hub.engine, "meter_replaced", T, device="b2-u01-elec", point="energy_import", message="restarted near 0",
          previous=5321.0, current=0.4)  # fmt: skip
    Evaluator(hub.engine).run_once(T + timedelta(seconds=1))
    (alarm,) = alarms(hub.engine)
    assert alarm.severity is Severity.INFO and alarm.meter_id == hub.ids["meter_b"]
    response = hub.client.post(f"/api/v1/alarms/{alarm.id}/clear", headers=hub.headers("engineer_x"))
    assert response.status_code == 200 and response.json()["state"] == "cleared"


def test_events_are_read_once_by_cursor_even_across_a_restart(hub: Hub) -> None:
    add_rule(hub, RuleKind.TAMPER, "reverse-flow")
    event(hub.engine, "counter_decrease", T, device="b2-u01-water", point="forward_total", current=1.0)
    first = Evaluator(hub.engine)
    assert first.run_once(T).events == 1
    assert not first.pending()
    restarted = Evaluator(hub.engine)
    assert restarted.run_once(T).events == 0
    event(hub.engine, "counter_decrease", T, device="b2-u01-water", point="forward_total", current=0.5)
    assert restarted.pending() and restarted.run_once(T).events == 1
    assert alarms(hub.engine)[0].occurrences == 2


def test_an_event_id_committed_late_is_not_skipped(hub: Hub) -> None:
    """PostgreSQL hands out ids before commit: id 2 may commit after id 3 was read. Simulated by inserting the
    lower id afterwards; the evaluator remembered it as a hole and reads it once it appears."""
    add_rule(hub, RuleKind.TAMPER, "reverse-flow")
    row = {"site": "demo-site", "edge": "demo-edge", "ts": int(T.timestamp() * 1000), "type": "counter_decrease",
           "device": "b2-u01-water", "point": "forward_total", "message": "", "data": {"current": 1.0}}  # fmt: skip
    with session_factory(hub.engine).begin() as session:
        session.execute(insert(EventRow), [{**row, "id": 1, "seq": 1}, {**row, "id": 3, "seq": 3}])
    evaluator = Evaluator(hub.engine)
    assert evaluator.run_once(T).events == 2
    with session_factory(hub.engine).begin() as session:
        session.execute(insert(EventRow), [{**row, "id": 2, "seq": 2, "device": "b2-u01-elec",
                                            "point": "energy_import"}])  # fmt: skip
    assert evaluator.pending() and evaluator.run_once(T).events == 1
    assert {a.meter_id for a in alarms(hub.engine)} == {hub.ids["water_b"], hub.ids["meter_b"]}
