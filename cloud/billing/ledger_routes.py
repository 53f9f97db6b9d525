"""Ledger API: adjustments, waivers and voids with their approvals, balances, owner statements, the site
collection report (JSON, CSV, XLSX), the printable bill, and the per-site billing rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from cloud.api.deps import CurrentUser, ScopeDep, SessionDep, SiteDep, UnitDep, require_roles
from cloud.audit.services import Change, record
from cloud.auth.models import Role
from cloud.auth.services import UserError
from cloud.billing import ledger
from cloud.billing.balances import BillBalance, bill_balance
from cloud.billing.dues import local_day
from cloud.billing.models import Bill, BillLine, EntryKind, EntryState, LedgerEntry
from cloud.billing.money import yuan
from cloud.billing.reports import (
    CollectionReport,
    Statement,
    collection_csv,
    collection_report,
    collection_xlsx,
    statement,
)
from cloud.billing.rules import ApprovalRule, BillingPolicy, Policy, policy_of
from cloud.console.i18n import pick_lang
from cloud.console.pages import render
from cloud.registry.models import Site, Unit

router = APIRouter(prefix="/billing", tags=["ledger"])
FINANCE = (Role.FINANCE, Role.ADMIN)
Period = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class EntryCreate(BaseModel):
    kind: EntryKind
    amount_fen: int | None = Field(
        default=None, description="Adjustment: signed fen (+ charges more). Waiver: fen to forgive. Void: leave out."
    )
    reason: str = Field(min_length=1, max_length=2000)


class Decision(BaseModel):
    comment: str = Field(default="", max_length=2000)


class ApprovalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    level: int
    user_id: int
    approved: bool
    comment: str
    at: datetime


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    unit_id: int
    bill_id: int | None
    kind: EntryKind
    amount_fen: int
    reason: str
    state: EntryState
    approvals_required: int
    approvals: list[ApprovalOut]
    created_by: int | None
    created_at: datetime
    effective_at: datetime | None


class QueuedEntry(EntryOut):
    bill_number: str
    can_decide: bool
    """False when the user created it or approved an earlier level."""


class PolicyIn(BaseModel):
    late_fee_daily_rate: Decimal = Field(ge=0, lt=Decimal("0.1"), description="0.0005 = 0.05% a day")
    late_fee_cap_rate: Decimal | None = Field(default=None, ge=0, le=10, description="1 = 100% of the bill")
    late_fee_cap_fen: int | None = Field(default=None, ge=0)
    reminder_days_before: int = Field(ge=0, le=60)


class RuleIn(BaseModel):
    kind: EntryKind
    min_amount_fen: int = Field(ge=0)
    levels: int = Field(ge=1, le=5)


class RulesIn(BaseModel):
    rules: list[RuleIn] = Field(max_length=50)


def _bill(bill_id: int, session: SessionDep, scope: ScopeDep) -> Bill:
    return scope.get(session, Bill, bill_id)


BillDep = Annotated[Bill, Depends(_bill)]


@router.post(
    "/bills/{bill_id}/entries",
    dependencies=[Depends(require_roles(Role.FINANCE))],
    status_code=status.HTTP_201_CREATED,
)
def create_entry(bill: BillDep, body: EntryCreate, session: SessionDep, user: CurrentUser) -> EntryOut:
    """A pending adjustment, waiver or void; it changes nothing until approved by someone else."""
    entry = ledger.create_entry(session, user, bill.id, body.kind, body.reason, body.amount_fen)
    return EntryOut.model_validate(entry)


@router.get("/bills/{bill_id}/entries")
def bill_entries(bill: BillDep, session: SessionDep) -> list[EntryOut]:
    rows = session.scalars(select(LedgerEntry).where(LedgerEntry.bill_id == bill.id).order_by(LedgerEntry.id))
    return [EntryOut.model_validate(e) for e in rows]


class BalanceOut(BaseModel):
    bill_id: int
    number: str
    period: str
    due_date: date
    total_fen: int
    charges_fen: int
    reductions_fen: int
    paid_fen: int
    receivable_fen: int
    outstanding_fen: int
    settled: bool

    @classmethod
    def of(cls, b: BillBalance) -> BalanceOut:
        return cls(
            bill_id=b.bill_id, number=b.number, period=b.period, due_date=b.due_date, total_fen=b.total_fen,
            charges_fen=b.charges_fen, reductions_fen=b.reductions_fen, paid_fen=b.paid_fen,
            receivable_fen=b.receivable_fen, outstanding_fen=b.outstanding_fen, settled=b.settled,
        )  # fmt: skip


@router.get("/bills/{bill_id}/balance")
def balance(bill: BillDep, session: SessionDep) -> BalanceOut:
    """What the bill owes now: as issued + effective entries - payments applied."""
    return BalanceOut.of(bill_balance(session, bill.id))


@router.get("/approvals", dependencies=[Depends(require_roles(*FINANCE))])
def approval_queue(
    session: SessionDep, scope: ScopeDep, user: CurrentUser, site_id: int | None = None
) -> list[QueuedEntry]:
    """Pending entries of the user's sites, oldest first."""
    stmt = (
        select(LedgerEntry, Bill.number)
        .join(Bill, Bill.id == LedgerEntry.bill_id)
        .where(LedgerEntry.state == EntryState.PENDING, scope.where(LedgerEntry))
        .order_by(LedgerEntry.created_at, LedgerEntry.id)
    )
    if site_id is not None:
        stmt = stmt.where(LedgerEntry.site_id == site_id)
    return [
        QueuedEntry.model_validate(
            {
                **EntryOut.model_validate(entry).model_dump(),
                "bill_number": number,
                "can_decide": entry.created_by != user.id and all(a.user_id != user.id for a in entry.approvals),
            }
        )  # fmt: skip
        for entry, number in session.execute(stmt)
    ]


