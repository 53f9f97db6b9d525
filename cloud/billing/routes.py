"""Finance API for metered billing: tariffs and their versions, meter assignments, manual readings (import,
corrections, replacements), shared-cost pools and their approvals, bill runs (preview, issue, progress), and
bills.

Every route is scoped: staff reach their sites, owners only their own units' bills (anything else is 404).
Changes are for finance and admins; meter readers (engineers, technicians) may also import readings.
"""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Depends, File, HTTPException, Query, Request, UploadFile, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import STAFF, CurrentUser, MeterDep, ScopeDep, SessionDep, SiteDep, require_roles
from cloud.auth.models import Role
from cloud.auth.services import UserError, actor
from cloud.billing import pools, readings, runs, tariffs
from cloud.billing.compute import ms
from cloud.billing.engine import AllocationMethod
from cloud.billing.models import (
    Bill,
    BillLine,
    BillRun,
    MeterReading,
    PoolKind,
    ReadingCorrection,
    SharedPool,
    Tariff,
    TariffKind,
)
from cloud.billing.usage import SiteUsage
from cloud.registry.models import Meter, MeterRole, Site
from cloud.timeseries.query import DEFAULT_TZ

router = APIRouter(prefix="/billing", tags=["billing"])
FINANCE = (Role.ADMIN, Role.FINANCE)
READERS = (Role.ADMIN, Role.FINANCE, Role.ENGINEER, Role.TECHNICIAN)
"""Who may enter meter readings."""
MAX_IMPORT_BYTES = 5_000_000
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TariffIn(_In):
    code: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    kind: TariffKind
    effective_from: date
    document: dict[str, Any]


class VersionIn(_In):
    effective_from: date
    document: dict[str, Any]


class AssignmentIn(_In):
    tariff_id: int | None
    """None: the meter is no longer billed."""


class ReadingIn(_In):
    read_at: AwareDatetime
    value: Decimal


class CorrectionIn(_In):
    read_at: AwareDatetime
    value: Decimal
    reason: str


class ReplacementIn(_In):
    replaced_at: AwareDatetime
    old_final: Decimal
    new_initial: Decimal


class PoolIn(_In):
    code: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    kind: PoolKind
    meter_id: int
    tariff_id: int
    method: AllocationMethod
    weights: dict[str, str] = Field(default_factory=dict)
    requires_approval: bool = False


class PoolApprovalIn(_In):
    period: str
    quantity: Decimal


class RunIn(_In):
    period: str
    issue: bool = False
    due_date: date | None = None


def _reading_error(exc: readings.ReadingError) -> HTTPException:
    detail = [{"row": e.row, "column": e.column, "message": e.message} for e in exc.errors]
    return HTTPException(exc.status, detail)


def _tariff(session: Session, scope: Any, tariff_id: int) -> Tariff:
    return scope.get(session, Tariff, tariff_id)  # type: ignore[no-any-return]


def tariff_public(tariff: Tariff) -> dict[str, Any]:
    return {
        "id": tariff.id,
        "site_id": tariff.site_id,
        "code": tariff.code,
        "name": tariff.name,
        "kind": tariff.kind,
        "versions": [{"id": v.id, "effective_from": v.effective_from, "document": v.document} for v in tariff.versions],
    }


# --- tariffs ---


@router.get("/sites/{site_id}/tariffs", dependencies=[Depends(require_roles(*STAFF))])
def list_tariffs(site: SiteDep, session: SessionDep) -> list[dict[str, Any]]:
    return [
        tariff_public(t) for t in session.scalars(select(Tariff).where(Tariff.site_id == site.id).order_by(Tariff.code))
    ]


