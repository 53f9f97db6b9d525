"""Bucketed queries against hand-computed expectations, before and after the rollups are refreshed."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from cloud.timeseries.query import Bucket, buckets, latest, raw
from cloud.timeseries.rollup import refresh_rollups
from protocols.quantities import PointKind
from tests.cloud.timeseries.tsdata import add, local_ms, new_series

COUNTER, GAUGE = PointKind.COUNTER, PointKind.GAUGE
_KOLKATA, UTC = ZoneInfo("Asia/Kolkata"), ZoneInfo("UTC")


def refresh(engine: Engine) -> None:
    with engine.begin() as conn:
        refresh_rollups(conn)


@pytest.fixture
def meter(engine: Engine) -> int:
    """An energy meter around midnight of 10 March 2024 (Beijing), reset between 01:20 and 01:50."""
    sid = new_series(engine, "energy_import")
    add(engine, sid, [
        (local_ms(2024, 3, 9, 23, 50), 100.0),
        (local_ms(2024, 3, 10, 0, 10), 101.5),  # +1.5 across midnight: belongs to 10 March, hour 00
        (local_ms(2024, 3, 10, 0, 40), 102.0),  # +0.5
        (local_ms(2024, 3, 10, 1, 20), 103.0),  # +1.0
        (local_ms(2024, 3, 10, 1, 50), 2.0),  # reset: flagged, not billed
        (local_ms(2024, 3, 10, 2, 10), 2.5),  # +0.5
        (local_ms(2024, 3, 10, 23, 55), 4.0),  # +1.5
        (local_ms(2024, 3, 11, 0, 5), 4.25),  # +0.25 across midnight: 11 March
    ])  # fmt: skip
    return sid


@pytest.mark.parametrize("refreshed", [False, True], ids=["raw", "rollups"])
def test_counter_hours_bill_positive_deltas_and_flag_the_reset(engine: Engine, meter: int, refreshed: bool) -> None:
    if refreshed:
        refresh(engine)
    with engine.connect() as conn:
        got = buckets(conn, meter, COUNTER, local_ms(2024, 3, 10, 0), local_ms(2024, 3, 10, 4), "hour")
    assert got == [
        Bucket(local_ms(2024, 3, 10, 0), 2, 101.5, 101.75, 102.0, 2.0, 0),
        Bucket(local_ms(2024, 3, 10, 1), 2, 2.0, 52.5, 103.0, 1.0, 1),
        Bucket(local_ms(2024, 3, 10, 2), 1, 2.5, 2.5, 2.5, 0.5, 0),
        Bucket(local_ms(2024, 3, 10, 3), 0, None, None, None, 0.0, 0),
    ]


@pytest.mark.parametrize("refreshed", [False, True], ids=["raw", "rollups"])
def test_counter_days_take_the_step_across_midnight(engine: Engine, meter: int, refreshed: bool) -> None:
    if refreshed:
        refresh(engine)
    with engine.connect() as conn:
        got = buckets(conn, meter, COUNTER, local_ms(2024, 3, 9), local_ms(2024, 3, 12), "day")
    assert [(b.start_ms, b.count, b.consumption, b.decreases) for b in got] == [
        (local_ms(2024, 3, 9), 1, 0.0, 0),
        (local_ms(2024, 3, 10), 6, 5.0, 1),
        (local_ms(2024, 3, 11), 1, 0.25, 0),
    ]


@pytest.mark.parametrize("refreshed", [False, True], ids=["raw", "rollups"])
def test_partial_hours_at_the_range_edges_come_from_raw_samples(engine: Engine, meter: int, refreshed: bool) -> None:
    if refreshed:
        refresh(engine)
    with engine.connect() as conn:
        (day,) = buckets(conn, meter, COUNTER, local_ms(2024, 3, 10, 0, 30), local_ms(2024, 3, 10, 23, 58), "day")
    # 00:40 (+0.5 from the 00:10 sample before the range), hour 01 (+1.0, reset), hour 02 (+0.5), 23:55 (+1.5)
    assert day == Bucket(local_ms(2024, 3, 10), 5, 2.0, 42.7, 103.0, 3.5, 1)


@pytest.mark.parametrize("refreshed", [False, True], ids=["raw", "rollups"])
def test_gauge_min_avg_max_leave_out_of_range_samples_out(engine: Engine, refreshed: bool) -> None:
    sid = new_series(engine, "voltage_a", "voltage_v")
    add(engine, sid, [
        (local_ms(2024, 3, 10, 10, 5), 220.0),
        (local_ms(2024, 3, 10, 10, 20), 230.0),
        (local_ms(2024, 3, 10, 10, 40), 225.0),
        (local_ms(2024, 3, 10, 10, 50), 999.0, 1),  # quality out_of_range
        (local_ms(2024, 3, 10, 11, 30), 210.0),
    ])  # fmt: skip
    if refreshed:
        refresh(engine)
    with engine.connect() as conn:
        hours = buckets(conn, sid, GAUGE, local_ms(2024, 3, 10, 10), local_ms(2024, 3, 10, 12), "hour")
        days = buckets(conn, sid, GAUGE, local_ms(2024, 3, 10), local_ms(2024, 3, 11), "day")
    assert hours == [
        Bucket(local_ms(2024, 3, 10, 10), 3, 220.0, 225.0, 230.0, None, 0),
        Bucket(local_ms(2024, 3, 10, 11), 1, 210.0, 210.0, 210.0, None, 0),
    ]
    assert days == [Bucket(local_ms(2024, 3, 10), 4, 210.0, 221.25, 230.0, None, 0)]


@pytest.mark.parametrize("refreshed", [False, True], ids=["raw", "rollups"])
def test_days_and_months_follow_the_local_calendar(engine: Engine, refreshed: bool) -> None:
    sid = new_series(engine, "water", "water_volume_m3")
    add(engine, sid, [
        (local_ms(2024, 1, 15, 12), 10.0),
        (local_ms(2024, 1, 31, 23, 30), 12.0),  # 15:30 UTC: January in Beijing
        (local_ms(2024, 2, 1, 0, 30), 13.0),  # 16:30 UTC on 31 January, but February in Beijing
        (local_ms(2024, 2, 20), 20.0),
    ])  # fmt: skip
    if refreshed:
        refresh(engine)
    with engine.connect() as conn:
        months = buckets(conn, sid, COUNTER, local_ms(2024, 1, 1), local_ms(2024, 3, 1), "month")
        days = buckets(conn, sid, COUNTER, local_ms(2024, 1, 31), local_ms(2024, 2, 2), "day")
        utc = buckets(conn, sid, COUNTER, local_ms(2024, 1, 1, tz=UTC), local_ms(2024, 3, 1, tz=UTC), "month", tz="UTC")
    assert [(b.start_ms, b.count, b.consumption) for b in months] == [
        (local_ms(2024, 1, 1), 2, 2.0),
        (local_ms(2024, 2, 1), 2, 8.0),
    ]
    assert [(b.start_ms, b.count, b.consumption) for b in days] == [
        (local_ms(2024, 1, 31), 1, 2.0),
        (local_ms(2024, 2, 1), 1, 1.0),
    ]
    # By UTC months the 00:30 sample is still January
    assert [(b.start_ms, b.count, b.consumption) for b in utc] == [
        (local_ms(2024, 1, 1, tz=UTC), 3, 3.0),
        (local_ms(2024, 2, 1, tz=UTC), 1, 7.0),
    ]


def test_hours_follow_local_hours_in_a_half_hour_zone(engine: Engine) -> None:
    sid = new_series(engine, "voltage_b", "voltage_v")
    # Kolkata is UTC+5:30: its hours start at half past UTC hours, so every UTC hour straddles two of them
    add(engine, sid, [(local_ms(2024, 3, 10, m // 60, m % 60, tz=_KOLKATA), float(m)) for m in range(0, 180, 10)])
    refresh(engine)
    with engine.connect() as conn:
        got = buckets(conn, sid, GAUGE, local_ms(2024, 3, 10, tz=_KOLKATA), local_ms(2024, 3, 10, 3, tz=_KOLKATA),
                      "hour", tz="Asia/Kolkata")  # fmt: skip
    assert [(b.start_ms, b.count, b.min, b.max) for b in got] == [
        (local_ms(2024, 3, 10, h, tz=_KOLKATA), 6, 60.0 * h, 60.0 * h + 50) for h in range(3)
    ]


def test_quarter_hours_come_from_raw_samples_and_are_limited_to_a_month(engine: Engine) -> None:
    sid = new_series(engine, "power", "power_kw")
    add(engine, sid, [(local_ms(2024, 3, 10, 0, m), float(m)) for m in (5, 14, 16)])
    refresh(engine)
    with engine.connect() as conn:
        got = buckets(conn, sid, GAUGE, local_ms(2024, 3, 10), local_ms(2024, 3, 10, 0, 45), "15min")
        assert [(b.start_ms, b.count, b.avg) for b in got] == [
            (local_ms(2024, 3, 10), 2, 9.5),
            (local_ms(2024, 3, 10, 0, 15), 1, 16.0),
            (local_ms(2024, 3, 10, 0, 30), 0, None),
        ]
        with pytest.raises(ValueError, match="15min buckets span at most 31 days; asked for 32.0"):
            buckets(conn, sid, GAUGE, local_ms(2024, 3, 1), local_ms(2024, 4, 2), "15min")


def test_late_data_dirties_its_hour_and_the_refresh_catches_up(engine: Engine) -> None:
    sid = new_series(engine, "energy_late")
    add(engine, sid, [(local_ms(2024, 3, 10, 10), 1.0), (local_ms(2024, 3, 10, 10, 30), 2.0),
                      (local_ms(2024, 3, 10, 12, 30), 5.0)])  # fmt: skip
    refresh(engine)
    start, end = local_ms(2024, 3, 10, 10), local_ms(2024, 3, 10, 13)
    with engine.connect() as conn:
        before = buckets(conn, sid, COUNTER, start, end, "hour")
    assert [(b.count, b.consumption) for b in before] == [(2, 1.0), (0, 0.0), (1, 3.0)]

    add(engine, sid, [(local_ms(2024, 3, 10, 11, 30), 4.0)])  # arrives late, after its hour was rolled up
    with engine.connect() as conn:
        assert [(b.count, b.consumption) for b in buckets(conn, sid, COUNTER, start, end, "hour")] == [
            (2, 1.0), (1, 2.0), (1, 1.0),
        ]  # fmt: skip
    with engine.begin() as conn:
        assert refresh_rollups(conn) == 1
    with engine.connect() as conn:
        assert [(b.count, b.consumption) for b in buckets(conn, sid, COUNTER, start, end, "hour")] == [
            (2, 1.0), (1, 2.0), (1, 1.0),
        ]  # fmt: skip


def test_latest_and_raw_return_every_quality(engine: Engine) -> None:
    a, b, empty = new_series(engine, "a"), new_series(engine, "b"), new_series(engine, "c")
    add(engine, a, [(1_000, 1.0), (3_000, 3.0, 1), (2_000, 2.0)])
    add(engine, b, [(5_000, 5.0)])
    with engine.connect() as conn:
        newest = latest(conn, [a, b, empty])
        samples = raw(conn, a, 1_000, 3_001, limit=2)
    assert {k: (v.ts, v.value, v.quality) for k, v in newest.items()} == {a: (3_000, 3.0, 1), b: (5_000, 5.0, 0)}
    assert [(s.ts, s.value, s.quality) for s in samples] == [(1_000, 1.0, 0), (2_000, 2.0, 0)]
