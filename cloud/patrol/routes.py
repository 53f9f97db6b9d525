"""Patrol API: keys, checkpoints and their codes, routes, plans, rounds, scans, exceptions and stats.

Admins set patrols up; guards scan and report; staff of the site read rounds and stats. Every object in a
path is checked against the caller's scope (404 outside it). Rejected scans answer 4xx with the reason and
store nothing (the request's transaction is rolled back).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, Response, UploadFile, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import STAFF, CurrentUser, ScopeDep, SessionDep, SiteDep, oauth2_scheme, require_roles
from cloud.auth.models import Role, User, user_sites
from cloud.console.i18n import pick_lang
from cloud.patrol import codes
from cloud.patrol.checkpoints import CheckpointError, CheckpointSpec, create_checkpoint
from cloud.patrol.exceptions import report_exception
from cloud.patrol.keys import badge_code, checkpoint_code, revoke_key, rotate_key
from cloud.patrol.models import (
    Checkpoint,
    CheckpointMethod,
    PatrolKey,
    PatrolPlan,
    PatrolRound,
    PatrolRoute,
    PatrolScan,
    Recurrence,
    RoundCheckpoint,
)
from cloud.patrol.plans import HORIZON_DAYS, TZ, PlanError, generate, validate
from cloud.patrol.routes_tour import RouteError, Stop, create_route, suggest
from cloud.patrol.scans import (
    Outcome,
    ScanRejected,
    accept_offline_scan,
    accept_online_scan,
    issue_challenge,
)
from cloud.patrol.stats import monthly_stats, to_csv
from cloud.registry.models import Site
from cloud.tickets.routes import StoreDep

router = APIRouter(prefix="/patrol", tags=["patrol"])
ADMINS = Depends(require_roles(Role.ADMIN))
GUARDS = Depends(require_roles(Role.GUARD))
STAFF_ONLY = Depends(require_roles(*STAFF))


@contextmanager
def user_errors() -> Iterator[None]:
    """Service errors as 4xx answers that say what to fix."""
    try:
        yield
    except ScanRejected as exc:
        raise HTTPException(exc.status, exc.reason) from None
    except (CheckpointError, RouteError, PlanError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


# --- keys and codes ---


class KeyPublic(BaseModel):
    kid: int
    created_at: datetime
    revoked_at: datetime | None


@router.post("/sites/{site_id}/keys", dependencies=[ADMINS], status_code=201)
def rotate(site: SiteDep, session: SessionDep) -> KeyPublic:
    """A new signing key: new codes are signed with it; codes already printed stay valid until revoked."""
    key = rotate_key(session, site.id)
    return KeyPublic(kid=key.kid, created_at=key.created_at, revoked_at=None)


@router.post("/sites/{site_id}/keys/{kid}/revoke", dependencies=[ADMINS])
def revoke(site: SiteDep, kid: int, session: SessionDep) -> KeyPublic:
    """Void every code signed with this key (a sheet was lost or copied): reprint with the current key."""
    key = session.scalars(select(PatrolKey).where(PatrolKey.site_id == site.id, PatrolKey.kid == kid)).first()
    if key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"site {site.code} has no patrol key {kid}")
    revoke_key(session, key)
    return KeyPublic(kid=key.kid, created_at=key.created_at, revoked_at=key.revoked_at)


class CheckpointIn(BaseModel):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=200)
    method: CheckpointMethod
    building_id: int | None = None
    floor: int | None = Field(default=None, ge=-10, le=200)
    location: str = Field(default="", max_length=200)
    x_m: float | None = None
    y_m: float | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    geofence_m: int | None = Field(default=None, ge=5, le=5000)


class CheckpointPublic(CheckpointIn):
    id: int
    site_id: int


def _public(c: Checkpoint) -> CheckpointPublic:
    return CheckpointPublic(
        id=c.id, site_id=c.site_id, code=c.code, name=c.name, method=c.method, building_id=c.building_id,
        floor=c.floor, location=c.location, x_m=c.x_m, y_m=c.y_m, lat=c.lat, lon=c.lon, geofence_m=c.geofence_m,
    )  # fmt: skip


@router.post("/sites/{site_id}/checkpoints", dependencies=[ADMINS], status_code=201)
def add_checkpoint(site: SiteDep, body: CheckpointIn, session: SessionDep) -> CheckpointPublic:
    with user_errors():
        return _public(create_checkpoint(session, site.id, CheckpointSpec(**body.model_dump())))


@router.get("/sites/{site_id}/checkpoints", dependencies=[STAFF_ONLY])
def list_checkpoints(site: SiteDep, session: SessionDep) -> list[CheckpointPublic]:
    rows = session.scalars(select(Checkpoint).where(Checkpoint.site_id == site.id).order_by(Checkpoint.code))
    return [_public(c) for c in rows]


def scoped_checkpoint(checkpoint_id: int, session: SessionDep, scope: ScopeDep) -> Checkpoint:
    return scope.get(session, Checkpoint, checkpoint_id)


CheckpointDep = Annotated[Checkpoint, Depends(scoped_checkpoint)]


@router.get("/checkpoints/{checkpoint_id}/qr.{fmt}", dependencies=[ADMINS])
def checkpoint_qr(checkpoint: CheckpointDep, fmt: Literal["png", "svg"], session: SessionDep) -> Response:
    """The checkpoint's QR code, signed with the site's current key, to print."""
    code = checkpoint_code(session, checkpoint.site_id, checkpoint.id)
    if fmt == "png":
        return Response(codes.png(code), media_type="image/png")
    return Response(codes.svg(code), media_type="image/svg+xml")


@router.get("/sites/{site_id}/badges/{user_id}", dependencies=[ADMINS])
def guard_badge(site: SiteDep, user_id: int, session: SessionDep) -> dict[str, str]:
    """The code to write on a guard's badge (card or printed QR) for the site's fixed scanners."""
    member = session.scalar(
        select(User.id)
        .join(user_sites, user_sites.c.user_id == User.id)
        .where(User.id == user_id, User.role == Role.GUARD, user_sites.c.site_id == site.id)
    )
    if member is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no guard {user_id} at site {site.code}")
    return {"code": badge_code(session, site.id, user_id)}


# --- routes and plans ---


class StopIn(BaseModel):
    checkpoint_id: int
    walk_s: int = Field(ge=0, le=24 * 3600)


class RouteIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    ordered: bool = True
    stops: list[StopIn] = Field(default_factory=list)
    suggest_from: list[int] | None = None
    """Checkpoint ids to order by the shortest walking tour (the first is the start); replaces ``stops``."""


class RoutePublic(BaseModel):
    id: int
    name: str
    ordered: bool
    stops: list[StopIn]


@router.post("/sites/{site_id}/routes", dependencies=[ADMINS], status_code=201)
def add_route(site: SiteDep, body: RouteIn, session: SessionDep) -> RoutePublic:
    if session.scalar(select(PatrolRoute.id).where(PatrolRoute.site_id == site.id, PatrolRoute.name == body.name)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"a route named {body.name!r} exists at this site")
    with user_errors():
        if body.suggest_from is not None:
            chosen = select(Checkpoint).where(Checkpoint.id.in_(body.suggest_from), Checkpoint.site_id == site.id)
            found = {c.id: c for c in session.scalars(chosen)}
            if missing := [i for i in body.suggest_from if i not in found]:
                raise RouteError(f"checkpoints not at this site: {', '.join(map(str, missing))}")
            stops = suggest([found[i] for i in body.suggest_from])
        else:
            stops = [Stop(s.checkpoint_id, s.walk_s) for s in body.stops]
        route = create_route(session, site.id, body.name, body.ordered, stops)
    return RoutePublic(id=route.id, name=route.name, ordered=route.ordered,
                       stops=[StopIn(checkpoint_id=s.checkpoint_id, walk_s=s.walk_s) for s in stops])  # fmt: skip


class PlanIn(BaseModel):
    route_id: int
    name: str = Field(min_length=1, max_length=200)
    recurrence: Recurrence
    every_n_days: int = Field(default=1, ge=1, le=366)
    start_date: date
    end_date: date | None = None
    shift_start: time
    shift_end: time
    round_every_min: int = Field(ge=1, le=24 * 60)
    round_minutes: int = Field(ge=1, le=24 * 60)
    tolerance_min: int = Field(default=5, ge=0, le=120)
    grace_min: int = Field(default=10, ge=0, le=240)
    assignees: list[int] = Field(min_length=1)
    ticket_on_miss: bool = False


class PlanPublic(PlanIn):
    id: int
    rounds_generated: int


@router.post("/sites/{site_id}/plans", dependencies=[ADMINS], status_code=201)
def add_plan(site: SiteDep, body: PlanIn, session: SessionDep) -> PlanPublic:
    """A schedule; its rounds for the next days are generated at once (then by the patrol worker)."""
    route = session.get(PatrolRoute, body.route_id)
    if route is None or route.site_id != site.id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"route {body.route_id} is not at this site")
    guards = set(session.scalars(
        select(User.id).join(user_sites, user_sites.c.user_id == User.id)
        .where(User.id.in_(body.assignees), User.role == Role.GUARD, user_sites.c.site_id == site.id)
    ))  # fmt: skip
    if missing := [g for g in body.assignees if g not in guards]:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"assignees must be guards of this site; not: {', '.join(map(str, missing))}")  # fmt: skip
    plan = PatrolPlan(site_id=site.id, active=True, **body.model_dump())
    now = datetime.now(UTC)
    with user_errors():
        validate(plan)
        session.add(plan)
        session.flush()
        today = now.astimezone(TZ).date()
        created = generate(session, plan, today, today + timedelta(days=HORIZON_DAYS), now)
    return PlanPublic(id=plan.id, rounds_generated=created, **body.model_dump())


# --- rounds ---


class SlotPublic(BaseModel):
    checkpoint_id: int
    code: str
    name: str
    building_id: int | None
    floor: int | None
    location: str
    position: int
    due_from: datetime
    due_until: datetime
    closes_at: datetime
    result: str
    scanned_at: datetime | None
    trust: str | None


class RoundPublic(BaseModel):
    id: int
    route: str
    starts_at: datetime
    ends_at: datetime
    guard_id: int | None
    assignees: list[int]
    ordered: bool
    checkpoints: list[SlotPublic]


def round_view(session: Session, round_: PatrolRound) -> RoundPublic:
    """A round as the supervisor's live view and the guard page show it."""
    rows = session.execute(
        select(RoundCheckpoint, Checkpoint, PatrolScan.trust)
        .join(Checkpoint, Checkpoint.id == RoundCheckpoint.checkpoint_id)
        .outerjoin(PatrolScan, PatrolScan.id == RoundCheckpoint.scan_id)
        .where(RoundCheckpoint.round_id == round_.id)
        .order_by(RoundCheckpoint.position)
    ).all()
    route = session.get_one(PatrolRoute, round_.route_id)
    return RoundPublic(
        id=round_.id, route=route.name, starts_at=round_.starts_at, ends_at=round_.ends_at, guard_id=round_.guard_id,
        assignees=round_.assignees, ordered=round_.ordered,
        checkpoints=[
            SlotPublic(checkpoint_id=c.id, code=c.code, name=c.name, building_id=c.building_id, floor=c.floor,
                       location=c.location, position=s.position, due_from=s.due_from, due_until=s.due_until,
                       closes_at=s.closes_at, result=s.result.value, scanned_at=s.scanned_at,
                       trust=trust.value if trust is not None else None)
            for s, c, trust in rows
        ],
    )  # fmt: skip


