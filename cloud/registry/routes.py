"""Registry API: sites, buildings, units, meters, equipment, edges and their devices, and file import.

Reads are open to every signed-in user within their scope (owners: their own units and meters); writes
are declared per route by role. Creates take the same rows as an import file and obey the same rules.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile, status
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from cloud.api.deps import (
    ASSET_EDITORS,
    OPERATIONS,
    STAFF,
    BuildingDep,
    CurrentUser,
    EdgeDep,
    EquipmentDep,
    MeterDep,
    ScopeDep,
    SessionDep,
    SiteDep,
    UnitDep,
    require_roles,
)
from cloud.api.scope import Scope
from cloud.auth.models import Role
from cloud.auth.services import actor
from cloud.registry import services
from cloud.registry.importer import RegistryImportError, import_registry, parse_csv, parse_yaml
from cloud.registry.models import Building, Device, Edge, Equipment, Meter, MeterKind, MeterRole, Site, Unit
from cloud.registry.schemas import (
    BuildingPublic,
    BuildingRow,
    BuildingUpdate,
    DevicePublic,
    EdgePublic,
    EdgeRow,
    EquipmentPublic,
    EquipmentRow,
    EquipmentUpdate,
    ImportReport,
    MeterPublic,
    MeterRow,
    MeterUpdate,
    PointMappingPublic,
    SitePublic,
    SiteRow,
    SiteUpdate,
    UnitPublic,
    UnitRow,
    UnitUpdate,
)

router = APIRouter()
T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0)]
MAX_IMPORT_BYTES = 50 * 1024 * 1024


def _page(session: Session, stmt: Select[T], limit: int, offset: int) -> list[T]:
    return list(session.scalars(stmt.limit(limit).offset(offset)))


def _meter_public(meter: Meter) -> MeterPublic:
    return MeterPublic(
        id=meter.id, site_id=meter.site_id, code=meter.code, kind=meter.kind, role=meter.role,
        parent_id=meter.parent_id, unit_id=meter.unit_id, serves=[u.id for u in meter.serves],
    )  # fmt: skip


# Sites


@router.get("/sites", tags=["sites"])
def list_sites(session: SessionDep, scope: ScopeDep) -> list[SitePublic]:
    sites = session.scalars(select(Site).where(scope.where(Site)).order_by(Site.code))
    return [SitePublic.model_validate(s) for s in sites]


@router.post(
    "/sites", status_code=status.HTTP_201_CREATED, tags=["sites"],
    dependencies=[Depends(require_roles(Role.ADMIN, all_sites=True))],
)  # fmt: skip
def create_site(row: SiteRow, session: SessionDep, user: CurrentUser) -> SitePublic:
    site_id = services.create_site(session, actor(user), row)
    return SitePublic.model_validate(session.get(Site, site_id))


@router.get("/sites/{site_id}", tags=["sites"])
def get_site(site: SiteDep) -> SitePublic:
    return SitePublic.model_validate(site)


@router.patch("/sites/{site_id}", tags=["sites"], dependencies=[Depends(require_roles(Role.ADMIN))])
def update_site(site: SiteDep, data: SiteUpdate, session: SessionDep, user: CurrentUser) -> SitePublic:
    services.update_site(session, actor(user), site, data.changes())
    session.refresh(site)
    return SitePublic.model_validate(site)


# Buildings


@router.get("/sites/{site_id}/buildings", tags=["buildings"])
def list_buildings(site: SiteDep, session: SessionDep, scope: ScopeDep) -> list[BuildingPublic]:
    stmt = select(Building).where(Building.site_id == site.id, scope.where(Building)).order_by(Building.code)
    return [BuildingPublic.model_validate(b) for b in session.scalars(stmt)]


@router.post(
    "/sites/{site_id}/buildings", status_code=status.HTTP_201_CREATED, tags=["buildings"],
    dependencies=[Depends(require_roles(Role.ADMIN))],
)  # fmt: skip
def create_building(site: SiteDep, row: BuildingRow, session: SessionDep, user: CurrentUser) -> BuildingPublic:
    building_id = services.create(session, actor(user), site, "building", row)
    return BuildingPublic.model_validate(session.get(Building, building_id))


@router.get("/buildings/{building_id}", tags=["buildings"])
def get_building(building: BuildingDep) -> BuildingPublic:
    return BuildingPublic.model_validate(building)


@router.patch("/buildings/{building_id}", tags=["buildings"], dependencies=[Depends(require_roles(Role.ADMIN))])
def update_building(
    building: BuildingDep, data: BuildingUpdate, session: SessionDep, user: CurrentUser
) -> BuildingPublic:
    site = session.get_one(Site, building.site_id)
    services.update(session, actor(user), site, "building", building.code, data.changes())
    session.refresh(building)
    return BuildingPublic.model_validate(building)


# Units


@router.get("/units", tags=["units"])
def list_units(
    session: SessionDep,
    scope: ScopeDep,
    site_id: int | None = None,
    building_id: int | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[UnitPublic]:
    stmt = select(Unit).where(scope.where(Unit)).order_by(Unit.site_id, Unit.code)
    if site_id is not None:
        stmt = stmt.where(Unit.site_id == site_id)
    if building_id is not None:
        stmt = stmt.where(Unit.building_id == building_id)
    return [UnitPublic.model_validate(u) for u in _page(session, stmt, limit, offset)]


@router.post(
    "/sites/{site_id}/units", status_code=status.HTTP_201_CREATED, tags=["units"],
    dependencies=[Depends(require_roles(Role.ADMIN))],
)  # fmt: skip
def create_unit(site: SiteDep, row: UnitRow, session: SessionDep, user: CurrentUser) -> UnitPublic:
    unit_id = services.create(session, actor(user), site, "unit", row)
    return UnitPublic.model_validate(session.get(Unit, unit_id))


@router.get("/units/{unit_id}", tags=["units"])
def get_unit(unit: UnitDep) -> UnitPublic:
    return UnitPublic.model_validate(unit)


@router.patch("/units/{unit_id}", tags=["units"], dependencies=[Depends(require_roles(Role.ADMIN, Role.FINANCE))])
def update_unit(unit: UnitDep, data: UnitUpdate, session: SessionDep, user: CurrentUser) -> UnitPublic:
    """Owner details are kept by the property office (admin, finance): a new owner_phone moves the unit to the
    owner who binds that number; the previous owner no longer sees it."""
    site = session.get_one(Site, unit.site_id)
    services.update(session, actor(user), site, "unit", unit.code, data.changes())
    session.refresh(unit)
    return UnitPublic.model_validate(unit)


@router.get("/units/{unit_id}/meters", tags=["units"])
def list_unit_meters(unit: UnitDep, session: SessionDep, scope: ScopeDep) -> list[MeterPublic]:
    """The unit's own meters (and, for staff, the common meters that serve it)."""
    serving = select(Meter.id).join(Meter.serves).where(Unit.id == unit.id)
    stmt = (
        select(Meter)
        .where((Meter.unit_id == unit.id) | Meter.id.in_(serving), scope.where(Meter))
        .options(selectinload(Meter.serves))
        .order_by(Meter.code)
    )
    return [_meter_public(m) for m in session.scalars(stmt)]