@router.post("/sites/{site_id}/tariffs", status_code=201, dependencies=[Depends(require_roles(*FINANCE))])
def create_tariff(body: TariffIn, site: SiteDep, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """A tariff and its first version; a document the engine rejects is a 422 naming the field and the fix."""
    tariff = tariffs.create_tariff(
        session, actor(user), site, body.code, body.name, body.kind, body.effective_from, body.document
    )
    session.refresh(tariff)
    return tariff_public(tariff)


@router.get("/tariffs/{tariff_id}", dependencies=[Depends(require_roles(*STAFF))])
def get_tariff(tariff_id: int, session: SessionDep, scope: ScopeDep) -> dict[str, Any]:
    return tariff_public(_tariff(session, scope, tariff_id))


@router.post("/tariffs/{tariff_id}/versions", status_code=201, dependencies=[Depends(require_roles(*FINANCE))])
def add_version(
    tariff_id: int, body: VersionIn, session: SessionDep, scope: ScopeDep, user: CurrentUser
) -> dict[str, Any]:
    """A new dated version (versions are never edited); runs split a month at its effective date."""
    tariff = _tariff(session, scope, tariff_id)
    tariffs.add_version(session, actor(user), tariff, body.effective_from, body.document)
    session.refresh(tariff)
    return tariff_public(tariff)


@router.put("/meters/{meter_id}/tariff", dependencies=[Depends(require_roles(*FINANCE))])
def assign_tariff(
    body: AssignmentIn, meter: MeterDep, session: SessionDep, scope: ScopeDep, user: CurrentUser
) -> dict[str, Any]:
    tariff = None if body.tariff_id is None else _tariff(session, scope, body.tariff_id)
    tariffs.assign(session, actor(user), meter, tariff)
    return {"meter_id": meter.id, "tariff_id": body.tariff_id}


# --- readings ---


@router.post("/sites/{site_id}/readings/import", status_code=201, dependencies=[Depends(require_roles(*READERS))])
def import_readings(
    site: SiteDep,
    session: SessionDep,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="CSV (UTF-8) or XLSX with columns meter, read_at, value")],
) -> dict[str, Any]:
    """All or nothing: a file with any bad row stores nothing, and the 422 lists every row, column and fix."""
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"reading files are at most {MAX_IMPORT_BYTES} bytes")
    name = (file.filename or "upload.csv").lower()
    if not name.endswith((".csv", ".xlsx")):
        raise HTTPException(422, [{"row": 1, "column": "-", "message": "upload a .csv or .xlsx file"}])
    try:
        good, errors = readings.check_rows(readings.parse_file(data, "xlsx" if name.endswith(".xlsx") else "csv"))
        stored = readings.import_readings(session, actor(user), site, good, errors=errors, label=name)
    except readings.ReadingError as exc:
        raise _reading_error(exc) from None
    return {"stored": stored}


@router.get("/meters/{meter_id}/readings", dependencies=[Depends(require_roles(*STAFF))])
def meter_readings(meter: MeterDep, session: SessionDep) -> dict[str, Any]:
    """Manual readings and every correction (who, when, old, new, why) of a meter."""
    stored = session.scalars(
        select(MeterReading).where(MeterReading.meter_id == meter.id).order_by(MeterReading.read_at)
    )
    fixes = session.scalars(
        select(ReadingCorrection).where(ReadingCorrection.meter_id == meter.id).order_by(ReadingCorrection.id)
    )
    return {
        "readings": [{"id": r.id, "read_at": r.read_at, "value": str(r.value), "source": r.source} for r in stored],
        "corrections": [
            {
                "id": c.id,
                "read_at": c.read_at,
                "old_value": None if c.old_value is None else str(c.old_value),
                "new_value": str(c.new_value),
                "reason": c.reason,
                "corrected_by": c.corrected_by,
                "corrected_at": c.corrected_at,
            }
            for c in fixes
        ],
    }


