"""Console pages: sign-in, site overview, meter and equipment pages, and the JSON their charts poll.

Every page works from the signed-in user's scope (``cloud.api.scope``), exactly as the API does, so a
page can show nothing the API would refuse.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import SessionDep, SettingsDep, clear_session_cookie, current_user_from_cookie, set_session_cookie
from cloud.api.scope import Scope
from cloud.auth.models import User
from cloud.auth.security import create_token
from cloud.auth.services import authenticate
from cloud.console.i18n import LANGS, Lang, pick_lang, translate
from cloud.ingest.models import EdgeStateRow, EventRow
from cloud.registry.models import Building, Device, Edge, Equipment, Meter, Site, Unit
from cloud.registry.services import MAIN_QUANTITY, MappedSeries, mapped_series
from cloud.timeseries import query
from cloud.timeseries.query import DEFAULT_TZ, BucketSize
from protocols.quantities import PointKind

HERE = Path(__file__).parent
LANG_COOKIE = "eh_lang"
USAGE_SPAN_MS: dict[str, int] = {"hour": 48 * 3_600_000, "day": 31 * 86_400_000, "month": 366 * 86_400_000}
TELEMETRY_SPAN_MS = 24 * 3_600_000
ALARM_TYPES = ("alarm_raised", "alarm_cleared", "device_offline", "device_online")

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)


class SignInRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the sign-in page."""


def lang_of(request: Request) -> Lang:
    return pick_lang(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))


def page_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    try:
        return current_user_from_cookie(request, session, settings)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            raise SignInRequired from None
        raise


PageUser = Annotated[User, Depends(page_user)]


def page_scope(session: SessionDep, user: PageUser) -> Scope:
    return Scope.of(session, user)


PageScope = Annotated[Scope, Depends(page_scope)]


def render(request: Request, name: str, user: User | None, **context: Any) -> HTMLResponse:
    lang = lang_of(request)
    response = templates.TemplateResponse(
        request, name, {"t": lambda key: translate(key, lang), "lang": lang, "user": user, "langs": LANGS, **context}
    )
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


def local_time(ts_ms: int | None, tz: str = DEFAULT_TZ) -> str:
    if ts_ms is None:
        return "-"
    return datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", None, failed=False)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    user = authenticate(session, username, password)
    if user is None:
        response = render(request, "login.html", None, failed=True)
        response.status_code = status.HTTP_401_UNAUTHORIZED
        return response
    redirect = RedirectResponse("/console/", status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookie(redirect, create_token(settings, user.id, user.password_changed_at), settings)
    return redirect


@router.get("/logout")
def logout() -> Response:
    redirect = RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)
    clear_session_cookie(redirect)
    return redirect


@router.get("/")
def overview(request: Request, session: SessionDep, user: PageUser, scope: PageScope) -> HTMLResponse:
    sites = session.scalars(select(Site).where(scope.where(Site)).order_by(Site.code)).all()
    edges = session.execute(
        select(Edge, Site.code).join(Site, Edge.site_id == Site.id).where(scope.where(Edge)).order_by(Edge.code)
    ).all()
    states = {(s.site, s.edge): s for s in session.scalars(select(EdgeStateRow).where(scope.where(EdgeStateRow)))}
    buildings = session.scalars(select(Building).where(scope.where(Building)).order_by(Building.code)).all()
    meters = session.scalars(select(Meter).where(scope.where(Meter)).order_by(Meter.code)).all()
    equipment = session.scalars(select(Equipment).where(scope.where(Equipment)).order_by(Equipment.code)).all()
    units = {u.id: u for u in session.scalars(select(Unit).where(scope.where(Unit)))}
    edge_rows = [_edge_row(edge, states.get((site_code, edge.code))) for edge, site_code in edges]
    return render(
        request, "overview.html", user, sites=sites, edges=edge_rows, buildings=buildings, meters=meters,
        units=units, equipment=equipment,
    )  # fmt: skip


def _edge_row(edge: Edge, state: EdgeStateRow | None) -> dict[str, Any]:
    status_ = (state.last_status or {}) if state else {}
    return {
        "code": edge.code,
        "online": None if state is None else state.online,
        "last_seen": state.last_seen.astimezone(ZoneInfo(DEFAULT_TZ)).strftime("%Y-%m-%d %H:%M:%S")
        if state and state.last_seen
        else "-",
        "backlog": status_.get("backlog", "-"),
        "acked_through": state.acked_through if state else "-",
        "gaps": state.gaps() if state else [],
    }


def _main_series(session: Session, meter: Meter) -> MappedSeries | None:
    wanted = MAIN_QUANTITY[meter.kind.value]
    return next((s for s in mapped_series(session, meter_ids=[meter.id]) if s.quantity == wanted), None)


@router.get("/meters/{meter_id}")
def meter_page(request: Request, meter_id: int, session: SessionDep, user: PageUser, scope: PageScope) -> HTMLResponse:
    meter = scope.get(session, Meter, meter_id)
    unit = session.get(Unit, meter.unit_id) if meter.unit_id else None
    return render(request, "meter.html", user, meter=meter, unit=unit)


@router.get("/meters/{meter_id}/usage.json")
def meter_usage(
    meter_id: int,
    session: SessionDep,
    scope: PageScope,
    bucket: Annotated[BucketSize, Query()] = "day",
) -> dict[str, Any]:
    """Latest reading and consumption per bucket of the meter's main counter (kWh or m3)."""
    meter = scope.get(session, Meter, meter_id)
    series = _main_series(session, meter)
    if bucket == "15min" or bucket not in USAGE_SPAN_MS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "bucket must be hour, day or month")
    if series is None or series.series_id is None:
        return {"unit": "", "latest": None, "buckets": []}
    now = int(time.time() * 1000)
    conn = session.connection()
    rows = query.buckets(conn, series.series_id, PointKind.COUNTER, now - USAGE_SPAN_MS[bucket], now, bucket)
    last = query.latest(conn, [series.series_id]).get(series.series_id)
    return {
        "unit": "kWh" if meter.kind.value == "electricity" else "m³",
        "latest": None if last is None else {"ts": local_time(last.ts), "value": last.value},
        "buckets": [[b.start_ms / 1000, b.consumption] for b in rows],
    }


@router.get("/equipment/{equipment_id}")
def equipment_page(
    request: Request, equipment_id: int, session: SessionDep, user: PageUser, scope: PageScope
) -> HTMLResponse:
    item = scope.get(session, Equipment, equipment_id)
    site = session.get(Site, item.site_id)
    devices = session.scalars(select(Device.name).where(Device.equipment_id == item.id)).all()
    events = session.scalars(
        select(EventRow)
        .where(
            EventRow.site == (site.code if site else ""), EventRow.device.in_(devices), EventRow.type.in_(ALARM_TYPES)
        )
        .order_by(EventRow.ts.desc())
        .limit(50)
    ).all()
    alarms = [{"time": local_time(e.ts), "type": e.type, "device": e.device, "message": e.message} for e in events]
    return render(request, "equipment.html", user, item=item, alarms=alarms)


@router.get("/equipment/{equipment_id}/telemetry.json")
def equipment_telemetry(equipment_id: int, session: SessionDep, scope: PageScope) -> dict[str, Any]:
    """The last 24 hours of every gauge of the equipment, as 15-minute min/avg/max, plus live values."""
    item = scope.get(session, Equipment, equipment_id)
    now = int(time.time() * 1000)
    conn = session.connection()
    mapped = [s for s in mapped_series(session, equipment_id=item.id) if s.series_id is not None]
    live = query.latest(conn, [s.series_id for s in mapped if s.series_id is not None])
    charts = []
    for s in mapped:
        assert s.series_id is not None
        rows = query.buckets(conn, s.series_id, s.kind, now - TELEMETRY_SPAN_MS, now, "15min")
        last = live.get(s.series_id)
        charts.append({
            "point": s.key[3],
            "quantity": s.quantity,
            "latest": None if last is None else {"ts": local_time(last.ts), "value": last.value},
            "series": [[b.start_ms / 1000 for b in rows], [b.min for b in rows], [b.avg for b in rows],
                       [b.max for b in rows]],
        })  # fmt: skip
    return {"charts": charts}


def mount_console(app: FastAPI) -> None:
    """Add the console pages, their static files and the sign-in redirect to an app."""
    from cloud.billing.pages import router as finance_router  # domain pages build on this module: import late
    from cloud.maintenance.pages import router as maintenance_router
    from cloud.patrol.pages import router as patrol_router
    from cloud.portal.pages import router as portal_router
    from cloud.tickets.pages import router as ticket_pages_router

    app.include_router(router)
    app.include_router(portal_router)
    app.include_router(finance_router)
    app.include_router(ticket_pages_router)
    app.include_router(maintenance_router)
    app.include_router(patrol_router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        return RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)

    @app.get("/", include_in_schema=False)
    def _root() -> Response:
        return RedirectResponse("/console/", status_code=status.HTTP_303_SEE_OTHER)
