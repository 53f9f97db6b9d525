"""Threshold rules on equipment points: hysteresis, minimum durations, flap window; one alarm and one ticket
per fault episode, whatever the noise."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from cloud.alarms.evaluator import Evaluator
from cloud.alarms.models import AlarmState, RuleKind
from tests.cloud.alarms.helpers import PUMP, add_rule, alarms, every, samples, tickets, transitions
from tests.cloud.api.hub_app import Hub

T = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
STEP = timedelta(seconds=5)
LOW_PRESSURE = {"below": 200, "hysteresis": 20, "raise_after_s": 30, "clear_after_s": 30, "flap_window_s": 120}


def low_pressure_rule(hub: Hub, **params: float) -> int:
    return add_rule(hub, RuleKind.THRESHOLD, "pump-low-pressure", equipment_id=hub.ids["equipment_x"],
                    point="outlet_pressure", params={**LOW_PRESSURE, **params})  # fmt: skip


def feed(hub: Hub, start: datetime, values: list[float]) -> datetime:
    """Store the readings, evaluate as they arrive (one pass per minute of readings); returns the end."""
    evaluator = Evaluator(hub.engine)
    for first in range(0, len(values), 12):
        chunk = values[first : first + 12]
        samples(hub.engine, PUMP, every(start + first * STEP, STEP, chunk))
        evaluator.run_once(start + (first + len(chunk)) * STEP, clock_checks=False)
    return start + len(values) * STEP


def test_noise_around_the_threshold_makes_one_alarm_and_one_ticket(hub: Hub) -> None:
    low_pressure_rule(hub)
    rng = random.Random(5)
    hovering = [200 + rng.uniform(-6, 6) for _ in range(120)]  # crosses 200 dozens of times, never for 30 s
    dropped = [150 + rng.uniform(-5, 5) for _ in range(24)]
    recovering = [212 + rng.uniform(-10, 7) for _ in range(120)]  # back above 200 but inside the 20 kPa band
    recovered = [260 + rng.uniform(-5, 5) for _ in range(24)]
    values = hovering + dropped + hovering + recovering + recovered
    crossings = sum((a < 200) != (b < 200) for a, b in zip(values, values[1:], strict=False))
    assert crossings > 60, "the noise really crosses the threshold many times"

    feed(hub, T, values)

    (alarm,) = alarms(hub.engine)
    assert alarm.state is AlarmState.CLEARED and alarm.flaps == 0
    assert alarm.equipment_id == hub.ids["equipment_x"] and alarm.kind is RuleKind.THRESHOLD
    assert alarm.title.endswith("生活水泵房")
    assert transitions(hub.engine, alarm.id) == [("raised", "active"), ("cleared", "cleared")]
    (ticket,) = tickets(hub.engine)
    assert ticket.alarm_id == alarm.id


def test_a_sustained_drop_raises_after_the_minimum_duration(hub: Hub) -> None:
    low_pressure_rule(hub)
    evaluator = Evaluator(hub.engine)
    samples(hub.engine, PUMP, every(T, STEP, [150.0] * 6))  # 0..25 s below the limit
    evaluator.run_once(T + 6 * STEP, clock_checks=False)
    assert alarms(hub.engine) == [], "25 s below is not yet 30 s"

    samples(hub.engine, PUMP, [(T + 6 * STEP, 149.0)])
    evaluator.run_once(T + 7 * STEP, clock_checks=False)
    (alarm,) = alarms(hub.engine)
    assert alarm.state is AlarmState.ACTIVE and alarm.raised_at == T + 30 * timedelta(seconds=1)
    assert alarm.value == 149.0 and "低于限值 200" in alarm.message


def test_recovery_clears_only_beyond_the_hysteresis_band_for_the_minimum_duration(hub: Hub) -> None:
    low_pressure_rule(hub)
    end = feed(hub, T, [150.0] * 8 + [215.0] * 24)  # above 200 but not above 220: still a fault
    assert alarms(hub.engine)[0].state is AlarmState.ACTIVE
    end = feed(hub, end, [230.0] * 6)  # 25 s above 220
    assert alarms(hub.engine)[0].state is AlarmState.ACTIVE
    feed(hub, end, [231.0])
    (alarm,) = alarms(hub.engine)
    assert alarm.state is AlarmState.CLEARED and alarm.cleared_at == end
    assert tickets(hub.engine)[0].fault_cleared_at is not None, "the ticket was told the fault cleared"


def test_a_fault_back_within_the_flap_window_reopens_the_same_episode(hub: Hub) -> None:
    low_pressure_rule(hub)
    end = feed(hub, T, [150.0] * 8 + [240.0] * 8)  # raised, cleared
    end = feed(hub, end + timedelta(seconds=30), [150.0] * 8)  # back 60 s after it cleared: within 120 s
    (alarm,) = alarms(hub.engine)
    assert alarm.state is AlarmState.ACTIVE and alarm.flaps == 1
    assert [r for r, _ in transitions(hub.engine, alarm.id)] == ["raised", "cleared", "reopened"]
    assert len(tickets(hub.engine)) == 1


def test_a_fault_back_after_the_flap_window_is_a_new_alarm(hub: Hub) -> None:
    low_pressure_rule(hub)
    end = feed(hub, T, [150.0] * 8 + [240.0] * 8)
    feed(hub, end + timedelta(minutes=10), [150.0] * 8)
    first, second = alarms(hub.engine)
    assert first.state is AlarmState.CLEARED and second.state is AlarmState.ACTIVE
    assert second.raised_at > first.cleared_at  # type: ignore[operator]
    assert [t.alarm_id for t in tickets(hub.engine)] == [first.id, second.id], "one ticket per episode"


def test_an_alarm_cleared_by_hand_while_the_fault_persists_is_raised_again(hub: Hub) -> None:
    low_pressure_rule(hub, flap_window_s=0)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)  # a person clears in real time
    feed(hub, start, [150.0] * 8)
    (alarm,) = alarms(hub.engine)
    response = hub.client.post(f"/api/v1/alarms/{alarm.id}/clear", headers=hub.headers("engineer_x"),
                               json={"note": "reset the pump"})  # fmt: skip
    assert response.status_code == 200 and response.json()["state"] == "cleared"
    feed(hub, start + timedelta(minutes=3), [150.0] * 8)
    assert [a.state for a in alarms(hub.engine)] == [AlarmState.CLEARED, AlarmState.ACTIVE]


def test_rules_by_equipment_type_watch_every_such_equipment_and_disabled_rules_nothing(hub: Hub) -> None:
    add_rule(hub, RuleKind.THRESHOLD, "all-pumps", equipment_type="pump", point="outlet_pressure",
             params=LOW_PRESSURE)  # fmt: skip
    add_rule(hub, RuleKind.THRESHOLD, "off", equipment_type="pump", point="outlet_pressure", params=LOW_PRESSURE,
             enabled=False)  # fmt: skip
    feed(hub, T, [150.0] * 8)
    (alarm,) = alarms(hub.engine)
    assert alarm.equipment_id == hub.ids["equipment_x"] and alarm.site_id == hub.ids["site_x"]


def test_samples_are_read_by_cursor_across_restarts(hub: Hub) -> None:
    low_pressure_rule(hub)
    samples(hub.engine, PUMP, every(T, STEP, [150.0] * 4))
    assert Evaluator(hub.engine).run_once(T + 4 * STEP, clock_checks=False).samples == 4
    samples(hub.engine, PUMP, every(T + 4 * STEP, STEP, [150.0] * 4))
    restarted = Evaluator(hub.engine)  # a new process: state and cursor come from the database
    assert restarted.pending()
    assert restarted.run_once(T + 8 * STEP, clock_checks=False).samples == 4
    (alarm,) = alarms(hub.engine)
    assert alarm.raised_at == T + 30 * timedelta(seconds=1), "the 30 s spanned the restart"
    assert not restarted.pending()