# Meters


@router.get("/meters", tags=["meters"])
def list_meters(
    session: SessionDep,
    scope: ScopeDep,
    site_id: int | None = None,
    unit_id: int | None = None,
    kind: MeterKind | None = None,
    role: MeterRole | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[MeterPublic]:
    stmt = select(Meter).where(scope.where(Meter)).options(selectinload(Meter.serves))
    for column, value in ((Meter.site_id, site_id), (Meter.unit_id, unit_id), (Meter.kind, kind), (Meter.role, role)):
        if value is not None:
            stmt = stmt.where(column == value)
    stmt = stmt.order_by(Meter.site_id, Meter.code)
    return [_meter_public(m) for m in _page(session, stmt, limit, offset)]


@router.post(
    "/sites/{site_id}/meters", status_code=status.HTTP_201_CREATED, tags=["meters"],
    dependencies=[Depends(require_roles(*ASSET_EDITORS))],
)  # fmt: skip
def create_meter(site: SiteDep, row: MeterRow, session: SessionDep, user: CurrentUser) -> MeterPublic:
    meter_id = services.create(session, actor(user), site, "meter", row)
    return _meter_public(session.get_one(Meter, meter_id))


@router.get("/meters/{meter_id}", tags=["meters"])
def get_meter(meter: MeterDep) -> MeterPublic:
    return _meter_public(meter)


@router.patch("/meters/{meter_id}", tags=["meters"], dependencies=[Depends(require_roles(*ASSET_EDITORS))])
def update_meter(meter: MeterDep, data: MeterUpdate, session: SessionDep, user: CurrentUser) -> MeterPublic:
    site = session.get_one(Site, meter.site_id)
    services.update(session, actor(user), site, "meter", meter.code, data.changes())
    session.refresh(meter)
    session.refresh(meter, ["serves"])
    return _meter_public(meter)


# Equipment


@router.get("/equipment", tags=["equipment"], dependencies=[Depends(require_roles(*STAFF))])
def list_equipment(session: SessionDep, scope: ScopeDep, site_id: int | None = None) -> list[EquipmentPublic]:
    stmt = select(Equipment).where(scope.where(Equipment)).order_by(Equipment.site_id, Equipment.code)
    if site_id is not None:
        stmt = stmt.where(Equipment.site_id == site_id)
    return [EquipmentPublic.model_validate(e) for e in session.scalars(stmt)]


@router.post(
    "/sites/{site_id}/equipment", status_code=status.HTTP_201_CREATED, tags=["equipment"],
    dependencies=[Depends(require_roles(*ASSET_EDITORS))],
)  # fmt: skip
def create_equipment(site: SiteDep, row: EquipmentRow, session: SessionDep, user: CurrentUser) -> EquipmentPublic:
    equipment_id = services.create(session, actor(user), site, "equipment", row)
    return EquipmentPublic.model_validate(session.get(Equipment, equipment_id))


@router.get("/equipment/{equipment_id}", tags=["equipment"], dependencies=[Depends(require_roles(*STAFF))])
def get_equipment(equipment: EquipmentDep) -> EquipmentPublic:
    return EquipmentPublic.model_validate(equipment)


@router.patch("/equipment/{equipment_id}", tags=["equipment"], dependencies=[Depends(require_roles(*ASSET_EDITORS))])
def update_equipment(
    equipment: EquipmentDep, data: EquipmentUpdate, session: SessionDep, user: CurrentUser
) -> EquipmentPublic:
    site = session.get_one(Site, equipment.site_id)
    services.update(session, actor(user), site, "equipment", equipment.code, data.changes())
    session.refresh(equipment)
    return EquipmentPublic.model_validate(equipment)


# Edges (registration and devices; their live status is in cloud.api.monitoring)


@router.post(
    "/sites/{site_id}/edges", status_code=status.HTTP_201_CREATED, tags=["edges"],
    dependencies=[Depends(require_roles(*ASSET_EDITORS))],
)  # fmt: skip
def create_edge(site: SiteDep, row: EdgeRow, session: SessionDep, user: CurrentUser) -> EdgePublic:
    if row.devices:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "register devices by importing a registry file")
    edge_id = services.create(session, actor(user), site, "edge", row)
    return EdgePublic.model_validate(session.get(Edge, edge_id))


