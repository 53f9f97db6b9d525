"""Finance pages of the staff console (``/console/finance/...``): tariffs and their versions, bill runs with
the preview diff and progress, the approval queue, and the collection report with its downloads.

Finance and admin staff only, within their sites. Forms post back here and call the billing services, which
check and audit everything; each form runs in a savepoint, so a refused one is shown again with the service's
message and changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import SessionDep
from cloud.auth.models import User
from cloud.auth.services import UserError, actor
from cloud.billing import ledger
from cloud.billing.dues import local_day
from cloud.billing.models import Bill, BillRun, EntryState, LedgerEntry, Tariff
from cloud.billing.reports import CollectionReport, collection_csv, collection_report, collection_xlsx
from cloud.billing.runs import execute_run, start_run
from cloud.billing.tariffs import add_version
from cloud.console.pages import PageScope, lang_of
from cloud.portal.common import FINANCE, page_roles, render_money
from cloud.registry.models import Site, Unit

router = APIRouter(prefix="/console/finance", include_in_schema=False)
Staff = Annotated[User, Depends(page_roles(*FINANCE))]


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def _refused(response: HTMLResponse, error: str | None) -> HTMLResponse:
    if error:
        response.status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return response


# Tariffs


def _tariffs_page(
    request: Request, session: Session, user: User, scope: PageScope, form: dict[str, Any] | None = None
) -> HTMLResponse:
    tariffs = session.scalars(select(Tariff).where(scope.where(Tariff)).order_by(Tariff.site_id, Tariff.code)).all()
    sites = dict(session.execute(select(Site.id, Site.name).where(scope.where(Site))).all())
    drafts = {t.id: json.dumps(t.versions[-1].document, ensure_ascii=False, indent=2) for t in tariffs if t.versions}
    if form is not None:
        drafts[form["tariff_id"]] = form["document"]
    response = render_money(request, "finance_tariffs.html", user, tariffs=tariffs, sites=sites, drafts=drafts,
                            form=form or {}, added=request.query_params.get("added"))  # fmt: skip
    return _refused(response, (form or {}).get("error"))


@router.get("/tariffs")
def tariffs_page(request: Request, session: SessionDep, user: Staff, scope: PageScope) -> HTMLResponse:
    return _tariffs_page(request, session, user, scope)


@router.post("/tariffs/{tariff_id}/versions")
def new_tariff_version(
    request: Request,
    tariff_id: int,
    session: SessionDep,
    user: Staff,
    scope: PageScope,
    effective_from: Annotated[str, Form()] = "",
    document: Annotated[str, Form()] = "",
) -> Response:
    """A new version of a tariff from the form: an effective date and the tariff document (JSON)."""
    tariff = scope.get(session, Tariff, tariff_id)
    form: dict[str, Any] = {"tariff_id": tariff.id, "effective_from": effective_from, "document": document}
    try:
        with session.begin_nested():
            version = add_version(session, actor(user), tariff, _date(effective_from), _json(document))
    except UserError as exc:
        return _tariffs_page(request, session, user, scope, form | {"error": str(exc)})
    return _redirect(f"/console/finance/tariffs?added={version.id}#tariff-{tariff.id}")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f'effective_from: "{text}" is not a date; write it as YYYY-MM-DD, e.g. 2026-07-01') from None


def _json(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"document: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(parsed, dict):
        raise UserError("document: give the tariff as a JSON object ({...})")
    return parsed


# Approval queue


def _approvals_page(request: Request, session: Session, user: User, scope: PageScope, error: str | None = None
                    ) -> HTMLResponse:  # fmt: skip
    rows = session.execute(
        select(LedgerEntry, Bill.number, Unit.code, User.username)
        .join(Bill, Bill.id == LedgerEntry.bill_id)
        .join(Unit, Unit.id == LedgerEntry.unit_id)
        .outerjoin(User, User.id == LedgerEntry.created_by)
        .where(LedgerEntry.state == EntryState.PENDING, scope.where(LedgerEntry))
        .order_by(LedgerEntry.created_at, LedgerEntry.id)
    ).all()
    response = render_money(request, "finance_approvals.html", user, rows=rows, error=error,
                            done=request.query_params.get("done"))  # fmt: skip
    return _refused(response, error)


@router.get("/approvals")
def approvals_page(request: Request, session: SessionDep, user: Staff, scope: PageScope) -> HTMLResponse:
    return _approvals_page(request, session, user, scope)


@router.post("/approvals/{entry_id}")
def decide(
    request: Request,
    entry_id: int,
    session: SessionDep,
    user: Staff,
    scope: PageScope,
    decision: Annotated[str, Form()],
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Approve or reject one pending entry (the service refuses the entry's creator and repeat approvers)."""
    entry = scope.get(session, LedgerEntry, entry_id)
    try:
        with session.begin_nested():
            if decision == "approve":
                ledger.approve(session, user, entry.id, comment)
            elif decision == "reject":
                ledger.reject(session, user, entry.id, comment)
            else:
                raise UserError(f'decision must be "approve" or "reject", not "{decision}"')
    except UserError as exc:
        return _approvals_page(request, session, user, scope, str(exc))
    return _redirect(f"/console/finance/approvals?done={entry.id}")


