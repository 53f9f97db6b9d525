"""Edge threshold alarms: raise after a minimum duration, clear only past the hysteresis band."""

from __future__ import annotations

from edge.config import ThresholdRule
from edge.rules import RuleEngine
from protocols.messages import EventType

LOW_PRESSURE = ThresholdRule(name="low", device="pump-1", point="outlet_pressure", below=200, hysteresis=20, min_duration_s=30)


def feed(engine: RuleEngine, samples: list[tuple[float, float]]) -> list[tuple[float, EventType]]:
    out = []
    for t, value in samples:
        out += [(t, c.type) for c in engine.evaluate("pump-1", "outlet_pressure", value, t)]
    return out


def test_raises_only_after_the_minimum_duration() -> None:
    engine = RuleEngine([LOW_PRESSURE])
    assert feed(engine, [(0, 190), (10, 185), (29, 180)]) == []
    assert feed(engine, [(30, 180)]) == [(30, EventType.ALARM_RAISED)]
    assert engine.active("low")


def test_a_dip_shorter_than_the_minimum_duration_never_raises() -> None:
    engine = RuleEngine([LOW_PRESSURE])
    assert feed(engine, [(0, 190), (20, 250), (25, 190), (50, 190), (54, 300)]) == []


def test_hovering_inside_the_hysteresis_band_does_not_flap() -> None:
    engine = RuleEngine([LOW_PRESSURE])
    events = feed(engine, [(0, 150), (30, 150), (40, 205), (50, 199), (60, 215), (70, 198)])
    assert events == [(30, EventType.ALARM_RAISED)]
    assert feed(engine, [(80, 221)]) == [(80, EventType.ALARM_CLEARED)]


def test_re_raises_after_clearing() -> None:
    engine = RuleEngine([LOW_PRESSURE])
    events = feed(engine, [(0, 150), (30, 150), (40, 260), (50, 150), (80, 150)])
    assert events == [(30, EventType.ALARM_RAISED), (40, EventType.ALARM_CLEARED), (80, EventType.ALARM_RAISED)]


def test_rules_only_see_their_own_point() -> None:
    engine = RuleEngine([LOW_PRESSURE])
    assert engine.evaluate("pump-1", "motor_current", 0.0, 100) == []
    assert engine.evaluate("pump-2", "outlet_pressure", 0.0, 100) == []
