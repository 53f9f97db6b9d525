"""Registry tables.

``site_id`` is repeated on buildings, units, meters, edges, devices and equipment so that scoping a query
to a user's sites is one ``WHERE site_id IN (...)``; the services keep it equal to the parent's site.
Codes are unique per site and are what import files and edge topics use; ids are what the API uses.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloud.db import Base, string_enum


class MeterKind(StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"


class MeterRole(StrEnum):
    MASTER = "master"
    """Measures a whole building or feeder; its children's sum should not exceed it."""
    SUB = "sub"
    """Belongs to one unit (a household meter)."""
    COMMON = "common"
    """Shared load (lifts, corridor lights), apportioned over the units it serves."""


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Building(Base):
    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))


class Unit(Base):
    """A flat or shop. Its code is unique in the site ("1-0101": building 1, floor 01, door 01)."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    floor: Mapped[int] = mapped_column(Integer)
    floor_area_m2: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    owner_name: Mapped[str | None] = mapped_column(String(100))
    owner_phone: Mapped[str | None] = mapped_column(String(20), index=True)
    """The number the property registered; owners bind to the unit by proving they hold it."""
    household_size: Mapped[int | None] = mapped_column(Integer)


meter_serves = Table(
    "meter_serves",
    Base.metadata,
    Column("meter_id", ForeignKey("meters.id", ondelete="CASCADE"), primary_key=True),
    Column("unit_id", ForeignKey("units.id", ondelete="CASCADE"), primary_key=True, index=True),
)
"""Units a common meter's consumption is shared over."""


class Meter(Base):
    __tablename__ = "meters"
    __table_args__ = (
        UniqueConstraint("site_id", "code"),
        CheckConstraint("role != 'sub' OR unit_id IS NOT NULL", name="sub_has_unit"),
        CheckConstraint("role = 'sub' OR unit_id IS NULL", name="only_sub_has_unit"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[MeterKind] = mapped_column(string_enum(MeterKind, "meter_kind"))
    role: Mapped[MeterRole] = mapped_column(string_enum(MeterRole, "meter_role"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)

    serves: Mapped[list[Unit]] = relationship(secondary=meter_serves, order_by=Unit.code)


class Equipment(Base):
    __tablename__ = "equipment"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    """pump, tank, switchroom, lift, ... (free text: sites keep adding kinds)."""


class Edge(Base):
    __tablename__ = "edges"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    """As in the edge's MQTT topics (eh/v1/<site>/<edge>/...)."""


class Device(Base):
    """A Modbus device behind an edge, named as in the edge config and in every reading it sends."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("edge_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    edge_id: Mapped[int] = mapped_column(ForeignKey("edges.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    profile: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    equipment_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"), index=True)


class PointMapping(Base):
    """(site, edge, device, point) -> the meter or equipment the series belongs to."""

    __tablename__ = "point_mappings"
    __table_args__ = (
        UniqueConstraint("device_id", "point"),
        CheckConstraint("(meter_id IS NULL) != (equipment_id IS NULL)", name="one_target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    point: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[str] = mapped_column(String(64))
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), index=True)
    equipment_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"), index=True)