# Collection report

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _months_back(today: date, months: int) -> str:
    index = today.year * 12 + today.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _report(
    session: SessionDep,
    scope: PageScope,
    site_id: int | None = None,
    period_from: Annotated[str | None, Query(pattern=PERIOD_PATTERN)] = None,
    period_to: Annotated[str | None, Query(pattern=PERIOD_PATTERN)] = None,
) -> CollectionReport | None:
    """The report the query asks for: a site of the user's (the first one by default) and the last 12 months
    by default; None when the user has no site."""
    today = local_day(datetime.now(UTC))
    if site_id is None:
        site_id = session.scalar(select(Site.id).where(scope.where(Site)).order_by(Site.code).limit(1))
        if site_id is None:
            return None
    site = scope.get(session, Site, site_id)
    first, last = period_from or _months_back(today, 11), period_to or _months_back(today, 0)
    if first > last:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"period_from {first} is after period_to {last}")
    return collection_report(session, site, first, last, today)


ReportDep = Annotated[CollectionReport | None, Depends(_report)]


@router.get("/collection")
def collection_page(request: Request, session: SessionDep, user: Staff, scope: PageScope, report: ReportDep
                    ) -> HTMLResponse:  # fmt: skip
    sites = session.execute(select(Site.id, Site.name).where(scope.where(Site)).order_by(Site.code)).all()
    query = "" if report is None else urlencode(
        {"site_id": report.site_id, "period_from": report.period_from, "period_to": report.period_to}
    )  # fmt: skip
    return render_money(request, "finance_collection.html", user, report=report, sites=sites, query=query)


def _download(report: CollectionReport | None, ext: str) -> dict[str, str]:
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no site to report on")
    name = f"collection-{report.site_code}-{report.period_from}-{report.period_to}.{ext}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/collection.csv", dependencies=[Depends(page_roles(*FINANCE))])
def collection_as_csv(request: Request, report: ReportDep) -> Response:
    headers = _download(report, "csv")
    assert report is not None
    return Response(collection_csv(report, lang_of(request)), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/collection.xlsx", dependencies=[Depends(page_roles(*FINANCE))])
def collection_as_xlsx(request: Request, report: ReportDep) -> Response:
    headers = _download(report, "xlsx")
    assert report is not None
    return Response(collection_xlsx(report, lang_of(request)), media_type=XLSX, headers=headers)


# Bill runs

PREVIEW_ROWS = 200
"""Preview bills and diff rows listed on the run page (the run's summary keeps them all)."""


def _runs_page(request: Request, session: Session, user: User, scope: PageScope, form: dict[str, Any] | None = None
               ) -> HTMLResponse:  # fmt: skip
    runs = session.execute(
        select(BillRun, Site.name)
        .join(Site, Site.id == BillRun.site_id)
        .where(scope.where(BillRun))
        .order_by(BillRun.started_at.desc(), BillRun.id.desc())
        .limit(50)
    ).all()
    sites = session.execute(select(Site.id, Site.name).where(scope.where(Site)).order_by(Site.code)).all()
    last_month = _months_back(local_day(datetime.now(UTC)), 1)
    form = {"period": last_month} | (form or {})
    response = render_money(request, "finance_runs.html", user, runs=runs, sites=sites, form=form)
    return _refused(response, form.get("error"))


@router.get("/runs")
def runs_page(request: Request, session: SessionDep, user: Staff, scope: PageScope) -> HTMLResponse:
    return _runs_page(request, session, user, scope)


@router.post("/runs")
def start_bill_run(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    user: Staff,
    scope: PageScope,
    site_id: Annotated[int, Form()],
    period: Annotated[str, Form()],
    issue: Annotated[bool, Form()] = False,
) -> Response:
    """Start a preview (or an issue) of a site's bills for a month; it runs after this request commits, and the
    run's page shows its progress."""
    site = scope.get(session, Site, site_id)
    try:
        with session.begin_nested():
            run = start_run(session, actor(user), site, period.strip(), issue=issue)
    except UserError as exc:
        form = {"site_id": site.id, "period": period, "issue": issue, "error": str(exc)}
        return _runs_page(request, session, user, scope, form)
    background.add_task(execute_run, request.app.state.engine, run.id)
    return _redirect(f"/console/finance/runs/{run.id}")


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: int, session: SessionDep, user: Staff, scope: PageScope) -> HTMLResponse:
    run = scope.get(session, BillRun, run_id)
    site = session.get(Site, run.site_id)
    summary = run.summary or {}
    preview = summary.get("bills", [])
    diff = summary.get("diff", [])
    counts = {
        "changed": len(diff),
        "unchanged": int(summary.get("unchanged", 0)),
        "new": max(0, len(preview) - len(diff) - int(summary.get("unchanged", 0))) if not run.issue else None,
    }
    return render_money(
        request, "finance_run.html", user, run=run, site=site, summary=summary, counts=counts,
        preview=preview[:PREVIEW_ROWS], diff=diff[:PREVIEW_ROWS], limit=PREVIEW_ROWS,
    )  # fmt: skip


@router.get("/runs/{run_id}/progress.json")
def run_progress(run_id: int, session: SessionDep, user: Staff, scope: PageScope) -> dict[str, Any]:
    """What the run page's progress bar polls while the run works through its batches."""
    run = scope.get(session, BillRun, run_id)
    return {"state": run.state.value, "units_done": run.units_done, "units_total": run.units_total,
            "error": run.error}  # fmt: skip
