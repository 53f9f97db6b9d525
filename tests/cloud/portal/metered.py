"""The demo site billed for real: its tariffs and pools (cloud/billing/demo.py), hourly meter readings of unit
1-0101 through February 2026, and bills issued by the bill-run service (cloud/billing/runs.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, select

from cloud.audit.services import Actor
from cloud.billing.demo import seed_demo_billing
from cloud.billing.models import BillRun
from cloud.billing.runs import execute_run, start_run
from cloud.db import session_factory
from cloud.registry.models import Site
from cloud.timeseries.bulk import SeriesIds, write_samples
from cloud.timeseries.rollup import mark_dirty, series_hours

PERIOD = "2026-02"
FROM = datetime(2026, 1, 30, 16, tzinfo=UTC)
"""00:00 on 31 January in Asia/Shanghai: a day of readings before the period."""
PERIOD_END = datetime(2026, 2, 28, 16, tzinfo=UTC)
"""00:00 on 1 March in Asia/Shanghai."""
HOURS = 31 * 24
HOUR_MS = 3_600_000
ELECTRICITY_KWH_PER_HOUR = Decimal("0.5")
WATER_M3_PER_HOUR = Decimal("0.01")
RUN_AT = datetime(2026, 3, 2, 2, tzinfo=UTC)


def seed_billing(engine: Engine) -> None:
    """Tariffs, assignments and pools of the demo site, and a month of hourly readings of unit 1-0101."""
    with session_factory(engine).begin() as session:
        seed_demo_billing(session, Actor("seed"))
    keys = {
        ("demo-site", "demo-edge", "b1-u01-elec", "energy_import"): "energy_import_kwh",
        ("demo-site", "demo-edge", "b1-u01-water", "forward_total"): "water_volume_m3",
    }
    start_ms = int(FROM.timestamp() * 1000)
    with engine.begin() as conn:
        series = SeriesIds().resolve(conn, keys)
        elec, water = series[next(iter(keys))], series[list(keys)[1]]
        rows = []
        for h in range(HOURS + 1):
            ts = start_ms + h * HOUR_MS
            rows.append((elec, ts, 50_000 + h, float(Decimal("1000") + ELECTRICITY_KWH_PER_HOUR * h), 0))
            rows.append((water, ts, 60_000 + h, float(Decimal("50") + WATER_M3_PER_HOUR * h), 0))
        write_samples(conn, rows)
        mark_dirty(conn, series_hours(rows))


def run_bills(engine: Engine, *, issue: bool) -> BillRun:
    """A bill run of the demo site for February, as finance starts it, executed to the end."""
    with session_factory(engine).begin() as session:
        site = session.scalars(select(Site).where(Site.code == "demo-site")).one()
        run_id = start_run(session, Actor("finance"), site, PERIOD, issue=issue, now=RUN_AT).id
    return execute_run(engine, run_id, now=RUN_AT)