@router.get("/sites/{site_id}/rounds", dependencies=[STAFF_ONLY])
def list_rounds(
    site: SiteDep, session: SessionDep, user: CurrentUser, day: Annotated[date | None, Query()] = None
) -> list[RoundPublic]:
    """Rounds starting on a local day (today by default); a guard sees the rounds assigned to them."""
    day = day or datetime.now(TZ).date()
    start = datetime.combine(day, time(0), TZ)
    end = start + timedelta(days=1)
    rounds = session.scalars(
        select(PatrolRound)
        .where(PatrolRound.site_id == site.id, PatrolRound.starts_at >= start, PatrolRound.starts_at < end)
        .order_by(PatrolRound.starts_at, PatrolRound.id)
    ).all()
    if user.role is Role.GUARD:
        rounds = [r for r in rounds if user.id in r.assignees]
    return [round_view(session, r) for r in rounds]


def scoped_round(round_id: int, session: SessionDep, scope: ScopeDep) -> PatrolRound:
    return scope.get(session, PatrolRound, round_id)


@router.get("/rounds/{round_id}", dependencies=[STAFF_ONLY])
def get_round(round_: Annotated[PatrolRound, Depends(scoped_round)], session: SessionDep) -> RoundPublic:
    return round_view(session, round_)


# --- scanning ---