def _scoped_entry(entry_id: int, session: SessionDep, scope: ScopeDep) -> LedgerEntry:
    return scope.get(session, LedgerEntry, entry_id)


EntryDep = Annotated[LedgerEntry, Depends(_scoped_entry)]


@router.post("/entries/{entry_id}/approve", dependencies=[Depends(require_roles(*FINANCE))])
def approve(entry: EntryDep, body: Decision, session: SessionDep, user: CurrentUser) -> EntryOut:
    return EntryOut.model_validate(ledger.approve(session, user, entry.id, body.comment))


@router.post("/entries/{entry_id}/reject", dependencies=[Depends(require_roles(*FINANCE))])
def reject(entry: EntryDep, body: Decision, session: SessionDep, user: CurrentUser) -> EntryOut:
    return EntryOut.model_validate(ledger.reject(session, user, entry.id, body.comment))


def _today() -> date:
    return local_day(datetime.now(UTC))


@router.get("/units/{unit_id}/statement")
def unit_statement(unit: UnitDep, session: SessionDep, as_of: date | None = None) -> Statement:
    """Every bill of the unit with what was charged, forgiven and paid; its payments; what it owes or has in
    credit. Owners see their own units only."""
    return statement(session, unit, as_of or _today())


def _report(site: SiteDep, session: SessionDep, period_from: Period, period_to: Period,
            as_of: date | None = None) -> CollectionReport:  # fmt: skip
    return collection_report(session, site, period_from, period_to, as_of or _today())


ReportDep = Annotated[CollectionReport, Depends(_report)]


@router.get("/sites/{site_id}/collection", dependencies=[Depends(require_roles(*FINANCE))])
def collection(site: SiteDep, report: ReportDep) -> dict[str, Any]:
    """Receivable, waived, received, outstanding, overdue and collection rate per period and in total."""
    rows = [*report.rows, report.total]
    return {
        "site_id": report.site_id, "period_from": report.period_from, "period_to": report.period_to,
        "as_of": report.as_of.isoformat(),
        "rows": [{**row.__dict__, "rate_percent": row.rate_percent} for row in rows[:-1]],
        "total": {**report.total.__dict__, "rate_percent": report.total.rate_percent},
    }  # fmt: skip


def _filename(report: CollectionReport, ext: str) -> dict[str, str]:
    name = f"collection-{report.site_code}-{report.period_from}-{report.period_to}.{ext}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/sites/{site_id}/collection.csv", dependencies=[Depends(require_roles(*FINANCE))])
def collection_as_csv(site: SiteDep, report: ReportDep, request: Request) -> Response:
    body = collection_csv(report, pick_lang(request.query_params.get("lang")))
    return Response(body, media_type="text/csv; charset=utf-8", headers=_filename(report, "csv"))


@router.get("/sites/{site_id}/collection.xlsx", dependencies=[Depends(require_roles(*FINANCE))])
def collection_as_xlsx(site: SiteDep, report: ReportDep, request: Request) -> Response:
    body = collection_xlsx(report, pick_lang(request.query_params.get("lang")))
    return Response(body, media_type=XLSX, headers=_filename(report, "xlsx"))


