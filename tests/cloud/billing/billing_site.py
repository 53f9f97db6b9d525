"""A small site whose October 2026 bills are computed by hand in test_billing_runs.py.

One building, three flats (80, 100 and 120 m2), each with an electricity and a water meter under a master
meter, and a common meter (lifts, corridors) serving all three. The common meter and flat 3's water meter
have no communication: they are read by hand (a CSV import). Telemetry is one sample on every hour boundary,
so each hour's usage is plain to see:

* EM-U1: 0.5 kWh every hour (372 kWh in October); EM-U2: 2 kWh per hour from 22:00 to 06:00 (valley) and
  0.25 kWh otherwise (620 kWh); EM-U3: 0.1 kWh per hour (74.4 kWh).
* WM-U1: 0.01 m3 per hour (7.44 m3); WM-U2: 0.02 m3 per hour (14.88 m3); WM-U3 by hand: 300 on 25 September,
  305 on 10 October, 312 on 1 November, so its reading at 1 October is interpolated (302, estimated).
* EM-PUB by hand: 5000 on 1 October, 5300 on 1 November (300 kWh).
* EM-MAIN: 1416.4 kWh, so the loss is 1416.4 - (372 + 620 + 74.4 + 300) = 50 kWh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, select

from cloud.audit.services import Actor
from cloud.billing.engine import AllocationMethod
from cloud.billing.models import PoolKind, TariffKind
from cloud.billing.pools import create_pool
from cloud.billing.readings import check_rows, import_readings, parse_file
from cloud.billing.tariffs import assign, create_tariff
from cloud.db import session_factory
from cloud.registry.importer import import_registry, parse_data
from cloud.registry.models import Meter, Site, Unit
from cloud.timeseries.bulk import SeriesIds, write_samples
from cloud.timeseries.rollup import mark_dirty, series_hours

HOUR_MS = 3_600_000
OCT_START = datetime(2026, 9, 30, 16, tzinfo=UTC)
"""2026-10-01 00:00 in Beijing."""
OCT_START_MS = int(OCT_START.timestamp() * 1000)
OCT_HOURS = 744
AFTER_OCTOBER = datetime(2026, 11, 5, tzinfo=UTC)
ACTOR = Actor("finance-test")

ELECTRICITY: dict[str, Any] = {
    "utility": "electricity",
    "name": "测试阶梯峰谷电价",
    "unit": "kWh",
    "tiers": [{"up_to": "200", "tou": {"peak": "0.6", "valley": "0.3"}}, {"tou": {"peak": "0.8", "valley": "0.4"}}],
    "tou": [
        {"period": "peak", "windows": [{"start": "06:00", "end": "22:00"}]},
        {"period": "valley", "windows": [{"start": "22:00", "end": "06:00"}]},
    ],
    "fixed_charges": [{"code": "meter_fee", "label": "电表维护费", "label_en": "meter upkeep", "monthly": "2.00"}],
}
WATER: dict[str, Any] = {
    "utility": "water",
    "name": "测试阶梯水价",
    "unit": "m3",
    "components": [
        {"code": "supply", "label": "水费", "label_en": "supply"},
        {"code": "resource", "label": "水资源费", "label_en": "resource fee"},
        {"code": "sewage", "label": "污水处理费", "label_en": "sewage"},
    ],
    "tiers": [
        {"up_to": "10", "components": {"supply": "2.07", "resource": "1.57", "sewage": "1.36"}},
        {"components": {"supply": "4.07", "resource": "1.57", "sewage": "1.36"}},
    ],
}
COMMON: dict[str, Any] = {"utility": "electricity", "name": "公共用电", "unit": "kWh", "tiers": [{"price": "0.5"}]}
PROPERTY_FEE: dict[str, Any] = {"name": "物业费", "per_m2_monthly": "2.00"}

REGISTRY: dict[str, Any] = {
    "sites": [
        {
            "code": "bill-site",
            "name": "账单小区",
            "buildings": [{"code": "B1", "name": "1号楼"}],
            "units": [
                {
                    "code": f"1-010{n}",
                    "building": "B1",
                    "floor": 1,
                    "floor_area_m2": area,
                    "owner_name": f"业主{n}",
                    "owner_phone": f"1390000000{n}",
                    "household_size": size,
                }
                for n, area, size in ((1, "80.00", 3), (2, "100.00", 7), (3, "120.00", 2))
            ],
            "meters": [
                {"code": "EM-MAIN", "kind": "electricity", "role": "master"},
                {
                    "code": "EM-PUB",
                    "kind": "electricity",
                    "role": "common",
                    "parent": "EM-MAIN",
                    "serves": ["1-0101", "1-0102", "1-0103"],
                },
                *(
                    {"code": f"EM-U{n}", "kind": "electricity", "role": "sub", "unit": f"1-010{n}", "parent": "EM-MAIN"}
                    for n in (1, 2, 3)
                ),
                *({"code": f"WM-U{n}", "kind": "water", "role": "sub", "unit": f"1-010{n}"} for n in (1, 2, 3)),
            ],
            "edges": [
                {
                    "code": "bill-edge",
                    "devices": [
                        {"name": "master", "profile": "chint_dtsu666", "meter": "EM-MAIN"},
                        *({"name": f"u{n}-elec", "profile": "chint_ddsu666", "meter": f"EM-U{n}"} for n in (1, 2, 3)),
                        *({"name": f"u{n}-water", "profile": "xintai_water", "meter": f"WM-U{n}"} for n in (1, 2)),
                    ],
                }
            ],
        }
    ]
}

MANUAL_CSV = (
    "meter,read_at,value\n"
    "EM-PUB,2026-10-01 00:00,5000\n"
    "EM-PUB,2026-11-01 00:00,5300\n"
    "WM-U3,2026-09-25 00:00,300\n"
    "WM-U3,2026-10-10 00:00,305\n"
    "WM-U3,2026-11-01 00:00,312\n"
)


def _is_valley(h: int) -> bool:
    """Hour h after 1 October 00:00 local is in the valley (22:00-06:00)."""
    return h % 24 >= 22 or h % 24 < 6


def hourly_values() -> dict[str, list[float]]:
    """Each metered point's value on hour boundaries -1 .. 745 after the start of October."""

    def cumulative(start: float, per_hour: Any) -> list[float]:
        values, total = [], start
        for h in range(-1, OCT_HOURS + 2):
            values.append(round(total, 4))
            total += per_hour(h)
        return values

    return {
        "u1-elec": cumulative(999.5, lambda h: 0.5),
        "u2-elec": cumulative(2000.0 - 2.0, lambda h: 2.0 if _is_valley(h) else 0.25),
        "u3-elec": cumulative(3000.0 - 0.1, lambda h: 0.1),
        "u1-water": cumulative(100.0 - 0.01, lambda h: 0.01),
        "u2-water": cumulative(200.0 - 0.02, lambda h: 0.02),
        "master": cumulative(100000.0 - 1416.4 / OCT_HOURS, lambda h: 1416.4 / OCT_HOURS),
    }


