"""Users, what they may see (sites for staff, units for owners), and owner-binding codes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloud.db import Base, UtcDateTime, string_enum
from cloud.registry.models import Site, Unit


class Role(StrEnum):
    ADMIN = "admin"
    FINANCE = "finance"
    ENGINEER = "engineer"
    TECHNICIAN = "technician"
    GUARD = "guard"
    OWNER = "owner"


user_sites = Table(
    "user_sites",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)

owner_units = Table(
    "owner_units",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("unit_id", ForeignKey("units.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role = 'admin' OR NOT all_sites", name="all_sites_admin_only"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    """Staff pick one; an owner's is the phone number they bound with."""
    full_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    role: Mapped[Role] = mapped_column(string_enum(Role, "role"))
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """Tokens issued before this are refused, so a password change signs out every session."""
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    all_sites: Mapped[bool] = mapped_column(Boolean, default=False)
    """Admins only: every site, present and future."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    sites: Mapped[list[Site]] = relationship(secondary=user_sites, order_by=Site.code)
    units: Mapped[list[Unit]] = relationship(secondary=owner_units, order_by=Unit.code)


class VerificationCode(Base):
    """An SMS code for owner binding: stored hashed, expires, single use, a few attempts only."""

    __tablename__ = "verification_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