class ChallengeIn(BaseModel):
    site_id: int


class ChallengePublic(BaseModel):
    nonce: str
    expires_at: datetime


@router.post("/challenges", dependencies=[GUARDS], status_code=201)
def challenge(
    body: ChallengeIn,
    session: SessionDep,
    user: CurrentUser,
    scope: ScopeDep,
    token: Annotated[str, Depends(oauth2_scheme)],
) -> ChallengePublic:
    """A nonce for the next online scan, bound to this guard and this session (valid 90 s, once)."""
    site = scope.get(session, Site, body.site_id)
    issued = issue_challenge(session, user, site.id, token)
    return ChallengePublic(nonce=issued.nonce, expires_at=issued.expires_at)


class ScanIn(BaseModel):
    code: str = Field(min_length=1, max_length=200)
    nonce: str = Field(min_length=1, max_length=64)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class ScanPublic(BaseModel):
    id: int
    checkpoint_id: int
    scanned_at: datetime
    trust: str
    source: str
    counted: bool
    flag: str | None
    round_id: int | None
    result: str | None
    """The checkpoint's result in the round when the scan counted."""


def scan_public(outcome: Outcome) -> ScanPublic:
    s = outcome.scan
    return ScanPublic(
        id=s.id, checkpoint_id=s.checkpoint_id, scanned_at=s.scanned_at, trust=s.trust.value, source=s.source.value,
        counted=s.counted, flag=s.flag.value if s.flag else None, round_id=s.round_id,
        result=outcome.slot.result.value if outcome.slot is not None else None,
    )  # fmt: skip


