"""One contract for every TimeSeriesStore: the SQL store on SQLite and PostgreSQL, InfluxDB when one is given."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from cloud.db import make_engine
from cloud.schema import create_schema
from cloud.timeseries.query import Bucket
from cloud.timeseries.store import Reading, SqlStore, TimeSeriesStore
from protocols.quantities import PointKind
from tests.cloud.timeseries.tsdata import local_ms

INFLUX_SKIP = "INFLUXDB_URL not set: InfluxDB contract not run (no InfluxDB 2.x server can be installed here)"
METER = ("site-1", "edge-1", "dtsu666-3", "energy_import")
VOLTAGE = ("site-1", "edge-1", "dtsu666-3", "voltage_a")


@pytest.fixture(params=["sql-sqlite", "sql-postgresql", "influxdb"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimeSeriesStore]:
    if request.param == "influxdb":
        yield from _influx_store()
        return
    if request.param == "sql-sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'hub.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    create_schema(engine)
    yield SqlStore(engine)
    engine.dispose()


def _influx_store() -> Iterator[TimeSeriesStore]:
    """A fresh bucket on the InfluxDB 2.x server named by INFLUXDB_URL/TOKEN/ORG, deleted afterwards."""
    url = os.environ.get("INFLUXDB_URL")
    if not url:
        pytest.skip(INFLUX_SKIP)
    missing = [name for name in ("INFLUXDB_TOKEN", "INFLUXDB_ORG") if not os.environ.get(name)]
    if missing:
        pytest.fail(f"INFLUXDB_URL is set but {', '.join(missing)} is not")
    from influxdb_client import InfluxDBClient

    from cloud.timeseries.influx import InfluxStore

    token, org = os.environ["INFLUXDB_TOKEN"], os.environ["INFLUXDB_ORG"]
    name = f"eh_test_{uuid.uuid4().hex[:10]}"
    with InfluxDBClient(url=url, token=token, org=org) as admin:
        bucket = admin.buckets_api().create_bucket(bucket_name=name, org=org)
        store = InfluxStore(url, token, org, name)
        try:
            yield store
        finally:
            store.close()
            admin.buckets_api().delete_bucket(bucket)


def energy(ts: int, value: float, quality: int = 0) -> Reading:
    return Reading(METER, "energy_import_kwh", ts, value, quality)


def voltage(ts: int, value: float, quality: int = 0) -> Reading:
    return Reading(VOLTAGE, "voltage_v", ts, value, quality)


def assert_buckets(got: list[Bucket], expected: list[Bucket]) -> None:
    assert [(b.start_ms, b.count, b.min, b.max, b.decreases) for b in got] == [
        (b.start_ms, b.count, b.min, b.max, b.decreases) for b in expected
    ]
    assert [x for b in got for x in (b.avg, b.consumption)] == pytest.approx(
        [x for b in expected for x in (b.avg, b.consumption)]
    )


def test_counter_consumption_per_hour_and_day(store: TimeSeriesStore) -> None:
    store.write([
        energy(local_ms(2024, 3, 9, 23, 50), 100.0),
        energy(local_ms(2024, 3, 10, 0, 10), 101.5),
        energy(local_ms(2024, 3, 10, 0, 40), 102.0),
        energy(local_ms(2024, 3, 10, 0, 45), 5000.0, 1),  # out of range: not aggregated
        energy(local_ms(2024, 3, 10, 1, 20), 103.0),
        energy(local_ms(2024, 3, 10, 1, 50), 2.0),  # reset
        energy(local_ms(2024, 3, 10, 2, 10), 2.5),
    ])  # fmt: skip
    store.write([energy(local_ms(2024, 3, 10, 23, 55), 4.0), energy(local_ms(2024, 3, 11, 0, 5), 4.25)])
    hours = store.buckets(METER, PointKind.COUNTER, local_ms(2024, 3, 10, 0), local_ms(2024, 3, 10, 3), "hour")
    assert_buckets(hours, [
        Bucket(local_ms(2024, 3, 10, 0), 2, 101.5, 101.75, 102.0, 2.0, 0),
        Bucket(local_ms(2024, 3, 10, 1), 2, 2.0, 52.5, 103.0, 1.0, 1),
        Bucket(local_ms(2024, 3, 10, 2), 1, 2.5, 2.5, 2.5, 0.5, 0),
    ])  # fmt: skip
    days = store.buckets(METER, PointKind.COUNTER, local_ms(2024, 3, 9), local_ms(2024, 3, 12), "day")
    assert_buckets(days, [
        Bucket(local_ms(2024, 3, 9), 1, 100.0, 100.0, 100.0, 0.0, 0),
        Bucket(local_ms(2024, 3, 10), 6, 2.0, 52.5, 103.0, 5.0, 1),
        Bucket(local_ms(2024, 3, 11), 1, 4.25, 4.25, 4.25, 0.25, 0),
    ])  # fmt: skip


def test_gauge_months_follow_beijing_time(store: TimeSeriesStore) -> None:
    store.write([
        voltage(local_ms(2024, 1, 31, 23, 30), 220.0),  # still January in Beijing
        voltage(local_ms(2024, 2, 1, 0, 30), 230.0),
        voltage(local_ms(2024, 2, 10), 210.0),
    ])  # fmt: skip
    months = store.buckets(VOLTAGE, PointKind.GAUGE, local_ms(2024, 1, 1), local_ms(2024, 3, 1), "month")
    assert_buckets(months, [
        Bucket(local_ms(2024, 1, 1), 1, 220.0, 220.0, 220.0, None, 0),
        Bucket(local_ms(2024, 2, 1), 2, 210.0, 220.0, 230.0, None, 0),
    ])  # fmt: skip


def test_latest_reading_per_series(store: TimeSeriesStore) -> None:
    store.write([energy(3_000_000, 12.0, 1), voltage(1_000_000, 221.0)])
    store.write([energy(2_000_000, 11.0)])  # older, arriving later
    got = store.latest([METER, VOLTAGE, ("site-1", "edge-1", "dtsu666-3", "unknown")])
    assert {k: (v.ts, v.value, v.quality) for k, v in got.items()} == {
        METER: (3_000_000, 12.0, 1),
        VOLTAGE: (1_000_000, 221.0, 0),
    }


def test_a_series_without_data_has_empty_buckets(store: TimeSeriesStore) -> None:
    got = store.buckets(METER, PointKind.COUNTER, local_ms(2024, 3, 10), local_ms(2024, 3, 10, 2), "hour")
    assert got == [Bucket(local_ms(2024, 3, 10, h), 0, None, None, None, 0.0, 0) for h in range(2)]


def test_quarter_hours_are_limited_to_a_month(store: TimeSeriesStore) -> None:
    with pytest.raises(ValueError, match="15min buckets span at most 31 days; asked for 32.0"):
        store.buckets(VOLTAGE, PointKind.GAUGE, local_ms(2024, 3, 1), local_ms(2024, 4, 2), "15min")
