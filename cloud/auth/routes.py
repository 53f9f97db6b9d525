"""Sign-in, the user's own account, user administration (admins with every site), and owner binding."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from cloud.api.deps import CurrentUser, SessionDep, SettingsDep, SmsDep, require_roles
from cloud.auth import binding
from cloud.auth.binding import BindingError
from cloud.auth.models import Role, User
from cloud.auth.schemas import BindingStart, BindingStarted, BindingVerify, Token, UserCreate, UserPublic, UserUpdate
from cloud.auth.security import create_token
from cloud.auth.services import actor, authenticate, create_user, public, update_user
from cloud.settings import HubSettings

router = APIRouter()
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Wrong, expired or used code"},
    429: {"description": "Too many codes or attempts"},
}


def issue(settings: HubSettings, user: User) -> Token:
    return Token(
        access_token=create_token(settings, user.id, user.password_changed_at), expires_in=settings.token_ttl_s
    )


@router.post("/auth/login", tags=["auth"])
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, settings: SettingsDep) -> Token:
    """OAuth2 password flow: a bearer token for the API."""
    user = authenticate(session, form.username, form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong username or password", headers={"WWW-Authenticate": "Bearer"}
        )
    return issue(settings, user)


@router.get("/auth/me", tags=["auth"])
def me(user: CurrentUser, session: SessionDep) -> UserPublic:
    return public(session, user)


# Users: admins with every site (a site admin manages the registry of their sites, not accounts).

admins = [Depends(require_roles(Role.ADMIN, all_sites=True))]


@router.get("/users", tags=["users"], dependencies=admins)
def list_users(
    session: SessionDep,
    role: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[UserPublic]:
    stmt = select(User).order_by(User.username).limit(limit).offset(offset)
    if role is not None:
        stmt = stmt.where(User.role == role)
    return [public(session, u) for u in session.scalars(stmt)]


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["users"], dependencies=admins)
def add_user(data: UserCreate, session: SessionDep, user: CurrentUser) -> UserPublic:
    return public(session, create_user(session, actor(user), data))


@router.get("/users/{user_id}", tags=["users"], dependencies=admins)
def get_user(user_id: int, session: SessionDep) -> UserPublic:
    return public(session, _user(session, user_id))


@router.patch("/users/{user_id}", tags=["users"], dependencies=admins)
def change_user(user_id: int, data: UserUpdate, session: SessionDep, user: CurrentUser) -> UserPublic:
    target = _user(session, user_id)
    update_user(session, actor(user), target, data)
    return public(session, target)


def _user(session: SessionDep, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user_id} not found")
    return user


# Owner binding (no sign-in: this is how owners get an account).


@router.post(
    "/owner-binding/start", status_code=status.HTTP_202_ACCEPTED, tags=["owner binding"], responses={429: ERRORS[429]}
)
def binding_start(data: BindingStart, session: SessionDep, settings: SettingsDep, sms: SmsDep) -> BindingStarted:
    """Text a code to the number, if a unit is registered with it (the answer does not say whether)."""
    binding.start(session, settings, sms, data.phone, datetime.now(UTC))
    return BindingStarted(expires_in=int(binding.CODE_TTL.total_seconds()))


@router.post("/owner-binding/verify", tags=["owner binding"], response_model=Token, responses=ERRORS)
def binding_verify(data: BindingVerify, session: SessionDep, settings: SettingsDep) -> Token | JSONResponse:
    """Check the code; the owner's account is created (or its password reset) and bound to their units."""
    try:
        user = binding.verify(session, settings, data.phone, data.code, data.password, datetime.now(UTC))
    except BindingError as exc:
        # answered, not raised: the request's transaction must commit the counted attempt
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)
    return issue(settings, user)
