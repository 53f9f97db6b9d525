"""Counter consumption between two instants: interpolated readings, resets, the estimated flag."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from cloud.timeseries.query import Consumption, consumption
from cloud.timeseries.rollup import HOUR_MS, refresh_rollups
from tests.cloud.timeseries.tsdata import add, local_ms, new_series

T0 = local_ms(2024, 3, 10)
MIN = 60_000


def at(hours: float) -> int:
    return T0 + round(hours * HOUR_MS)


@pytest.fixture
def meter(engine: Engine) -> int:
    sid = new_series(engine, "energy")
    add(engine, sid, [(at(0), 100.0), (at(1), 110.0), (at(2), 120.0), (at(3), 150.0)])
    return sid


def test_readings_are_interpolated_between_the_surrounding_samples(engine: Engine, meter: int) -> None:
    with engine.connect() as conn:
        assert consumption(conn, meter, at(0.5), at(2.5)) == Consumption(30.0, 0, 105.0, 135.0, False)
        assert consumption(conn, meter, at(0), at(3)) == Consumption(50.0, 0, 100.0, 150.0, False)
        # the same readings, but the samples around them are further apart than allowed
        sparse = consumption(conn, meter, at(0.5), at(2.5), max_gap_ms=30 * MIN)
        assert sparse == Consumption(30.0, 0, 105.0, 135.0, True)


def test_a_boundary_outside_the_data_takes_the_nearest_reading_and_is_estimated(engine: Engine, meter: int) -> None:
    with engine.connect() as conn:
        assert consumption(conn, meter, at(-1), at(1)) == Consumption(10.0, 0, 100.0, 110.0, True)
        assert consumption(conn, meter, at(2.5), at(5)) == Consumption(15.0, 0, 135.0, 150.0, True)


def test_no_data_at_all(engine: Engine) -> None:
    sid = new_series(engine, "empty")
    with engine.connect() as conn:
        assert consumption(conn, sid, at(0), at(1)) == Consumption(0.0, 0, None, None, True)
        with pytest.raises(ValueError, match="empty range"):
            consumption(conn, sid, at(1), at(1))


@pytest.fixture
def reset_meter(engine: Engine) -> int:
    """Replaced (or reset) between 01:00 and 01:30."""
    sid = new_series(engine, "energy_reset")
    add(engine, sid, [(at(0), 100.0), (at(1), 110.0), (at(1.5), 5.0), (at(2), 8.0), (at(3), 12.0)])
    return sid


def test_a_reset_inside_the_period_is_flagged_not_billed(engine: Engine, reset_meter: int) -> None:
    with engine.connect() as conn:
        # 105 -> 110 (+5) -> 5 (reset) -> 8 (+3) -> 10 (+2): the readings alone would say -95
        assert consumption(conn, reset_meter, at(0.5), at(2.5)) == Consumption(10.0, 1, 105.0, 10.0, False)


def test_a_reset_across_a_boundary_is_not_interpolated(engine: Engine, reset_meter: int) -> None:
    with engine.connect() as conn:
        # where between 01:00 and 01:30 the reset happened is unknown: take the reading before it
        assert consumption(conn, reset_meter, at(1.25), at(2.5)) == Consumption(5.0, 1, 110.0, 10.0, True)


def test_long_periods_read_rollups_and_agree_with_raw_samples(engine: Engine) -> None:
    sid = new_series(engine, "energy_long")
    values = [0.5 * i if i < 200 else 0.25 * (i - 200) for i in range(432)]  # 3 days every 10 min, reset at 200
    add(engine, sid, [(T0 + i * 10 * MIN, v) for i, v in enumerate(values)])
    start, end = T0 + 15 * MIN, T0 + 431 * 10 * MIN - 5 * MIN
    expected = Consumption(0.25 + 0.5 * 197 + 0.25 * 230 + 0.125, 1, 0.75, 57.625, False)
    with engine.connect() as conn:
        assert consumption(conn, sid, start, end) == expected
    with engine.begin() as conn:
        assert refresh_rollups(conn) == 72
    with engine.connect() as conn:
        assert consumption(conn, sid, start, end) == expected