@router.get("/edges/{edge_id}/devices", tags=["edges"], dependencies=[Depends(require_roles(*OPERATIONS))])
def list_devices(edge: EdgeDep, session: SessionDep) -> list[DevicePublic]:
    devices = list(session.scalars(select(Device).where(Device.edge_id == edge.id).order_by(Device.name)))
    points = services.device_points(session, [d.id for d in devices])
    return [
        DevicePublic(
            id=d.id,
            edge_id=d.edge_id,
            name=d.name,
            profile=d.profile,
            unit_id=d.unit_id,
            equipment_id=d.equipment_id,
            points=[PointMappingPublic.model_validate(p) for p in points.get(d.id, [])],
        )  # fmt: skip
        for d in devices
    ]


# Import


def _check_import_scope(scope: Scope, session: Session, site_codes: list[str]) -> None:
    """Site admins import into their own sites only; the refusal does not say which sites exist."""
    if scope.all_sites:
        return
    mine = set(session.scalars(select(Site.code).where(scope.where(Site))))
    if not set(site_codes) <= mine:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the file names sites outside your scope")


@router.post("/registry/import", tags=["registry"], dependencies=[Depends(require_roles(Role.ADMIN))])
def import_file(
    user: CurrentUser,
    scope: ScopeDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="A registry YAML file, or a CSV unit roster")],
    dry_run: Annotated[bool, Form()] = False,
) -> ImportReport:
    """All or nothing: any invalid row and nothing is written (422 lists every error by row and field).

    A dry run checks and writes everything, then rolls back, so the report shows what an import would do.
    """
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    name = file.filename or "upload"
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"registry files are at most {MAX_IMPORT_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RegistryImportError(name, ["the file is not UTF-8 text"]) from None
    doc = parse_csv(text, name) if name.lower().endswith(".csv") else parse_yaml(text, name)
    _check_import_scope(scope, session, [s.code for s in doc.sites])
    report = import_registry(session, doc, actor(user), name)
    if dry_run:
        session.rollback()
    return report.model_copy(update={"dry_run": dry_run})