@router.post("/scans", dependencies=[GUARDS], status_code=201)
def scan_online(
    body: ScanIn, session: SessionDep, user: CurrentUser, token: Annotated[str, Depends(oauth2_scheme)]
) -> ScanPublic:
    """An online phone scan with the challenge fetched just before."""
    position = (body.lat, body.lon) if body.lat is not None and body.lon is not None else None
    with user_errors():
        return scan_public(accept_online_scan(session, user=user, token=token, code=body.code, nonce=body.nonce,
                                              position=position))  # fmt: skip


class OfflineScanIn(BaseModel):
    code: str = Field(min_length=1, max_length=200)
    scanned_at: datetime
    client_ref: str = Field(min_length=8, max_length=64)


class SyncIn(BaseModel):
    site_id: int
    scans: list[OfflineScanIn] = Field(min_length=1, max_length=500)


class SyncResult(BaseModel):
    client_ref: str
    scan: ScanPublic | None
    rejected: str | None


def sync_scans(session: Session, user: User, site_id: int, scans: list[OfflineScanIn]) -> list[SyncResult]:
    """Each queued scan on its own (a savepoint each): one rejected scan does not lose the others."""
    results = []
    for item in scans:
        if item.scanned_at.tzinfo is None:
            reason = "scanned_at needs a time zone (send ISO 8601 with Z or +08:00)"
            results.append(SyncResult(client_ref=item.client_ref, scan=None, rejected=reason))
            continue
        try:
            with session.begin_nested():
                outcome = accept_offline_scan(session, user=user, site_id=site_id, code=item.code,
                                              scanned_at=item.scanned_at, client_ref=item.client_ref)  # fmt: skip
            results.append(SyncResult(client_ref=item.client_ref, scan=scan_public(outcome), rejected=None))
        except ScanRejected as exc:
            results.append(SyncResult(client_ref=item.client_ref, scan=None, rejected=exc.reason))
    return results


@router.post("/scans/offline", dependencies=[GUARDS])
def scan_offline(body: SyncIn, session: SessionDep, user: CurrentUser, scope: ScopeDep) -> list[SyncResult]:
    """Scans the guard page queued without signal, with the phone's times; syncing again is harmless."""
    site = scope.get(session, Site, body.site_id)
    return sync_scans(session, user, site.id, body.scans)


@router.post("/exceptions", dependencies=[GUARDS], status_code=201)
def add_exception(
    checkpoint_id: Annotated[int, Form()], note: Annotated[str, Form(min_length=2, max_length=2000)],
    client_ref: Annotated[str, Form(min_length=8, max_length=64)], session: SessionDep, user: CurrentUser,
    scope: ScopeDep, store: StoreDep, photo: Annotated[UploadFile | None, File()] = None,
) -> dict[str, int]:  # fmt: skip
    """Something wrong at a checkpoint (note, optional photo): opens a ticket, once per ``client_ref``."""
    checkpoint = scope.get(session, Checkpoint, checkpoint_id)
    image = (photo.filename or "photo", photo.file.read(store.max_bytes + 1)) if photo is not None else None
    ticket = report_exception(session, store, user, checkpoint, note, client_ref, image, datetime.now(UTC))
    return {"ticket_id": ticket.id}


# --- stats ---


def _month(month: str) -> date:
    try:
        return datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "month must look like 2026-03") from None


@router.get("/sites/{site_id}/stats", dependencies=[ADMINS])
def stats(site: SiteDep, session: SessionDep, month: str) -> list[dict[str, Any]]:
    """Per guard and route: 完成率 (completion rate), 漏巡率 (miss rate), lateness; percentages."""
    return [
        {
            "guard_id": r.guard_id,
            "guard": r.guard,
            "route_id": r.route_id,
            "route": r.route,
            "rounds": r.rounds,
            "complete_rounds": r.complete_rounds,
            "due": r.due,
            "visited": r.visited,
            "missed": r.missed,
            "on_time": r.on_time,
            "early": r.early,
            "late": r.late,
            "out_of_order": r.out_of_order,
            "completion_rate": str(r.completion_rate),
            "miss_rate": str(r.miss_rate),
            "avg_late_min": str(r.avg_late_min),
        }  # fmt: skip
        for r in monthly_stats(session, site.id, _month(month))
    ]


@router.get("/sites/{site_id}/stats.csv", dependencies=[ADMINS])
def stats_csv(site: SiteDep, session: SessionDep, request: Request, month: str) -> Response:
    lang = pick_lang(request.query_params.get("lang"))
    body = to_csv(monthly_stats(session, site.id, _month(month)), lang)
    filename = f"patrol-{site.code}-{month}.csv"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip
