"""Password hashing (argon2 via pwdlib) and signed, expiring access tokens (JWT, HS256)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from pwdlib import PasswordHash

from cloud.settings import HubSettings

ALGORITHM = "HS256"
_hasher = PasswordHash.recommended()
_DUMMY_HASH = _hasher.hash("a password nobody has")


class InvalidToken(Exception):
    """Expired, tampered with, or not one of ours; the message says which for the logs."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant work whether or not the user exists (no user: checked against a dummy hash)."""
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)


def password_version(changed_at: datetime) -> int:
    """Milliseconds, so a change right after sign-in still outdates the token."""
    return int(changed_at.timestamp() * 1000)


def create_token(
    settings: HubSettings, user_id: int, password_changed_at: datetime, now: datetime | None = None
) -> str:
    now = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.token_ttl_s)).timestamp()),
        "pwd": password_version(password_changed_at),
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)


def decode_token(settings: HubSettings, token: str) -> tuple[int, int]:
    """(user id, password version) from a valid token."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat", "pwd"]},
        )
        return int(claims["sub"]), int(claims["pwd"])
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token expired") from None
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise InvalidToken(f"invalid token: {exc}") from None
