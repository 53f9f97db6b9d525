"""The registry as stored, in the form import files use: references by code, one dict of facts per row.

The importer compares these with a file to find what changed, and the same dicts are the audit log's
before/after snapshots, so an entry reads like the file line that caused it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from cloud.registry.models import (
    Building,
    Device,
    Edge,
    Equipment,
    Meter,
    PointMapping,
    Site,
    Unit,
    meter_serves,
)

Facts = dict[str, Any]
DeviceKey = tuple[str, str]
"""(edge code, device name)"""


@dataclass(frozen=True)
class Known:
    id: int
    facts: Facts


def sites(session: Session, codes: Iterable[str]) -> dict[str, Known]:
    rows = session.execute(select(Site.id, Site.code, Site.name).where(Site.code.in_(list(codes))))
    return {code: Known(id, {"code": code, "name": name}) for id, code, name in rows}


def buildings(session: Session, site_id: int) -> dict[str, Known]:
    rows = session.execute(select(Building.id, Building.code, Building.name).where(Building.site_id == site_id))
    return {code: Known(id, {"code": code, "name": name}) for id, code, name in rows}


def units(session: Session, site_id: int) -> dict[str, Known]:
    stmt = (
        select(
            Unit.id,
            Unit.code,
            Building.code,
            Unit.floor,
            Unit.floor_area_m2,
            Unit.owner_name,
            Unit.owner_phone,
            Unit.household_size,
        )
        .join(Building, Unit.building_id == Building.id)
        .where(Unit.site_id == site_id)
    )
    out = {}
    for id, code, building, floor, area, owner_name, owner_phone, household in session.execute(stmt):
        out[code] = Known(
            id,
            {
                "code": code,
                "building": building,
                "floor": floor,
                "floor_area_m2": area,
                "owner_name": owner_name,
                "owner_phone": owner_phone,
                "household_size": household,
            },
        )
    return out


def equipment(session: Session, site_id: int) -> dict[str, Known]:
    rows = session.execute(
        select(Equipment.id, Equipment.code, Equipment.name, Equipment.type).where(Equipment.site_id == site_id)
    )
    return {code: Known(id, {"code": code, "name": name, "type": type}) for id, code, name, type in rows}


def meters(session: Session, site_id: int) -> dict[str, Known]:
    parent = aliased(Meter)
    stmt = (
        select(Meter.id, Meter.code, Meter.kind, Meter.role, parent.code, Unit.code)
        .outerjoin(parent, Meter.parent_id == parent.id)
        .outerjoin(Unit, Meter.unit_id == Unit.id)
        .where(Meter.site_id == site_id)
    )
    serves: dict[int, list[str]] = defaultdict(list)
    served = (
        select(Meter.id, Unit.code)
        .select_from(meter_serves)
        .join(Unit, meter_serves.c.unit_id == Unit.id)
        .join(Meter, meter_serves.c.meter_id == Meter.id)
        .where(Meter.site_id == site_id)
    )
    for meter_id, unit_code in session.execute(served):
        serves[meter_id].append(unit_code)
    out = {}
    for id, code, kind, role, parent_code, unit_code in session.execute(stmt):
        out[code] = Known(
            id,
            {
                "code": code,
                "kind": kind.value,
                "role": role.value,
                "parent": parent_code,
                "unit": unit_code,
                "serves": sorted(serves[id]),
            },
        )
    return out


def edges(session: Session, site_id: int) -> dict[str, Known]:
    rows = session.execute(select(Edge.id, Edge.code).where(Edge.site_id == site_id))
    return {code: Known(id, {"code": code}) for id, code in rows}


def devices(session: Session, site_id: int) -> dict[DeviceKey, Known]:
    points: dict[int, dict[str, Facts]] = defaultdict(dict)
    mapped = (
        select(PointMapping.device_id, PointMapping.point, PointMapping.quantity, Meter.code, Equipment.code)
        .join(Device, PointMapping.device_id == Device.id)
        .outerjoin(Meter, PointMapping.meter_id == Meter.id)
        .outerjoin(Equipment, PointMapping.equipment_id == Equipment.id)
        .where(Device.site_id == site_id)
    )
    for device_id, point, quantity, meter_code, equipment_code in session.execute(mapped):
        points[device_id][point] = point_facts(quantity, meter_code, equipment_code)
    stmt = (
        select(Device.id, Edge.code, Device.name, Device.profile, Unit.code, Equipment.code)
        .join(Edge, Device.edge_id == Edge.id)
        .outerjoin(Unit, Device.unit_id == Unit.id)
        .outerjoin(Equipment, Device.equipment_id == Equipment.id)
        .where(Device.site_id == site_id)
    )
    out = {}
    for id, edge, name, profile, unit_code, equipment_code in session.execute(stmt):
        out[(edge, name)] = Known(
            id,
            {
                "edge": edge,
                "name": name,
                "profile": profile,
                "unit": unit_code,
                "equipment": equipment_code,
                "points": points[id],
            },
        )
    return out


def point_facts(quantity: str, meter: str | None, equipment: str | None) -> Facts:
    return (
        {"quantity": quantity, "meter": meter} if meter is not None else {"quantity": quantity, "equipment": equipment}
    )
