"""Dependencies the routes declare: the database session, the signed-in user and their scope, role checks,
and the objects named in a path, already checked against the user's scope.

The console (server-rendered pages) signs users in with the same tokens, carried in a cookie: see
``current_user_from_cookie`` and ``set_session_cookie``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from cloud.api.scope import Scope
from cloud.auth.models import Role, User
from cloud.auth.security import InvalidToken, decode_token, password_version
from cloud.auth.sms import SmsSender
from cloud.registry.models import Building, Edge, Equipment, Meter, Site, Unit
from cloud.settings import HubSettings
from cloud.timeseries.models import Series

API_PREFIX = "/api/v1"
SESSION_COOKIE = "eh_session"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/login")


def get_settings(request: Request) -> HubSettings:
    settings: HubSettings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent (rolled back on any error)."""
    with request.app.state.sessions.begin() as session:
        yield session


def get_sms_sender(request: Request) -> SmsSender:
    sender: SmsSender = request.app.state.sms_sender
    return sender


SettingsDep = Annotated[HubSettings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SmsDep = Annotated[SmsSender, Depends(get_sms_sender)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def user_from_token(session: Session, settings: HubSettings, token: str) -> User:
    """The active user a token names; 401 if it is expired, tampered with, or outdated by a password change."""
    try:
        user_id, version = decode_token(settings, token)
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None
    user = session.get(User, user_id)
    if user is None or not user.is_active or password_version(user.password_changed_at) != version:
        raise _unauthorized("invalid token: the account is disabled or its password changed")
    return user


def get_current_user(session: SessionDep, settings: SettingsDep, token: Annotated[str, Depends(oauth2_scheme)]) -> User:
    return user_from_token(session, settings, token)


CurrentUser = Annotated[User, Depends(get_current_user)]


def current_user_from_cookie(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    """For server-rendered pages: the user of the session cookie, or 401 (the console turns it into a redirect
    to its sign-in page)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _unauthorized("not signed in")
    return user_from_token(session, settings, token)


CookieUser = Annotated[User, Depends(current_user_from_cookie)]


def set_session_cookie(response: Response, token: str, settings: HubSettings) -> None:
    """HttpOnly and SameSite=Lax (so other sites cannot post forms with it); Secure outside development."""
    response.set_cookie(
        SESSION_COOKIE, token, max_age=settings.token_ttl_s, httponly=True, samesite="lax",
        secure=settings.environment != "development", path="/",
    )  # fmt: skip


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def get_scope(session: SessionDep, user: CurrentUser) -> Scope:
    return Scope.of(session, user)


ScopeDep = Annotated[Scope, Depends(get_scope)]


def require_roles(*roles: Role, all_sites: bool = False) -> Callable[[User], None]:
    """A route dependency: 403 unless the user has one of ``roles`` (and, if asked, every site)."""
    allowed = frozenset(roles)

    def check(user: CurrentUser) -> None:
        if user.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs one of the roles: {names}")
        if all_sites and not user.all_sites:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs an admin with every site")

    return check


STAFF = (Role.ADMIN, Role.FINANCE, Role.ENGINEER, Role.TECHNICIAN, Role.GUARD)
OPERATIONS = (Role.ADMIN, Role.ENGINEER, Role.TECHNICIAN)
"""Who looks after edges and devices."""
ASSET_EDITORS = (Role.ADMIN, Role.ENGINEER)
"""Who registers meters, equipment and edges."""


# Path objects, already checked against the user's scope (404 if out of scope).


def scoped_site(site_id: int, session: SessionDep, scope: ScopeDep) -> Site:
    return scope.get(session, Site, site_id)


def scoped_building(building_id: int, session: SessionDep, scope: ScopeDep) -> Building:
    return scope.get(session, Building, building_id)


def scoped_unit(unit_id: int, session: SessionDep, scope: ScopeDep) -> Unit:
    return scope.get(session, Unit, unit_id)


def scoped_meter(meter_id: int, session: SessionDep, scope: ScopeDep) -> Meter:
    return scope.get(session, Meter, meter_id)


def scoped_equipment(equipment_id: int, session: SessionDep, scope: ScopeDep) -> Equipment:
    return scope.get(session, Equipment, equipment_id)


def scoped_edge(edge_id: int, session: SessionDep, scope: ScopeDep) -> Edge:
    return scope.get(session, Edge, edge_id)


def scoped_series(series_id: int, session: SessionDep, scope: ScopeDep) -> Series:
    return scope.get(session, Series, series_id)


SiteDep = Annotated[Site, Depends(scoped_site)]
BuildingDep = Annotated[Building, Depends(scoped_building)]
UnitDep = Annotated[Unit, Depends(scoped_unit)]
MeterDep = Annotated[Meter, Depends(scoped_meter)]
EquipmentDep = Annotated[Equipment, Depends(scoped_equipment)]
EdgeDep = Annotated[Edge, Depends(scoped_edge)]
SeriesDep = Annotated[Series, Depends(scoped_series)]
