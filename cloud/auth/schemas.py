"""User and sign-in schemas, apart from the tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from cloud.auth.models import Role
from cloud.registry.schemas import Code, Phone

Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{3,64}$")]
StaffRole = Literal["admin", "finance", "engineer", "technician", "guard"]
"""Owners are not created by staff: they bind themselves to their units (see cloud.auth.binding)."""


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    full_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    phone: Phone | None = None
    role: StaffRole
    password: Password
    all_sites: bool = False
    sites: list[Code] = Field(default_factory=list)
    """Site codes the user works at."""

    @model_validator(mode="after")
    def _scoped(self) -> UserCreate:
        check_scope(self.role, self.all_sites, self.sites)
        return self


class UserUpdate(BaseModel):
    """Only the fields sent change; a new password signs the user out everywhere."""

    model_config = ConfigDict(extra="forbid")

    full_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    phone: Phone | None = None
    role: StaffRole | None = None
    password: Password | None = None
    is_active: bool | None = None
    all_sites: bool | None = None
    sites: list[Code] | None = None


def check_scope(role: str, all_sites: bool, sites: list[str]) -> None:
    if all_sites and role != Role.ADMIN:
        raise ValueError("only admins may have all sites")
    if role != Role.OWNER and not all_sites and not sites:
        raise ValueError(f"a {role} needs at least one site (or, for an admin, all_sites)")


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    phone: str | None
    role: Role
    is_active: bool
    all_sites: bool
    sites: list[str]
    """Site codes (staff)."""
    unit_ids: list[int]
    """Units the owner has bound (owners)."""
    created_at: datetime


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    """Seconds."""


class BindingStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone


class BindingVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
    password: Password
    """Sets the owner's password (a new one if the owner has an account: SMS proves who they are)."""


class BindingStarted(BaseModel):
    detail: str = "if this number is registered for a unit, a code was sent to it"
    expires_in: int