DETAIL_KEYS = {"start": "print_detail_start", "end": "print_detail_end", "tier": "print_detail_tier",
               "period": "print_detail_period", "usage": "print_detail_usage"}  # fmt: skip


def _detail_items(detail: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A line's detail flattened for print (``readings.start`` -> value), nested readings included."""
    items: list[tuple[str, str]] = []
    for key, value in detail.items():
        if isinstance(value, dict):
            items.extend(_detail_items(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            items.append((f"{prefix}{key}", ", ".join(str(v) for v in value)))
        else:
            items.append((f"{prefix}{key}", str(value)))
    return items


@router.get("/bills/{bill_id}/print", response_class=HTMLResponse)
def printable_bill(bill: BillDep, request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The bill as print-ready HTML (Chinese by default): every line with its readings, tier, unit price and
    amount, the changes made after issue, what was paid and what is outstanding."""
    unit = session.get(Unit, bill.unit_id)
    site = session.get(Site, bill.site_id)
    lines = session.scalars(select(BillLine).where(BillLine.bill_id == bill.id).order_by(BillLine.entry_id.is_not(None),
                                                                                        BillLine.position))  # fmt: skip
    entries = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.bill_id == bill.id, LedgerEntry.state == EntryState.EFFECTIVE)
        .order_by(LedgerEntry.effective_at, LedgerEntry.id)
    ).all()
    return render(
        request, "bill_print.html", user, bill=bill, unit=unit, site=site, lines=lines.all(), entries=entries,
        balance=bill_balance(session, bill.id), yuan=yuan, detail_items=_detail_items, detail_keys=DETAIL_KEYS,
        local_date=lambda at: local_day(at).isoformat(),
    )  # fmt: skip


def _policy_out(policy: Policy) -> dict[str, Any]:
    return dict(policy.__dict__)


@router.get("/sites/{site_id}/policy", dependencies=[Depends(require_roles(*FINANCE))])
def get_policy(site: SiteDep, session: SessionDep) -> dict[str, Any]:
    """The site's late-fee rule and reminder timing (defaults when none was set)."""
    rules = session.scalars(select(ApprovalRule).where(ApprovalRule.site_id == site.id).order_by(ApprovalRule.id))
    levels = [{"kind": r.kind, "min_amount_fen": r.min_amount_fen, "levels": r.levels} for r in rules]
    return {**_policy_out(policy_of(session, site.id)), "approval_rules": levels}


@router.put("/sites/{site_id}/policy", dependencies=[Depends(require_roles(Role.ADMIN))])
def set_policy(site: SiteDep, body: PolicyIn, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    before = _policy_out(policy_of(session, site.id))
    row = session.scalar(select(BillingPolicy).where(BillingPolicy.site_id == site.id).with_for_update())
    if row is None:
        row = BillingPolicy(site_id=site.id)
        session.add(row)
    for key, value in body.model_dump().items():
        setattr(row, key, value)
    session.flush()
    after = _policy_out(policy_of(session, site.id))
    record(
        session, ledger.actor_of(user), [Change("update", "billing_policy", row.id, site.code, before, after, site.id)]
    )
    return after


@router.put("/sites/{site_id}/approval-rules", dependencies=[Depends(require_roles(Role.ADMIN))])
def set_approval_rules(site: SiteDep, body: RulesIn, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Replace the site's approval levels, e.g. ``[{"kind": "waiver", "min_amount_fen": 50000, "levels": 2}]``:
    waivers from 500 yuan need two approvals. Entries already pending keep the levels they were created with."""
    keys = [(r.kind, r.min_amount_fen) for r in body.rules]
    if len(set(keys)) != len(keys):
        raise UserError("each (kind, min_amount_fen) may appear once")
    old = session.scalars(select(ApprovalRule).where(ApprovalRule.site_id == site.id)).all()
    before = {"rules": sorted((r.kind.value, r.min_amount_fen, r.levels) for r in old)}
    session.execute(delete(ApprovalRule).where(ApprovalRule.site_id == site.id))
    session.add_all(ApprovalRule(site_id=site.id, **r.model_dump()) for r in body.rules)
    session.flush()
    after = {"rules": sorted((r.kind.value, r.min_amount_fen, r.levels) for r in body.rules)}
    record(session, ledger.actor_of(user), [Change("update", "ledger_approval_rules", site.id, site.code, before, after,
                                          site.id)])  # fmt: skip
    return after
