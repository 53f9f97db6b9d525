"""Counter registers that go backwards are reported with the right cause, never silently fixed."""

from __future__ import annotations

from pathlib import Path

from edge.counters import CounterTracker, check_counter
from protocols.messages import EventType


def test_forward_and_holding_counters_are_normal() -> None:
    assert check_counter(None, 5.0, None) is None
    assert check_counter(100.0, 100.0, None) is None
    assert check_counter(100.0, 100.5, 99999999.99) is None


def test_wrap_near_the_rollover_point_is_a_rollover_with_its_true_advance() -> None:
    jump = check_counter(99999999.5, 0.7, 99999999.99)
    assert jump is not None and jump.type is EventType.COUNTER_ROLLOVER
    assert "advance 1.19" in jump.message


def test_restart_from_near_zero_is_a_meter_replacement() -> None:
    jump = check_counter(12345.6, 0.2, 99999999.99)
    assert jump is not None and jump.type is EventType.METER_REPLACED
    assert "old final 12345.6, new initial 0.2" in jump.message


def test_small_decrease_is_flagged_not_billed() -> None:
    jump = check_counter(12345.6, 12300.0, None)
    assert jump is not None and jump.type is EventType.COUNTER_DECREASE
    assert "backwards by 45.6" in jump.message


def test_tracker_keeps_one_history_per_device_and_point() -> None:
    tracker = CounterTracker()
    assert tracker.observe("m1", "energy_import", 100.0, None) is None
    assert tracker.observe("m2", "energy_import", 5.0, None) is None
    assert tracker.observe("m1", "energy_import", 101.0, None) is None
    jump = tracker.observe("m1", "energy_import", 1.0, None)
    assert jump is not None and jump.type is EventType.METER_REPLACED
    assert tracker.observe("m1", "energy_import", 2.0, None) is None


def test_a_meter_replaced_while_the_edge_was_off_is_still_noticed(tmp_path: Path) -> None:
    state = tmp_path / "counters.sqlite"
    before = CounterTracker(state)
    before.observe("m1", "energy_import", 5321.5, None)
    before.save()
    before.close()
    after = CounterTracker(state)  # the agent restarted
    jump = after.observe("m1", "energy_import", 0.4, None)
    assert jump is not None and jump.type is EventType.METER_REPLACED
    assert jump.previous == 5321.5
    after.close()
