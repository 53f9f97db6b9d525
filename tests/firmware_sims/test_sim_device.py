"""Simulated device values, address rules and data faults, on a fake clock (no wire)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from firmware_sims.clock import FakeClock
from firmware_sims.device import SimulatedDevice
from firmware_sims.faults import Fault, FaultKind
from firmware_sims.load_shape import RESIDENTIAL, DailyShape
from firmware_sims.pdu import ModbusError
from protocols.profiles import available_profiles, load_profile, parse_profile
from protocols.quantities import PointKind

MIDNIGHT_UTC = 1_700_006_400.0  # 2023-11-15 00:00:00 UTC
HOUR = 3600.0


def test_load_shape_is_low_at_night_and_peaks_in_the_evening() -> None:
    shape = DailyShape(utc_offset_s=8 * HOUR)
    local_midnight = MIDNIGHT_UTC - 8 * HOUR
    assert shape.factor(local_midnight + 3 * HOUR) == pytest.approx(0.10)
    assert shape.factor(local_midnight + 19 * HOUR) == pytest.approx(1.00)
    assert shape.factor(local_midnight + 7.5 * HOUR) == pytest.approx(0.65)


def test_load_shape_integral_is_exact_and_additive() -> None:
    shape = DailyShape()
    day = shape.full_load_hours(MIDNIGHT_UTC, MIDNIGHT_UTC + 24 * HOUR)
    assert day == pytest.approx(sum(RESIDENTIAL))
    parts = [shape.full_load_hours(MIDNIGHT_UTC + k * 1234.5, MIDNIGHT_UTC + (k + 1) * 1234.5) for k in range(70)]
    assert sum(parts) == pytest.approx(shape.full_load_hours(MIDNIGHT_UTC, MIDNIGHT_UTC + 70 * 1234.5))


def test_energy_counter_advances_monotonically_at_household_rates() -> None:
    clock = FakeClock(MIDNIGHT_UTC)
    device = SimulatedDevice(load_profile("chint_dtsu666"), 1, seed=3, clock=clock, shape=DailyShape())
    readings = []
    for _ in range(24 * 12):
        readings.append(device.value("energy_import"))
        clock.advance(300)
    steps = [b - a for a, b in pairwise(readings)]
    assert all(step > 0 for step in steps)
    night = sum(steps[12 * 2 : 12 * 5]) / 3  # kWh per hour between 02:00 and 05:00
    evening = sum(steps[12 * 18 : 12 * 21]) / 3
    assert 0.05 < night < 0.3
    assert 0.5 < evening < 2.0
    assert 5 < readings[-1] - readings[0] < 25  # kWh per day of one flat


def test_registers_and_value_agree() -> None:
    clock = FakeClock()
    profile = load_profile("chint_dtsu666")
    device = SimulatedDevice(profile, 1, seed=1, clock=clock)
    point = profile.point("voltage_a")
    assert point.decode(device.read(3, point.address, 2)) == pytest.approx(device.value("voltage_a"), abs=0.05)


def test_same_seed_same_device() -> None:
    profile = load_profile("xintai_water")
    a, b = (SimulatedDevice(profile, 5, seed=9, clock=FakeClock()) for _ in range(2))
    assert a.read(3, 1, 6) == b.read(3, 1, 6)


def test_reserved_registers_inside_the_map_read_zero() -> None:
    device = SimulatedDevice(load_profile("chint_dtsu666"), 1, clock=FakeClock())
    words = device.read(3, 0x2000, 0x30)
    assert words[0x1A:0x2A] == [0] * 16  # between power_c and power_factor
    assert words[0x2A:0x2C] != [0, 0]


@pytest.mark.parametrize(
    ("function", "address", "count"),
    [
        (3, 0x1FFF, 2),  # starts before the first point
        (3, 0x4028, 3),  # runs past the last point
        (4, 0x2000, 2),  # the default variant answers holding registers only
        (1, 0, 1),  # no coils at all
    ],
)
def test_reads_outside_the_map_are_illegal_addresses(function: int, address: int, count: int) -> None:
    device = SimulatedDevice(load_profile("chint_dtsu666"), 1, clock=FakeClock())
    with pytest.raises(ModbusError) as err:
        device.read(function, address, count)
    assert err.value.code == 2


def test_variant_moves_the_registers() -> None:
    device = SimulatedDevice(load_profile("chint_dtsu666", "openems"), 1, clock=FakeClock())
    assert device.read(4, 0x4000, 2) != [0, 0]
    with pytest.raises(ModbusError):
        device.read(3, 0x2000, 2)


def test_unreadable_workaround_ranges_always_fail() -> None:
    data = {
        "id": "quirky",
        "name": "Quirky",
        "version": 1,
        "category": "equipment",
        "points": [
            {"name": "pressure", "quantity": "pressure_kpa", "kind": "gauge", "address": 0, "data_type": "u16"},
            {"name": "temperature", "quantity": "temperature_c", "kind": "gauge", "address": 20, "data_type": "i16"},
        ],
        "workarounds": {"unreadable": [[5, 9]]},
    }
    device = SimulatedDevice(parse_profile(data, "quirky"), 1, clock=FakeClock())
    assert device.read(3, 10, 11)[:10] == [0] * 10
    for address, count in ((0, 21), (9, 1), (4, 2)):
        with pytest.raises(ModbusError) as err:
            device.read(3, address, count)
        assert err.value.code == 2


@pytest.mark.parametrize("profile_id", available_profiles())
def test_every_profile_reads_in_full_per_point(profile_id: str) -> None:
    profile = load_profile(profile_id)
    device = SimulatedDevice(profile, 1, clock=FakeClock())
    for p in profile.points:
        assert len(device.read(p.function, p.address, p.register_count)) == p.register_count


def _water(clock: FakeClock) -> SimulatedDevice:
    return SimulatedDevice(load_profile("xintai_water"), 2, seed=4, clock=clock)


def test_meter_replaced_restarts_counters_from_zero() -> None:
    clock = FakeClock(MIDNIGHT_UTC + 8 * HOUR)
    device = _water(clock)
    assert device.value("forward_total") > 10
    device.set_fault(FaultKind.METER_REPLACED)
    assert device.value("forward_total") == 0.0
    clock.advance(HOUR)
    device.set_fault(None)
    clock.advance(HOUR)
    assert 0 < device.value("forward_total") < 0.5


def test_counter_rollover_wraps_after_the_configured_time() -> None:
    clock = FakeClock(MIDNIGHT_UTC)
    profile = load_profile("acrel_adw300")
    device = SimulatedDevice(profile, 1, clock=clock)
    rollover = profile.point("energy_import").rollover
    assert rollover is not None
    device.set_fault(Fault(kind=FaultKind.COUNTER_ROLLOVER, wrap_after_s=60))
    before = device.value("energy_import")
    assert rollover - 0.1 < before < rollover
    clock.advance(59)
    assert device.value("energy_import") > before
    clock.advance(2)
    assert device.value("energy_import") < 0.01
    assert device.value("energy_export") < 10  # a counter that does not move never reaches its rollover


def test_stuck_freezes_every_value_and_resumes_after() -> None:
    clock = FakeClock()
    profile = load_profile("chint_dtsu666")
    device = SimulatedDevice(profile, 1, clock=clock)
    device.set_fault(FaultKind.STUCK)
    frozen = device.read(3, 0x2000, 0x46)
    clock.advance(600)
    assert device.read(3, 0x2000, 0x46) == frozen
    device.set_fault(None)
    assert device.read(3, 0x2000, 0x46) != frozen


def test_reverse_flow_on_a_water_meter_counts_the_reverse_total() -> None:
    clock = FakeClock(MIDNIGHT_UTC + 10 * HOUR)
    device = _water(clock)
    device.set_fault(FaultKind.REVERSE_FLOW)
    forward, reverse = device.value("forward_total"), device.value("reverse_total")
    assert device.value("flow_rate") < 0
    clock.advance(HOUR)
    assert device.value("forward_total") == forward
    assert device.value("reverse_total") > reverse


def test_reverse_flow_on_an_electricity_meter_runs_it_backwards() -> None:
    clock = FakeClock(MIDNIGHT_UTC + 10 * HOUR)
    device = SimulatedDevice(load_profile("chint_ddsu666"), 2, clock=clock)
    device.set_fault(FaultKind.REVERSE_FLOW)
    before = device.value("energy_import")
    clock.advance(HOUR)
    assert device.value("energy_import") < before
    assert device.value("power") < 0


def test_out_of_range_pushes_gauges_beyond_their_valid_range() -> None:
    profile = load_profile("chint_ddsu666")
    device = SimulatedDevice(profile, 2, clock=FakeClock())
    device.set_fault(FaultKind.OUT_OF_RANGE)
    for p in profile.points:
        if p.kind is PointKind.GAUGE and p.valid_range is not None:
            assert p.out_of_range(p.decode(device.read(p.function, p.address, p.register_count))), p.name


def test_exception_fault_answers_every_read_with_its_code() -> None:
    device = SimulatedDevice(load_profile("chint_dtsu666"), 1, clock=FakeClock())
    device.set_fault(Fault(kind=FaultKind.EXCEPTION, exception_code=6))
    with pytest.raises(ModbusError) as err:
        device.read(3, 0x2000, 2)
    assert err.value.code == 6


def test_scheduled_window_acts_at_its_own_times_even_if_read_late() -> None:
    clock = FakeClock(MIDNIGHT_UTC + 9 * HOUR)
    device = _water(clock)
    start = clock.now + 100
    device.schedule(Fault(kind=FaultKind.METER_REPLACED), start, start + 50)
    device.schedule(Fault(kind=FaultKind.STUCK), start + 1000)
    clock.advance(2000)
    assert device.fault == Fault(kind=FaultKind.STUCK)
    value_when_stuck = device.value("forward_total")
    shape = DailyShape()
    expected = device.traits.peak_m3h * shape.full_load_hours(start, start + 1000)
    assert value_when_stuck == pytest.approx(expected)


def test_manual_fault_is_not_cleared_by_the_end_of_a_window() -> None:
    clock = FakeClock()
    device = _water(clock)
    device.schedule(Fault(kind=FaultKind.NO_RESPONSE), clock.now + 10, clock.now + 20)
    clock.advance(15)
    device.set_fault(FaultKind.BAD_CRC)
    clock.advance(10)
    assert device.fault == Fault(kind=FaultKind.BAD_CRC)
