"""Patrol pages: the guard's mobile web app, the supervisor's live round view and the printable QR sheet.

The guard page is an installable web app (manifest + service worker that keeps the page shell for use
without signal). With signal, each scan fetches a challenge and posts at once (normal trust). Without it,
scans are queued in the browser (localStorage) with the phone's time and a unique reference, and synced when
the connection returns: stored once each, with their own times, marked offline (low trust).

The page's JSON endpoints use the console's session cookie; the challenge is bound to that cookie.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy import select

from cloud.api.deps import SESSION_COOKIE, SessionDep
from cloud.auth.models import Role, User
from cloud.console.pages import HERE, PageScope, PageUser, render
from cloud.patrol.codes import sheet_entries
from cloud.patrol.exceptions import report_exception
from cloud.patrol.models import Checkpoint, PatrolRound
from cloud.patrol.plans import TZ
from cloud.patrol.routes import (
    ChallengeIn,
    ChallengePublic,
    RoundPublic,
    ScanIn,
    ScanPublic,
    SyncIn,
    SyncResult,
    round_view,
    scan_public,
    sync_scans,
    user_errors,
)
from cloud.patrol.scans import accept_online_scan, issue_challenge
from cloud.registry.models import Building, Site
from cloud.tickets.routes import StoreDep

router = APIRouter(prefix="/console/patrol", include_in_schema=False)
SERVICE_WORKER = HERE / "static" / "patrol-sw.js"


def _require(user: User, *roles: Role) -> None:
    if user.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this page is for " + ", ".join(r.value for r in roles))


def _site(session: SessionDep, scope: PageScope, user: User, site_id: int | None) -> Site:
    """The site asked for, or the user's only/first site."""
    if site_id is not None:
        return scope.get(session, Site, site_id)
    site = session.scalars(select(Site).where(scope.where(Site)).order_by(Site.id).limit(1)).first()
    if site is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no site")
    return site


def _buildings(session: SessionDep, site: Site) -> dict[int, str]:
    return {b.id: b.name for b in session.scalars(select(Building).where(Building.site_id == site.id))}


def _token(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")


def rounds_of_day(session: SessionDep, site: Site, user: User, now: datetime) -> list[RoundPublic]:
    """Today's rounds at the site (local day); a guard sees their own."""
    start = datetime.combine(now.astimezone(TZ).date(), datetime.min.time(), TZ)
    rounds = session.scalars(
        select(PatrolRound)
        .where(PatrolRound.site_id == site.id, PatrolRound.starts_at >= start,
               PatrolRound.starts_at < start + timedelta(days=1))
        .order_by(PatrolRound.starts_at, PatrolRound.id)
    ).all()  # fmt: skip
    if user.role is Role.GUARD:
        rounds = [r for r in rounds if user.id in r.assignees]
    return [round_view(session, r) for r in rounds]


@router.get("/guard")
def guard_page(
    request: Request, session: SessionDep, user: PageUser, scope: PageScope, site_id: int | None = None
) -> HTMLResponse:
    _require(user, Role.GUARD)
    site = _site(session, scope, user, site_id)
    return render(request, "patrol_guard.html", user, site=site, buildings=_buildings(session, site))


@router.get("/sw.js")
def service_worker() -> FileResponse:
    """Served under /console/patrol/ so its scope covers the guard page."""
    return FileResponse(SERVICE_WORKER, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@router.get("/rounds.json")
def rounds_json(session: SessionDep, user: PageUser, scope: PageScope, site_id: int | None = None) -> list[RoundPublic]:
    _require(user, Role.GUARD, Role.ADMIN, Role.ENGINEER)
    site = _site(session, scope, user, site_id)
    return rounds_of_day(session, site, user, datetime.now(TZ))


@router.post("/challenge")
def challenge(
    body: ChallengeIn, request: Request, session: SessionDep, user: PageUser, scope: PageScope
) -> ChallengePublic:
    _require(user, Role.GUARD)
    site = scope.get(session, Site, body.site_id)
    issued = issue_challenge(session, user, site.id, _token(request))
    return ChallengePublic(nonce=issued.nonce, expires_at=issued.expires_at)


@router.post("/scan")
def scan(body: ScanIn, request: Request, session: SessionDep, user: PageUser) -> ScanPublic:
    _require(user, Role.GUARD)
    position = (body.lat, body.lon) if body.lat is not None and body.lon is not None else None
    with user_errors():
        outcome = accept_online_scan(session, user=user, token=_token(request), code=body.code, nonce=body.nonce,
                                     position=position)  # fmt: skip
    return scan_public(outcome)


@router.post("/sync")
def sync(body: SyncIn, session: SessionDep, user: PageUser, scope: PageScope) -> list[SyncResult]:
    _require(user, Role.GUARD)
    site = scope.get(session, Site, body.site_id)
    return sync_scans(session, user, site.id, body.scans)


@router.post("/exception")
def exception(
    checkpoint_id: Annotated[int, Form()], note: Annotated[str, Form(min_length=2, max_length=2000)],
    client_ref: Annotated[str, Form(min_length=8, max_length=64)], session: SessionDep, user: PageUser,
    scope: PageScope, store: StoreDep, photo: Annotated[UploadFile | None, File()] = None,
) -> dict[str, int]:  # fmt: skip
    """The guard page's exception report (note and photo): a ticket."""
    _require(user, Role.GUARD)
    checkpoint = scope.get(session, Checkpoint, checkpoint_id)
    image = (photo.filename or "photo", photo.file.read(store.max_bytes + 1)) if photo is not None else None
    ticket = report_exception(session, store, user, checkpoint, note, client_ref, image, datetime.now(UTC))
    return {"ticket_id": ticket.id}


@router.get("/live")
def live_page(
    request: Request, session: SessionDep, user: PageUser, scope: PageScope, site_id: int | None = None
) -> HTMLResponse:
    """Today's rounds, checkpoint by checkpoint grouped by building and floor, refreshed every few seconds."""
    _require(user, Role.ADMIN, Role.ENGINEER)
    site = _site(session, scope, user, site_id)
    return render(request, "patrol_live.html", user, site=site, buildings=_buildings(session, site))


@router.get("/sheet")
def sheet_page(
    request: Request, session: SessionDep, user: PageUser, scope: PageScope,
    site_id: Annotated[int | None, Query()] = None,
) -> HTMLResponse:  # fmt: skip
    """Every checkpoint's QR code with its place in words, to print and post."""
    _require(user, Role.ADMIN)
    site = _site(session, scope, user, site_id)
    checkpoints = list(
        session.scalars(select(Checkpoint).where(Checkpoint.site_id == site.id).order_by(Checkpoint.code))
    )
    return render(request, "patrol_sheet.html", user, site=site, entries=sheet_entries(session, site, checkpoints))
