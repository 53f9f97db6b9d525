"""What the owner portal and the finance pages share: quantities and times as people read them, and role checks
for cookie-signed-in pages (``cloud.api.deps.require_roles`` is for bearer tokens)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse

from cloud.auth.models import Role, User
from cloud.billing.money import yuan
from cloud.console.pages import PageUser, render
from cloud.timeseries.query import DEFAULT_TZ

FINANCE = (Role.ADMIN, Role.FINANCE)
"""Who sees tariffs, bill runs, approvals and collection reports."""


def money(fen: int) -> str:
    """Fen as the owner reads it: ``¥1,234.56``, a credit as ``-¥5.00``."""
    return f"{'-' if fen < 0 else ''}¥{yuan(abs(fen))}"


def number(value: Decimal | float | int | str | None) -> str:
    """A quantity or unit price as stated, without trailing zeros (``12.5``, not ``12.5000``)."""
    if value is None:
        return "-"
    text = format(Decimal(str(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def local(moment: datetime | str | None) -> str:
    """A moment in Asia/Shanghai, to the minute (ISO strings from JSON details too)."""
    if moment is None or moment == "":
        return "-"
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when.astimezone(ZoneInfo(DEFAULT_TZ)).strftime("%Y-%m-%d %H:%M")


def page_roles(*roles: Role) -> Callable[[User], User]:
    """A page dependency: 403 unless the signed-in user has one of ``roles`` (signed-out users are sent to the
    sign-in page by ``PageUser``)."""
    allowed = frozenset(roles)

    def check(user: PageUser) -> User:
        if user.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this page needs one of the roles: {names}")
        return user

    return check


def render_money(request: Request, name: str, user: User, **context: Any) -> HTMLResponse:
    """``cloud.console.pages.render`` with the formatters billing templates use: ``money``, ``yuan`` (no sign),
    ``number`` and ``local``."""
    return render(request, name, user, money=money, yuan=yuan, number=number, local=local, **context)
