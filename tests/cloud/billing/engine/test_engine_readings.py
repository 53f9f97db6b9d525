"""Counter samples to billable usage: boundary readings, replacement, rollover, negative deltas, TOU split."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cloud.billing.engine import (
    MeterReplacement,
    Reading,
    Rollover,
    Sample,
    TouPeriod,
    UsageFlag,
    dump_tariff,
    metered_usage,
    parse_tariff,
    reading_at,
    split_tou,
)
from tests.cloud.billing.engine.engine_tariffs import tariff

HOUR = 3_600_000
MINUTE = 60_000
T0 = int(datetime(2026, 10, 31, 16, tzinfo=UTC).timestamp() * 1000)
"""2026-11-01 00:00 in Shanghai."""
PEAK, VALLEY = TouPeriod.PEAK, TouPeriod.VALLEY


def exact(value: str, ts: int = T0) -> Reading:
    return Reading(ts, D(value), "sample", False, 0)


# Boundary readings


def test_reading_interpolated_between_the_samples_around_the_instant() -> None:
    # 15 minutes before and 45 minutes after: 100.00 + (104.00 - 100.00) x 15/60 = 101.00
    samples = [Sample(T0 - 15 * MINUTE, 100.0), Sample(T0 + 45 * MINUTE, 104.0)]
    reading = reading_at(samples, T0)
    assert reading == Reading(T0, D("101.0000"), "interpolated", False, HOUR)


def test_interpolation_rounds_half_up_to_a_ten_thousandth() -> None:
    # 10 + (11 - 10) x 1/3 = 10.33333... -> 10.3333
    samples = [Sample(T0 - 20 * MINUTE, D("10")), Sample(T0 + 40 * MINUTE, D("11"))]
    assert reading_at(samples, T0).value == D("10.3333")  # type: ignore[union-attr]


def test_reading_across_a_gap_longer_than_the_limit_is_estimated() -> None:
    # Edge offline for 6 hours around midnight: 500 + 60 x 2/6 = 520, estimated.
    samples = [Sample(T0 - 2 * HOUR, 500.0), Sample(T0 + 4 * HOUR, 560.0)]
    reading = reading_at(samples, T0)
    assert reading is not None
    assert (reading.value, reading.source, reading.estimated, reading.gap_ms) == (
        D("520"),
        "interpolated",
        True,
        6 * HOUR,
    )
    assert reading_at(samples, T0, max_gap_ms=6 * HOUR).estimated is False  # type: ignore[union-attr]


def test_a_sample_exactly_at_the_instant_is_used_as_is() -> None:
    samples = [Sample(T0 - HOUR, 1.0), Sample(T0, 1234.56), Sample(T0 + HOUR, 1300.0)]
    assert reading_at(samples, T0) == Reading(T0, D("1234.56"), "sample", False, 0)


def test_after_the_last_sample_the_value_is_held_and_estimated_when_far() -> None:
    samples = [Sample(T0 - 10 * MINUTE, 77.5)]
    assert reading_at(samples, T0) == Reading(T0, D("77.5"), "held", False, 10 * MINUTE)
    assert reading_at(samples, T0 + 2 * HOUR).estimated is True  # type: ignore[union-attr]
    assert reading_at([], T0) is None


def test_no_interpolation_across_a_decrease() -> None:
    samples = [Sample(T0 - 10 * MINUTE, 99999.5), Sample(T0 + 10 * MINUTE, 0.4)]
    assert reading_at(samples, T0) == Reading(T0, D("99999.5"), "held", True, 10 * MINUTE)


# Usage from boundary readings


def test_usage_is_end_minus_start() -> None:
    usage = metered_usage(exact("1000.25"), exact("1350.75"))
    assert (usage.quantity, usage.billable, usage.flags) == (D("350.5"), True, frozenset())
    assert usage.detail["start"]["value"] == "1000.25" and usage.detail["end"]["value"] == "1350.75"


def test_estimated_boundary_is_billed_and_flagged() -> None:
    start = Reading(T0, D("520"), "interpolated", True, 6 * HOUR)
    usage = metered_usage(start, exact("600"))
    assert (usage.quantity, usage.billable, usage.flags) == (D("80"), True, {UsageFlag.ESTIMATED})
    assert usage.detail["start"]["estimated"] is True


def test_meter_replacement_bills_old_part_plus_new_part() -> None:
    # (old final - start) + (end - new initial) = (1500 - 1000) + (200 - 0.5) = 500 + 199.5 = 699.5
    replacement = MeterReplacement(T0 + 10 * 24 * HOUR, D("1500"), D("0.5"))
    usage = metered_usage(exact("1000"), exact("200"), replacement=replacement)
    assert (usage.quantity, usage.billable, usage.flags) == (D("699.5"), True, {UsageFlag.REPLACED})
    assert usage.detail["replacement"]["old_part"] == "500.0000"
    assert usage.detail["replacement"]["new_part"] == "199.5000"


def test_rollover_at_the_register_maximum_is_billed_across_the_wrap() -> None:
    # 99999.99 -> 0.00 is one step (0.01): (99999.99 + 0.01 - 99990.00) + 10.00 = 20.00
    usage = metered_usage(exact("99990.00"), exact("10.00"), rollover=Rollover(D("99999.99")))
    assert (usage.quantity, usage.billable, usage.flags) == (D("20"), True, {UsageFlag.ROLLOVER})
    assert usage.detail["rollover"] == {"register_max": "99999.99", "from": "99990.00", "to": "10.00"}


def test_implausible_wrap_is_a_negative_delta_not_billed() -> None:
    # From 50000 down to 10 is no wrap of a 99999.99 register (it was nowhere near the top).
    usage = metered_usage(exact("50000"), exact("10"), rollover=Rollover(D("99999.99")))
    assert (usage.quantity, usage.billable, usage.flags) == (D("0"), False, {UsageFlag.NEGATIVE})
    assert usage.detail["negative_delta"] == "-49990"


def test_decrease_without_a_declared_rollover_is_flagged_and_not_billed() -> None:
    usage = metered_usage(exact("99990.00"), exact("10.00"))
    assert (usage.quantity, usage.billable, usage.flags) == (D("0"), False, {UsageFlag.NEGATIVE})


def test_replacement_whose_new_meter_went_backwards_is_not_billed() -> None:
    replacement = MeterReplacement(T0, D("1500"), D("300"))
    usage = metered_usage(exact("1000"), exact("200"), replacement=replacement)
    assert (usage.billable, usage.flags) == (False, {UsageFlag.REPLACED, UsageFlag.NEGATIVE})
    assert usage.detail["negative_delta"] == "-100.0000"


# Time-of-use split from hourly readings (Shanghai: peak 06:00-22:00, valley 22:00-06:00)


def day_profile(peak_per_hour: D, valley_per_hour: D, days: int, start: D = D("1000")) -> list[D]:
    """Counter readings at each hour boundary from T0 (local midnight) for ``days`` days."""
    readings = [start]
    for hour in range(24 * days):
        local_hour = hour % 24
        readings.append(readings[-1] + (peak_per_hour if 6 <= local_hour < 22 else valley_per_hour))
    return readings


def test_split_follows_the_local_clock_windows() -> None:
    # A day: 16 peak hours x 1.5 = 24, 8 valley hours x 0.25 = 2; total 26.
    readings = day_profile(D("1.5"), D("0.25"), 1)
    split = split_tou(tariff("shanghai_electricity_tou"), T0, readings, D("26"))
    assert split.usage == {PEAK: D("24"), VALLEY: D("2")}
    assert (split.missing_hours, split.decreases, split.by_clock) == (0, 0, False)


def test_split_of_a_month_from_hourly_floats_sums_exactly_to_the_billed_total() -> None:
    # 30 days x (16 x 0.7 + 8 x 0.3 = 13.6) = 408 kWh; floats as the rollups hand them over.
    readings = [float(r) for r in day_profile(D("0.7"), D("0.3"), 30, D("12345.6"))]
    split = split_tou(tariff("shanghai_electricity_tou"), T0, readings, D("408"))
    assert split.usage == {PEAK: D("336"), VALLEY: D("72")}


def test_split_when_start_is_not_local_midnight() -> None:
    # From 21:00 local for 3 hours: 21-22 peak (2 kWh), 22-24 valley (2 x 0.5 kWh).
    start = T0 + 21 * HOUR
    split = split_tou(tariff("shanghai_electricity_tou"), start, [D("10"), D("12"), D("12.5"), D("13")], D("3"))
    assert split.usage == {PEAK: D("2"), VALLEY: D("1")}


def test_split_at_a_half_hour_change_takes_the_mean_of_the_hour_readings() -> None:
    half = {
        **dump_tariff(tariff("shanghai_electricity_tou")),
        "tou": [
            {"period": "peak", "windows": [{"start": "06:00", "end": "21:30"}]},
            {"period": "valley", "windows": [{"start": "21:30", "end": "06:00"}]},
        ],
    }
    # 21:00 -> 22:00 the counter moves 2 kWh: 1 to peak (21:00-21:30), 1 to valley (21:30-22:00).
    split = split_tou(parse_tariff(half), T0 + 21 * HOUR, [D("10"), D("12")], D("2"))
    assert split.usage == {PEAK: D("1"), VALLEY: D("1")}


def test_missing_hours_are_interpolated_and_counted() -> None:
    readings: list[D | None] = list(day_profile(D("1"), D("1"), 1))
    readings[5] = readings[6] = readings[7] = None  # 05:00-07:00 lost: 06:00 change read as 1006, linear
    split = split_tou(tariff("shanghai_electricity_tou"), T0, readings, D("24"))
    assert split.usage == {PEAK: D("16"), VALLEY: D("8")}
    assert split.missing_hours == 3


def test_a_glitch_inside_a_window_does_not_matter() -> None:
    # Only the readings where the period changes (06:00, 22:00) and the ends are used.
    readings = day_profile(D("1"), D("1"), 1)
    readings[23] = D("0")
    split = split_tou(tariff("shanghai_electricity_tou"), T0, readings, D("24"))
    assert split.usage == {PEAK: D("16"), VALLEY: D("8")}
    assert split.decreases == 0


def test_a_decrease_is_left_out_of_the_proportions_but_the_total_is_kept() -> None:
    # A bad reading at 06:00: 00:00-06:00 goes down (left out), 06:00-22:00 counts 1022 - 0 for peak.
    readings = day_profile(D("1"), D("1"), 1)
    readings[6] = D("0")
    split = split_tou(tariff("shanghai_electricity_tou"), T0, readings, D("24"))
    assert split.decreases == 1
    assert sum(split.usage.values()) == D("24")


def test_no_hourly_data_spreads_the_total_by_clock_hours() -> None:
    # 16 peak hours : 8 valley hours of 30 kWh -> 20 : 10
    split = split_tou(tariff("shanghai_electricity_tou"), T0, [None] * 25, D("30"))
    assert split.usage == {PEAK: D("20"), VALLEY: D("10")}
    assert split.by_clock is True and split.missing_hours == 25


def test_split_input_errors_are_explained() -> None:
    with pytest.raises(ValueError, match="not on a UTC hour boundary"):
        split_tou(tariff("shanghai_electricity_tou"), T0 + 1, [D("1"), D("2")], D("1"))
    with pytest.raises(ValueError, match="has no time of use to split by"):
        split_tou(tariff("beijing_electricity"), T0, [D("1"), D("2")], D("1"))


def test_split_follows_local_clock_across_a_daylight_saving_change() -> None:
    # Not Shanghai, but the clock rule must hold where offsets change: Berlin, 28-29 March 2026 (the 29th has
    # 23 hours). 1 kWh every hour for 47 hours: peak 06:00-22:00 is 16 h on both days, valley 8 h + 7 h.
    start = int(datetime(2026, 3, 27, 23, tzinfo=UTC).timestamp() * 1000)
    readings = [D(hour) for hour in range(48)]
    split = split_tou(tariff("shanghai_electricity_tou"), start, readings, D("47"), tz="Europe/Berlin")
    assert split.usage == {PEAK: D("32"), VALLEY: D("15")}
