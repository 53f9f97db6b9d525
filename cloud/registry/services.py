"""Registry changes one row at a time (the API's create and update calls), and the series behind a meter.

Single-row changes go through the importer, so a row typed into the console obeys exactly the rules of
a row in an import file, and is audited the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from cloud.audit.services import Actor
from cloud.registry import facts as stored
from cloud.registry.facts import Known
from cloud.registry.importer import RegistryImportError, import_registry
from cloud.registry.models import Device, Edge, PointMapping, Site
from cloud.registry.schemas import (
    BuildingRow,
    EdgeRow,
    EquipmentRow,
    MeterRow,
    RegistryDoc,
    SiteDoc,
    SiteRow,
    UnitRow,
)
from cloud.timeseries.models import Series
from protocols.profiles import ProfileError, load_profile
from protocols.quantities import PointKind, Quantity

ROWS: dict[str, tuple[str, type[BaseModel], Callable[[Session, int], dict[str, Known]]]] = {
    "building": ("buildings", BuildingRow, stored.buildings),
    "unit": ("units", UnitRow, stored.units),
    "meter": ("meters", MeterRow, stored.meters),
    "equipment": ("equipment", EquipmentRow, stored.equipment),
    "edge": ("edges", EdgeRow, stored.edges),
}
MAIN_QUANTITY = {"electricity": Quantity.ENERGY_IMPORT_KWH.value, "water": Quantity.WATER_VOLUME_M3.value}
"""The counter a meter is read and billed by."""


class Conflict(ValueError):
    """The code is taken in this site."""


def create_site(session: Session, actor: Actor, row: SiteRow) -> int:
    if stored.sites(session, [row.code]):
        raise Conflict(f"site {row.code} exists")
    import_registry(session, RegistryDoc(sites=[SiteDoc(code=row.code, name=row.name)]), actor, "request")
    return stored.sites(session, [row.code])[row.code].id


def update_site(session: Session, actor: Actor, site: Site, changes: dict[str, Any]) -> None:
    doc = SiteDoc(code=site.code, name=changes.get("name", site.name))
    import_registry(session, RegistryDoc(sites=[doc]), actor, "request")


SiteChild = BuildingRow | UnitRow | MeterRow | EquipmentRow | EdgeRow


def create(session: Session, actor: Actor, site: Site, kind: str, row: SiteChild) -> int:
    """Add one building, unit, meter, equipment or edge to a site; returns its id."""
    section, _, load = ROWS[kind]
    code = row.code
    if code in load(session, site.id):
        raise Conflict(f"{kind} {code} exists in site {site.code}")
    doc = SiteDoc.model_validate({"code": site.code, "name": site.name, section: [row]})
    import_registry(session, RegistryDoc(sites=[doc]), actor, "request")
    return load(session, site.id)[code].id


def update(session: Session, actor: Actor, site: Site, kind: str, code: str, changes: dict[str, Any]) -> None:
    """Change some fields of one row; the result is checked as a whole row, like a line of an import file."""
    section, model, load = ROWS[kind]
    current = load(session, site.id)[code].facts
    try:
        row = model.model_validate({**current, **changes})
    except ValidationError as exc:
        raise RegistryImportError(
            "request", [f"{kind} {code}: {e['loc'][0]}: {e['msg']}" for e in exc.errors()]
        ) from None
    doc = SiteDoc.model_validate({"code": site.code, "name": site.name, section: [row]})
    import_registry(session, RegistryDoc(sites=[doc]), actor, "request")


@dataclass(frozen=True)
class MappedSeries:
    """A stored series and what it measures: the point of a device, mapped to a meter or equipment."""

    series_id: int | None
    """None until the edge has sent a reading of the point."""
    key: tuple[str, str, str, str]
    quantity: str
    kind: PointKind
    meter_id: int | None
    equipment_id: int | None


@lru_cache(maxsize=256)
def point_kind(profile: str, point: str) -> PointKind:
    """Counter, gauge or state, as the device profile says (gauge if the profile no longer has the point)."""
    try:
        return load_profile(profile).point(point).kind
    except (ProfileError, KeyError, ValueError):
        return PointKind.GAUGE


def mapped_series(
    session: Session,
    *,
    meter_ids: Sequence[int] | None = None,
    equipment_id: int | None = None,
    series_id: int | None = None,
) -> list[MappedSeries]:
    """The points mapped to some meters or an equipment (or the mapping of one series), with their series ids."""
    m = PointMapping
    query = (
        select(
            Series.id,
            Site.code,
            Edge.code,
            Device.name,
            m.point,
            m.quantity,
            Device.profile,
            m.meter_id,
            m.equipment_id,
        )  # fmt: skip
        .select_from(m)
        .join(Device, m.device_id == Device.id)
        .join(Edge, Device.edge_id == Edge.id)
        .join(Site, Edge.site_id == Site.id)
        .outerjoin(
            Series,
            and_(
                Series.site == Site.code,
                Series.edge == Edge.code,
                Series.device == Device.name,
                Series.point == m.point,
            ),  # fmt: skip
        )
        .order_by(Device.name, m.point)
    )
    if meter_ids is not None:
        query = query.where(m.meter_id.in_(meter_ids))
    if equipment_id is not None:
        query = query.where(m.equipment_id == equipment_id)
    if series_id is not None:
        query = query.where(Series.id == series_id)
    return [
        MappedSeries(sid, (site, edge, device, point), quantity, point_kind(profile, point), meter, equipment)
        for sid, site, edge, device, point, quantity, profile, meter, equipment in session.execute(query)
    ]


def device_points(session: Session, device_ids: list[int]) -> dict[int, list[PointMapping]]:
    out: dict[int, list[PointMapping]] = defaultdict(list)
    stmt = select(PointMapping).where(PointMapping.device_id.in_(device_ids)).order_by(PointMapping.point)
    for mapping in session.scalars(stmt):
        out[mapping.device_id].append(mapping)
    return out