@router.post("/meters/{meter_id}/readings", status_code=201, dependencies=[Depends(require_roles(*READERS))])
def add_reading(body: ReadingIn, meter: MeterDep, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    site = session.get(Site, meter.site_id)
    assert site is not None
    try:
        readings.import_readings(
            session,
            actor(user),
            site,
            [(1, readings.NewReading(meter.code, body.read_at, body.value))],
            source=readings.ReadingSource.MANUAL,
        )
    except readings.ReadingError as exc:
        raise _reading_error(exc) from None
    return {"meter_id": meter.id, "read_at": body.read_at, "value": str(body.value)}


@router.post("/meters/{meter_id}/corrections", status_code=201, dependencies=[Depends(require_roles(*FINANCE))])
def correct(body: CorrectionIn, meter: MeterDep, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """The only way a reading changes. A telemetry meter is corrected at billing boundaries (00:00 local)."""
    at_ms = ms(body.read_at)
    boundary = body.read_at.astimezone(ZoneInfo(DEFAULT_TZ)).time() == time(0)
    usage = SiteUsage.load(session, meter.site_id, [meter.id], [at_ms] if boundary else [])
    if usage.has_telemetry(meter.id) and not boundary:
        raise HTTPException(
            422,
            [
                {
                    "row": 1,
                    "column": "read_at",
                    "message": "a telemetry meter is corrected at a billing boundary: 00:00 Beijing time",
                }
            ],
        )
    before = usage.reading(meter.id, at_ms)
    old = None if before is None else before.reading.value
    try:
        fix = readings.correct_reading(session, actor(user), meter, body.read_at, body.value, body.reason, old)
    except readings.ReadingError as exc:
        raise _reading_error(exc) from None
    return {
        "id": fix.id,
        "old_value": None if fix.old_value is None else str(fix.old_value),
        "new_value": str(fix.new_value),
        "reason": fix.reason,
    }


@router.post("/meters/{meter_id}/replacements", status_code=201, dependencies=[Depends(require_roles(*FINANCE))])
def replace(body: ReplacementIn, meter: MeterDep, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    try:
        row = readings.record_replacement(
            session, actor(user), meter, body.replaced_at, body.old_final, body.new_initial
        )
    except readings.ReadingError as exc:
        raise _reading_error(exc) from None
    return {"id": row.id, "replaced_at": row.replaced_at}


# --- pools ---


def pool_public(pool: SharedPool) -> dict[str, Any]:
    return {"id": pool.id, "site_id": pool.site_id, **pools.pool_snapshot(pool)}


@router.get("/sites/{site_id}/pools", dependencies=[Depends(require_roles(*STAFF))])
def list_pools(site: SiteDep, session: SessionDep) -> list[dict[str, Any]]:
    query = select(SharedPool).where(SharedPool.site_id == site.id).order_by(SharedPool.code)
    return [pool_public(p) for p in session.scalars(query)]


@router.post("/sites/{site_id}/pools", status_code=201, dependencies=[Depends(require_roles(*FINANCE))])
def create_pool(body: PoolIn, site: SiteDep, session: SessionDep, scope: ScopeDep, user: CurrentUser) -> dict[str, Any]:
    meter = scope.get(session, Meter, body.meter_id)
    if meter.site_id != site.id or meter.role is MeterRole.SUB:
        raise UserError(f"meter {meter.code} cannot carry a pool of site {site.code}")
    pool = pools.create_pool(
        session,
        actor(user),
        meter,
        code=body.code,
        name=body.name,
        kind=body.kind,
        tariff=_tariff(session, scope, body.tariff_id),
        method=body.method,
        weights=body.weights,
        requires_approval=body.requires_approval,
    )
    return pool_public(pool)


@router.post("/pools/{pool_id}/approvals", status_code=201, dependencies=[Depends(require_roles(*FINANCE))])
def approve_pool(
    pool_id: int, body: PoolApprovalIn, session: SessionDep, scope: ScopeDep, user: CurrentUser
) -> dict[str, Any]:
    """Release the period's pooled quantity, as a preview showed it, for allocation."""
    runs.parse_period(body.period)
    pool = scope.get(session, SharedPool, pool_id)
    approval = pools.approve(session, actor(user), pool, body.period, body.quantity)
    return {"pool_id": pool.id, "period": approval.period, "quantity": str(approval.quantity)}


# --- runs ---


def run_public(run: BillRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "site_id": run.site_id,
        "period": run.period,
        "issue": run.issue,
        "state": run.state,
        "units_total": run.units_total,
        "units_done": run.units_done,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "summary": run.summary,
    }


@router.post("/sites/{site_id}/runs", status_code=202, dependencies=[Depends(require_roles(*FINANCE))])
def start_run(
    body: RunIn, site: SiteDep, session: SessionDep, user: CurrentUser, request: Request, background: BackgroundTasks
) -> dict[str, Any]:
    """Start a preview (``issue`` false) or an issue; poll ``GET /billing/runs/{id}`` for progress and result."""
    run = runs.start_run(session, actor(user), site, body.period, issue=body.issue)
    background.add_task(runs.execute_run, request.app.state.engine, run.id, due_date=body.due_date)
    return run_public(run)


@router.get("/runs/{run_id}", dependencies=[Depends(require_roles(*FINANCE))])
def get_run(run_id: int, session: SessionDep, scope: ScopeDep) -> dict[str, Any]:
    return run_public(scope.get(session, BillRun, run_id))


@router.get("/sites/{site_id}/runs", dependencies=[Depends(require_roles(*FINANCE))])
def list_runs(site: SiteDep, session: SessionDep, period: str | None = None) -> list[dict[str, Any]]:
    query = select(BillRun).where(BillRun.site_id == site.id).order_by(BillRun.id.desc()).limit(100)
    if period is not None:
        query = query.where(BillRun.period == period)
    return [{k: v for k, v in run_public(r).items() if k != "summary"} for r in session.scalars(query)]


# --- bills ---


def line_public(line: BillLine) -> dict[str, Any]:
    return {
        "kind": line.kind,
        "label": line.label,
        "label_en": line.detail.get("label_en"),
        "meter_id": line.meter_id,
        "quantity": None if line.quantity is None else str(line.quantity),
        "unit_price": None if line.unit_price is None else str(line.unit_price),
        "amount_fen": line.amount_fen,
        "detail": line.detail,
    }


def bill_public(bill: Bill, *, lines: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": bill.id,
        "number": bill.number,
        "site_id": bill.site_id,
        "unit_id": bill.unit_id,
        "period": bill.period,
        "total_fen": bill.total_fen,
        "issued_at": bill.issued_at,
        "due_date": bill.due_date,
    }
    if lines:
        out["lines"] = [line_public(line) for line in bill.lines]
    return out


@router.get("/bills", dependencies=[Depends(require_roles(*STAFF, Role.OWNER))])
def list_bills(
    session: SessionDep,
    scope: ScopeDep,
    site_id: int | None = None,
    unit_id: int | None = None,
    period: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """Bills in the caller's scope (owners: their own units), newest first; page with ``before_id``."""
    query = select(Bill).where(scope.where(Bill)).order_by(Bill.id.desc()).limit(limit)
    for column, value in ((Bill.site_id, site_id), (Bill.unit_id, unit_id), (Bill.period, period)):
        if value is not None:
            query = query.where(column == value)
    if before_id is not None:
        query = query.where(Bill.id < before_id)
    return [bill_public(b, lines=False) for b in session.scalars(query)]


@router.get("/bills/{bill_id}", dependencies=[Depends(require_roles(*STAFF, Role.OWNER))])
def get_bill(bill_id: int, session: SessionDep, scope: ScopeDep) -> dict[str, Any]:
    """A bill with its lines (readings used in each line's detail) and the corrections made since."""
    bill = scope.get(session, Bill, bill_id)
    out = bill_public(bill, lines=True)
    corrections = session.scalars(
        select(BillLine)
        .where(BillLine.bill_id == bill.id, BillLine.entry_id.is_not(None))
        .order_by(BillLine.entry_id, BillLine.position)
    )
    out["correction_lines"] = [line_public(line) | {"entry_id": line.entry_id} for line in corrections]
    return out
