"""Billing setup of the demo site (cloud/registry/demo.py): realistic tariffs from
../shared/reference/tariffs.md, every household meter assigned, and per building a common-area pool by floor
area and a loss pool (master minus sub-meters) by usage.

Idempotent: a second call changes nothing, so ``make demo`` can run it at every start.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.audit.services import Actor
from cloud.billing.engine import AllocationMethod
from cloud.billing.models import PoolKind, SharedPool, Tariff, TariffAssignment, TariffKind
from cloud.billing.pools import create_pool
from cloud.billing.tariffs import assign, create_tariff
from cloud.registry.models import Meter, MeterKind, MeterRole, Site

EFFECTIVE_FROM = date(2026, 1, 1)

SHANGHAI_ELECTRICITY: dict[str, Any] = {
    "utility": "electricity",
    "name": "上海居民阶梯峰谷电价",
    "unit": "kWh",
    "tier_period": "yearly",
    "tiers": [
        {"up_to": "3120", "tou": {"peak": "0.617", "valley": "0.307"}},
        {"up_to": "4800", "tou": {"peak": "0.677", "valley": "0.337"}},
        {"tou": {"peak": "0.977", "valley": "0.487"}},
    ],
    "tou": [
        {"period": "peak", "windows": [{"start": "06:00", "end": "22:00"}]},
        {"period": "valley", "windows": [{"start": "22:00", "end": "06:00"}]},
    ],
}
"""Shanghai residential: yearly tiers, peak 06:00-22:00 and valley 22:00-06:00 (tariffs.md)."""

BEIJING_WATER: dict[str, Any] = {
    "utility": "water",
    "name": "北京居民阶梯水价",
    "unit": "m3",
    "tier_period": "yearly",
    "components": [
        {"code": "supply", "label": "水费", "label_en": "water supply"},
        {"code": "resource", "label": "水资源费", "label_en": "water-resource fee"},
        {"code": "sewage", "label": "污水处理费", "label_en": "sewage"},
    ],
    "tiers": [
        {"up_to": "180", "components": {"supply": "2.07", "resource": "1.57", "sewage": "1.36"}},
        {"up_to": "260", "components": {"supply": "4.07", "resource": "1.57", "sewage": "1.36"}},
        {"components": {"supply": "6.07", "resource": "1.57", "sewage": "1.36"}},
    ],
    "household": {"base_persons": 5, "extra_per_person": "30"},
}
"""Beijing: 5 / 7 / 9 yuan per m3 over the year, split into supply, resource fee and sewage (tariffs.md)."""

COMMON_ELECTRICITY: dict[str, Any] = {
    "utility": "electricity",
    "name": "公共用电",
    "unit": "kWh",
    "tiers": [{"price": "0.617"}],
}
"""Lifts, corridor lights and line loss: a flat price, shared over the households."""

PROPERTY_FEE: dict[str, Any] = {"name": "物业服务费", "per_m2_monthly": "2.20"}


def seed_demo_billing(session: Session, actor: Actor, site_code: str = "demo-site") -> None:
    """Tariffs, assignments and pools of the demo site; a no-op once they exist."""
    site = session.scalar(select(Site).where(Site.code == site_code))
    if site is None:
        raise ValueError(f"site {site_code} is not registered; import the demo registry first")
    if session.scalar(select(Tariff.id).where(Tariff.site_id == site.id)) is not None:
        return
    electricity = create_tariff(
        session, actor, site, "elec-sh", "居民电价", TariffKind.ELECTRICITY, EFFECTIVE_FROM, SHANGHAI_ELECTRICITY
    )
    water = create_tariff(session, actor, site, "water-bj", "居民水价", TariffKind.WATER, EFFECTIVE_FROM, BEIJING_WATER)
    common = create_tariff(
        session, actor, site, "elec-common", "公共用电", TariffKind.ELECTRICITY, EFFECTIVE_FROM, COMMON_ELECTRICITY
    )
    create_tariff(session, actor, site, "property-fee", "物业费", TariffKind.PROPERTY_FEE, EFFECTIVE_FROM, PROPERTY_FEE)
    meters = list(session.scalars(select(Meter).where(Meter.site_id == site.id).order_by(Meter.code)))
    assigned = set(session.scalars(select(TariffAssignment.meter_id).where(TariffAssignment.site_id == site.id)))
    for meter in meters:
        if meter.role is MeterRole.SUB and meter.id not in assigned:
            assign(session, actor, meter, electricity if meter.kind is MeterKind.ELECTRICITY else water)
    pools = set(session.scalars(select(SharedPool.meter_id).where(SharedPool.site_id == site.id)))
    for meter in meters:
        if meter.id in pools or meter.kind is not MeterKind.ELECTRICITY:
            continue
        building = meter.code.split("-")[1]
        if meter.role is MeterRole.COMMON and meter.serves:
            create_pool(
                session,
                actor,
                meter,
                code=f"{building.lower()}-public",
                name=f"{building}公共区域用电",
                kind=PoolKind.COMMON,
                tariff=common,
                method=AllocationMethod.AREA,
            )
        elif meter.role is MeterRole.MASTER:
            create_pool(
                session,
                actor,
                meter,
                code=f"{building.lower()}-loss",
                name=f"{building}总表损耗",
                kind=PoolKind.LOSS,
                tariff=common,
                method=AllocationMethod.USAGE,
            )