POINTS = {
    "u1-elec": "energy_import",
    "u2-elec": "energy_import",
    "u3-elec": "energy_import",
    "master": "energy_import",
    "u1-water": "forward_total",
    "u2-water": "forward_total",
}
QUANTITY = {"energy_import": "energy_import_kwh", "forward_total": "water_volume_m3"}


@dataclass
class BillSite:
    site_id: int
    units: dict[str, int]
    meters: dict[str, int]
    series: dict[str, int]


def write_telemetry(engine: Engine, values: dict[str, list[float]], first_hour: int = -1) -> dict[str, int]:
    """Samples on hour boundaries (seq = hour), marked dirty as ingest does."""
    keys = {("bill-site", "bill-edge", device, POINTS[device]): QUANTITY[POINTS[device]] for device in values}
    with engine.begin() as conn:
        ids = SeriesIds().resolve(conn, keys)
        rows = [
            (
                ids[("bill-site", "bill-edge", d, POINTS[d])],
                OCT_START_MS + (first_hour + i) * HOUR_MS,
                first_hour + i + 10,
                v,
                0,
            )
            for d, vs in values.items()
            for i, v in enumerate(vs)
        ]
        write_samples(conn, rows)
        mark_dirty(conn, series_hours(rows))
    return {k[2]: v for k, v in ids.items()}


LATE_FROM_HOUR = 741
"""With ``late_tail``, EM-U3's samples from this hour on (20:00 on 31 October) are held back at the edge."""


def build_site(engine: Engine, *, loss_approval: bool = False, late_tail: bool = False) -> BillSite:
    """The registry, tariffs, pools, manual readings (imported) and October's telemetry."""
    factory = session_factory(engine)
    with factory.begin() as session:
        import_registry(session, parse_data(REGISTRY), ACTOR)
        site = session.scalars(select(Site).where(Site.code == "bill-site")).one()
        meters = {m.code: m for m in session.scalars(select(Meter).where(Meter.site_id == site.id))}
        units = dict(session.execute(select(Unit.code, Unit.id).where(Unit.site_id == site.id)).all())
        start = date(2026, 1, 1)
        elec = create_tariff(session, ACTOR, site, "elec", "居民电价", TariffKind.ELECTRICITY, start, ELECTRICITY)
        water = create_tariff(session, ACTOR, site, "water", "居民水价", TariffKind.WATER, start, WATER)
        common = create_tariff(session, ACTOR, site, "common", "公共用电", TariffKind.ELECTRICITY, start, COMMON)
        create_tariff(session, ACTOR, site, "fee", "物业费", TariffKind.PROPERTY_FEE, start, PROPERTY_FEE)
        for n in (1, 2, 3):
            assign(session, ACTOR, meters[f"EM-U{n}"], elec)
            assign(session, ACTOR, meters[f"WM-U{n}"], water)
        create_pool(
            session,
            ACTOR,
            meters["EM-PUB"],
            code="pub",
            name="公共区域",
            kind=PoolKind.COMMON,
            tariff=common,
            method=AllocationMethod.AREA,
        )
        create_pool(
            session,
            ACTOR,
            meters["EM-MAIN"],
            code="loss",
            name="总表损耗",
            kind=PoolKind.LOSS,
            tariff=common,
            method=AllocationMethod.USAGE,
            requires_approval=loss_approval,
        )
        good, errors = check_rows(parse_file(MANUAL_CSV.encode(), "csv"))
        import_readings(session, ACTOR, site, good, errors=errors, now=AFTER_OCTOBER)
        meter_ids = {code: m.id for code, m in meters.items()}
        site_id = site.id
    values = hourly_values()
    if late_tail:
        values["u3-elec"] = values["u3-elec"][: LATE_FROM_HOUR + 1]
    series = write_telemetry(engine, values)
    return BillSite(site_id, units, meter_ids, series)


def deliver_late_tail(engine: Engine) -> None:
    """The edge's backlog arrives: EM-U3's samples from LATE_FROM_HOUR to the end."""
    write_telemetry(engine, {"u3-elec": hourly_values()["u3-elec"][LATE_FROM_HOUR + 1 :]}, first_hour=LATE_FROM_HOUR)
