"""Issuing a month of bills for 100,000 units on PostgreSQL: `billrun_100k_units_s`.

A scratch database gets one site of 100 buildings x 1,000 flats. Each flat has an electricity meter billed
with monthly tiers and time of use (Beijing thresholds, peak 06:00-22:00 / valley) and a water meter billed
with monthly tiers and three components; each building has a master meter (its loss is a pool by usage), a
common meter read by hand (a pool by floor area), and the site charges a property fee by area.

Telemetry is generated inside PostgreSQL straight into ``rollup_hours`` (INSERT ... SELECT from generate_series,
primary and foreign key built once afterwards; about 4 minutes for 100,000 units), as the rollup worker would have
written it: electricity meters (flats and masters) sampled every 15 minutes at a per-meter offset, one row per hour
from the hour before the month to the hour after it (75 million rows), each flat with its own random daily profile
(one in 50 vacant), a few offline over the start or end of the month (held, estimated readings), a few with two days
missing mid-month and a few whose counter drops (a negative delta, not billed); water meters report daily. A bill
run reads rollups only, so raw samples would only cost seeding time. The figure is the wall time of
``execute_run`` for the issue, rollup refresh and all writes included; its phases (refresh, load, compute, write)
are printed to stderr. The database is dropped after.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import psycopg

from cloud.audit.services import Actor
from cloud.billing.engine import AllocationMethod
from cloud.billing.models import PoolKind, TariffKind
from cloud.billing.pools import create_pool
from cloud.billing.runs import execute_run, start_run
from cloud.billing.tariffs import create_tariff
from cloud.db import make_engine, session_factory
from cloud.registry.models import Meter, Site
from cloud.schema import create_schema

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
UNITS = int(os.environ.get("BILLRUN_UNITS", "100000"))
PER_BUILDING = 1_000
PERIOD = "2026-10"
START_MS = int(datetime(2026, 9, 30, 16, tzinfo=UTC).timestamp() * 1000)
"""1 October 2026 00:00 in Beijing."""
END_MS = START_MS + 744 * 3_600_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

ELECTRICITY = {
    "utility": "electricity",
    "name": "阶梯峰谷电价",
    "unit": "kWh",
    "tiers": [
        {"up_to": "240", "tou": {"peak": "0.5583", "valley": "0.2883"}},
        {"up_to": "400", "tou": {"peak": "0.6083", "valley": "0.3383"}},
        {"tou": {"peak": "0.8583", "valley": "0.5883"}},
    ],
    "tou": [
        {"period": "peak", "windows": [{"start": "06:00", "end": "22:00"}]},
        {"period": "valley", "windows": [{"start": "22:00", "end": "06:00"}]},
    ],
}
WATER = {
    "utility": "water",
    "name": "阶梯水价",
    "unit": "m3",
    "components": [
        {"code": "supply", "label": "水费", "label_en": "supply"},
        {"code": "resource", "label": "水资源费", "label_en": "resource fee"},
        {"code": "sewage", "label": "污水处理费", "label_en": "sewage"},
    ],
    "tiers": [
        {"up_to": "15", "components": {"supply": "2.07", "resource": "1.57", "sewage": "1.36"}},
        {"up_to": "22", "components": {"supply": "4.07", "resource": "1.57", "sewage": "1.36"}},
        {"components": {"supply": "6.07", "resource": "1.57", "sewage": "1.36"}},
    ],
}
COMMON = {"utility": "electricity", "name": "公共用电", "unit": "kWh", "tiers": [{"price": "0.617"}]}


def _seed_registry(conn: psycopg.Connection) -> None:
    """Registry rows in bulk (SQL generate_series): ids are predictable, so meters and devices line up."""
    buildings = UNITS // PER_BUILDING
    sql = [
        "INSERT INTO sites (id, code, name) VALUES (1, 'bench', '压测小区')",
        "INSERT INTO edges (id, site_id, code) VALUES (1, 1, 'edge')",
        f"INSERT INTO buildings (id, site_id, code, name) SELECT b, 1, 'B' || b, b || '号楼' "
        f"FROM generate_series(1, {buildings}) b",
        f"INSERT INTO units (id, site_id, building_id, code, floor, floor_area_m2, household_size) "
        f"SELECT u, 1, (u - 1) / {PER_BUILDING} + 1, 'U' || u, ((u - 1) % {PER_BUILDING}) / 4 + 1, "
        f"60 + (u % 9) * 10.25, 1 + u % 6 FROM generate_series(1, {UNITS}) u",
        # masters 1..B, commons B+1..2B, electricity 2B+u, water 2B+UNITS+u
        f"INSERT INTO meters (id, site_id, code, kind, role) SELECT b, 1, 'EM-M' || b, 'electricity', 'master' "
        f"FROM generate_series(1, {buildings}) b",
        f"INSERT INTO meters (id, site_id, code, kind, role, parent_id) SELECT {buildings} + b, 1, 'EM-C' || b, "
        f"'electricity', 'common', b FROM generate_series(1, {buildings}) b",
        f"INSERT INTO meters (id, site_id, code, kind, role, parent_id, unit_id) SELECT 2 * {buildings} + u, 1, "
        f"'EM-U' || u, 'electricity', 'sub', (u - 1) / {PER_BUILDING} + 1, u FROM generate_series(1, {UNITS}) u",
        f"INSERT INTO meters (id, site_id, code, kind, role, unit_id) SELECT 2 * {buildings} + {UNITS} + u, 1, "
        f"'WM-U' || u, 'water', 'sub', u FROM generate_series(1, {UNITS}) u",
        f"INSERT INTO meter_serves (meter_id, unit_id) SELECT {buildings} + (u - 1) / {PER_BUILDING} + 1, u "
        f"FROM generate_series(1, {UNITS}) u",
        # a device, a point mapping and a series per metered meter (commons are read by hand)
        "INSERT INTO devices (id, site_id, edge_id, name, profile) SELECT m.id, 1, 1, 'd' || m.id, "
        "CASE m.role WHEN 'master' THEN 'chint_dtsu666' ELSE CASE m.kind WHEN 'water' THEN 'xintai_water' "
        "ELSE 'chint_ddsu666' END END FROM meters m WHERE m.role != 'common'",
        "INSERT INTO point_mappings (device_id, point, quantity, meter_id) SELECT m.id, CASE m.kind WHEN 'water' "
        "THEN 'forward_total' ELSE 'energy_import' END, CASE m.kind WHEN 'water' THEN 'water_volume_m3' "
        "ELSE 'energy_import_kwh' END, m.id FROM meters m WHERE m.role != 'common'",
        "INSERT INTO series (id, site, edge, device, point, quantity) SELECT p.device_id, 'bench', 'edge', "
        "'d' || p.device_id, p.point, p.quantity FROM point_mappings p",
        "SELECT setval(pg_get_serial_sequence('series', 'id'), (SELECT max(id) FROM series))",
    ]
    for statement in sql:
        conn.execute(statement)


def _progress(message: str, since: float) -> None:
    print(f"# billrun seed: {message} ({time.perf_counter() - since:.0f} s)", file=sys.stderr, flush=True)


# Per-meter hourly rates (kWh) by local clock hour: a random scale times a household shape (night, morning,
# day, evening) with +-50 % noise per hour; one flat in 50 is vacant (uses nothing). ``cum[h + 1]`` is the
# usage from local midnight to hour h (cum[25]: a whole day), so the counter at any instant is closed-form.
PROFILE = """
INSERT INTO bench_profile (s, cum)
SELECT s, array_agg(c ORDER BY h) FROM (
  SELECT s, h, coalesce(sum(r) OVER (PARTITION BY s ORDER BY h ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS c
  FROM (
    SELECT m.s, h, round((m.scale * CASE WHEN h < 6 THEN 0.3 WHEN h < 9 THEN 1.2 WHEN h < 17 THEN 0.6
      WHEN h < 23 THEN 1.6 ELSE 0.8 END * (0.5 + random()))::numeric, 3)::float8 AS r
    FROM (SELECT s, CASE WHEN s <= {masters} THEN 1500 + random() * 500 WHEN s % 50 = 0 THEN 0
                        ELSE 0.1 + random() * 0.6 END AS scale
          FROM generate_series({lo}, {hi}) s) m
    CROSS JOIN generate_series(0, 24) h
  ) rates
) sums GROUP BY s
"""
# Four samples an hour, 15 minutes apart at a per-meter offset, for every hour from the one before the month to
# the one after it (k = -1 .. 744). Anomalies among flats: a counter that drops to near zero mid-month (billed
# as a negative delta, not at all), a gateway offline over the end of the month (held, estimated end reading),
# one offline over its start, and two days missing mid-month (time of use interpolated over the gap).
HOURLY = """
INSERT INTO rollup_hours (series_id, hour_start, count, min, max, sum, first_ts, first_value, last_ts, last_value,
                          increase, decreases)
SELECT s, h, 4, v0, v3, v0 + v1 + v2 + v3, h + o, v0, h + o + 2700000, v3, v3 - v0, 0 FROM (
  SELECT s, h, o, round((b + f * r) * 100) / 100 AS v0, round((b + (f + 0.25) * r) * 100) / 100 AS v1,
         round((b + (f + 0.5) * r) * 100) / 100 AS v2, round((b + (f + 0.75) * r) * 100) / 100 AS v3
  FROM (
    SELECT p.s, {start} + k::bigint * {hour} AS h, o, o / {hour}.0::float8 AS f,
           p.cum[(k + 24) % 24 + 2] - p.cum[(k + 24) % 24 + 1] AS r,
           CASE WHEN p.s % 4999 = 7 AND k >= 400 THEN 10 - (1000 + p.s % 100) ELSE 0 END
             + (CASE WHEN p.s <= {masters} THEN 100000 ELSE 1000 + p.s % 100 END)
             + (k + 24) / 24 * p.cum[25] + p.cum[(k + 24) % 24 + 1] AS b
    FROM (SELECT s, cum, (s * 7919 % 900) * 1000 AS o FROM bench_profile WHERE s BETWEEN {lo} AND {hi}) p
    CROSS JOIN generate_series(-1, 744) k
    WHERE p.s <= {masters} OR NOT ((p.s % 997 = 3 AND k >= 735) OR (p.s % 983 = 11 AND k < 30)
                                   OR (p.s % 991 = 5 AND k BETWEEN 100 AND 147))
  ) x
) y
"""
# Water meters report once a day, at a per-meter daily volume (0.05-0.85 m3).
DAILY = """
INSERT INTO rollup_hours (series_id, hour_start, count, min, max, sum, first_ts, first_value, last_ts, last_value,
                          increase, decreases)
SELECT s, h, 1, v, v, v, h, v, h, v, 0, 0 FROM (
  SELECT s, {start} + d::bigint * {day} AS h, round((50 + (d + 1) * rate)::numeric, 3)::float8 AS v
  FROM (SELECT s, 0.05 + random() * 0.8 AS rate FROM generate_series({lo}, {hi}) s) m
  CROSS JOIN generate_series(-1, 31) d
) x
"""


def _seed_rollups(url: str) -> None:
    """The month's rollups generated inside PostgreSQL: without the primary key and foreign key while loading
    (each built once afterwards), flats' electricity on two connections at once."""
    buildings = UNITS // PER_BUILDING
    first_flat, last_flat = 2 * buildings + 1, 2 * buildings + UNITS
    since = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE rollup_hours DROP CONSTRAINT fk_rollup_hours_series_id_series")
        conn.execute("ALTER TABLE rollup_hours DROP CONSTRAINT pk_rollup_hours")
        conn.execute("CREATE UNLOGGED TABLE bench_profile (s integer PRIMARY KEY, cum float8[] NOT NULL)")
        conn.execute("SELECT setseed(0.42)")
        conn.execute(PROFILE.format(masters=buildings, lo=1, hi=buildings))
        conn.execute(PROFILE.format(masters=buildings, lo=first_flat, hi=last_flat))
        _progress(f"daily profiles of {buildings + UNITS} electricity meters", since)
        params = {"start": START_MS, "hour": HOUR_MS, "masters": buildings}
        middle = (first_flat + last_flat) // 2
        ranges = [(1, buildings), (first_flat, middle), (middle + 1, last_flat)]

        def load(bounds: tuple[int, int]) -> None:
            with psycopg.connect(url, autocommit=True) as own:
                own.execute("SET synchronous_commit = off")
                own.execute(HOURLY.format(lo=bounds[0], hi=bounds[1], **params))
                _progress(f"hourly rollups of meters {bounds[0]}-{bounds[1]}", since)

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(load, ranges))
        conn.execute("SELECT setseed(0.43)")
        conn.execute(DAILY.format(start=START_MS, day=DAY_MS, lo=last_flat + 1, hi=last_flat + UNITS))
        _progress(f"daily rollups of {UNITS} water meters", since)
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("ALTER TABLE rollup_hours ADD CONSTRAINT pk_rollup_hours PRIMARY KEY (series_id, hour_start)")
        conn.execute(
            "ALTER TABLE rollup_hours ADD CONSTRAINT fk_rollup_hours_series_id_series "
            "FOREIGN KEY (series_id) REFERENCES series (id)"
        )
        conn.execute("DROP TABLE bench_profile")
        _progress("primary and foreign key", since)
        conn.execute(
            "INSERT INTO meter_readings (site_id, meter_id, read_at, value, source, entered_at) "
            f"SELECT 1, {buildings} + b, to_timestamp(t / 1000.0), 5000 + b + (t - {START_MS}) / {HOUR_MS} * 3.5, "
            f"'import', now() FROM generate_series(1, {buildings}) b CROSS JOIN (VALUES ({START_MS}), ({END_MS})) v(t)"
        )
        conn.execute("VACUUM ANALYZE")
        _progress("vacuum analyze", since)


def _seed_billing(url: str) -> None:
    engine = make_engine(url)
    actor = Actor("bench")
    with session_factory(engine).begin() as session:
        site = session.get(Site, 1)
        assert site is not None
        start = date(2026, 1, 1)
        elec = create_tariff(session, actor, site, "elec", "电价", TariffKind.ELECTRICITY, start, ELECTRICITY)
        water = create_tariff(session, actor, site, "water", "水价", TariffKind.WATER, start, WATER)
        common = create_tariff(session, actor, site, "common", "公共用电", TariffKind.ELECTRICITY, start, COMMON)
        create_tariff(
            session,
            actor,
            site,
            "fee",
            "物业费",
            TariffKind.PROPERTY_FEE,
            start,
            {"name": "物业费", "per_m2_monthly": "2.50"},
        )
        conn = session.connection()
        conn.exec_driver_sql(
            "INSERT INTO tariff_assignments (site_id, meter_id, tariff_id) SELECT 1, id, CASE kind WHEN 'water' "
            f"THEN {water.id} ELSE {elec.id} END FROM meters WHERE role = 'sub'"
        )
        for meter in session.query(Meter).filter(Meter.role != "sub").order_by(Meter.id):
            kind = PoolKind.LOSS if meter.role.value == "master" else PoolKind.COMMON
            method = AllocationMethod.USAGE if kind is PoolKind.LOSS else AllocationMethod.AREA
            create_pool(
                session,
                actor,
                meter,
                code=f"{kind.value}-{meter.code}",
                name=meter.code,
                kind=kind,
                tariff=common,
                method=method,
            )
    engine.dispose()


class _PhaseLog(logging.Handler):
    """Keeps the phase timings (refresh, load, compute, write) that ``execute_run`` logs."""

    text = "no phase timings logged"

    def emit(self, record: logging.LogRecord) -> None:
        phases = getattr(record, "phases", None)
        if phases:
            self.text = ", ".join(f"{k} {v:.1f} s" for k, v in phases.items())


def run() -> dict[str, float]:
    name = f"eh_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine = make_engine(url)
    try:
        create_schema(engine)
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            _seed_registry(conn)
        _seed_rollups(url.replace("+psycopg", ""))
        _seed_billing(url)
        now = datetime(2026, 11, 5, tzinfo=UTC)
        with session_factory(engine).begin() as session:
            site = session.get(Site, 1)
            assert site is not None
            run_id = start_run(session, Actor("bench"), site, PERIOD, issue=True, now=now).id
        phases = _PhaseLog()
        runs_log = logging.getLogger("cloud.billing.runs")
        runs_log.addHandler(phases)
        runs_log.setLevel(logging.INFO)
        started = time.perf_counter()
        try:
            done = execute_run(engine, run_id, now=now)
        finally:
            runs_log.removeHandler(phases)
        elapsed = time.perf_counter() - started
        print(f"# billrun {UNITS} units: {phases.text}, total {elapsed:.1f} s", file=sys.stderr, flush=True)
        if done.error or done.summary.get("bills_issued") != UNITS:
            raise RuntimeError(
                f"bench run did not issue {UNITS} bills: {done.error or done.summary.get('bills_issued')}"
            )
        return {f"billrun_{UNITS // 1000}k_units_s": round(elapsed, 1)}
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
