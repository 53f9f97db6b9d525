"""Registry schemas, apart from the tables.

Rows (``*Row``) are what an import file holds and what the API's create calls take: references are by
code within the site, as people write them. ``*Update`` carries the fields a PATCH may change, ``*Public``
what the API returns (ids and codes).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints

from cloud.registry.models import MeterKind, MeterRole
from protocols.quantities import Quantity

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def _code(value: str) -> str:
    if not _CODE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a usable code: 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return value


def normalize_phone(value: str) -> str:
    """Mainland mobile numbers as 11 digits: spaces, dashes and a +86 / 86 prefix are dropped."""
    digits = re.sub(r"[\s-]", "", value)
    digits = digits.removeprefix("+86") if digits.startswith("+86") else digits
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if not _MOBILE.fullmatch(digits):
        raise ValueError(f"{value!r} is not a mainland mobile number (11 digits starting with 1)")
    return digits


def _area(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError(f"floor area must be positive, got {value}")
    if value >= Decimal("100000000"):
        raise ValueError(f"floor area {value} m2 is too large")
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


Code = Annotated[str, AfterValidator(_code)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, AfterValidator(normalize_phone)]
AreaM2 = Annotated[Decimal, AfterValidator(_area)]
DeviceName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
PointName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[a-z][a-z0-9_]*$")]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _origin: str = PrivateAttr(default="")
    """Where the row came from ("sites[0].units[3]", "line 5"), for error messages."""


class SiteRow(_Row):
    code: Code
    name: Name


class BuildingRow(_Row):
    code: Code
    name: Name


class UnitRow(_Row):
    code: Code
    building: Code
    floor: Annotated[int, Field(ge=-10, le=200)]
    floor_area_m2: AreaM2
    owner_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    owner_phone: Phone | None = None
    household_size: Annotated[int, Field(ge=0, le=50)] | None = None


class MeterRow(_Row):
    code: Code
    kind: MeterKind
    role: MeterRole
    parent: Code | None = None
    """A master meter of the same kind."""
    unit: Code | None = None
    """Sub meters only: the unit the meter belongs to."""
    serves: list[Code] = Field(default_factory=list)
    """Common meters only: units its consumption is shared over."""


class EquipmentRow(_Row):
    code: Code
    name: Name
    type: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class PointRow(_Row):
    point: PointName
    meter: Code | None = None
    equipment: Code | None = None
    quantity: Quantity | None = None
    """Defaults to the quantity the device profile gives the point."""


class DeviceRow(_Row):
    name: DeviceName
    profile: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    unit: Code | None = None
    """Defaults to the unit of the device's meter."""
    meter: Code | None = None
    equipment: Code | None = None
    points: list[PointRow] | None = None
    """Which points feed what; by default every point of the profile feeds the device's meter or equipment."""


class EdgeRow(_Row):
    code: Code
    devices: list[DeviceRow] = Field(default_factory=list)


class SiteDoc(SiteRow):
    buildings: list[BuildingRow] = Field(default_factory=list)
    units: list[UnitRow] = Field(default_factory=list)
    meters: list[MeterRow] = Field(default_factory=list)
    equipment: list[EquipmentRow] = Field(default_factory=list)
    edges: list[EdgeRow] = Field(default_factory=list)


class RegistryDoc(_Row):
    """A registry file: the rows it holds are the truth for those rows; anything it omits is left alone."""

    sites: Annotated[list[SiteDoc], Field(min_length=1)]


# API: updates (PATCH: only the fields sent change) and public views.


class _Update(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class SiteUpdate(_Update):
    name: Name | None = None


class BuildingUpdate(_Update):
    name: Name | None = None


class UnitUpdate(_Update):
    building: Code | None = None
    floor: Annotated[int, Field(ge=-10, le=200)] | None = None
    floor_area_m2: AreaM2 | None = None
    owner_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    owner_phone: Phone | None = None
    household_size: Annotated[int, Field(ge=0, le=50)] | None = None


class MeterUpdate(_Update):
    role: MeterRole | None = None
    parent: Code | None = None
    unit: Code | None = None
    serves: list[Code] | None = None


class EquipmentUpdate(_Update):
    name: Name | None = None
    type: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] | None = None


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SitePublic(_Public):
    id: int
    code: str
    name: str


class BuildingPublic(_Public):
    id: int
    site_id: int
    code: str
    name: str


class UnitPublic(_Public):
    id: int
    site_id: int
    building_id: int
    code: str
    floor: int
    floor_area_m2: Decimal
    owner_name: str | None
    owner_phone: str | None
    household_size: int | None


class MeterPublic(_Public):
    id: int
    site_id: int
    code: str
    kind: MeterKind
    role: MeterRole
    parent_id: int | None
    unit_id: int | None
    serves: list[int]
    """Unit ids (common meters)."""


class EquipmentPublic(_Public):
    id: int
    site_id: int
    code: str
    name: str
    type: str


class EdgePublic(_Public):
    id: int
    site_id: int
    code: str


class PointMappingPublic(_Public):
    point: str
    quantity: str
    meter_id: int | None
    equipment_id: int | None


class DevicePublic(_Public):
    id: int
    edge_id: int
    name: str
    profile: str
    unit_id: int | None
    equipment_id: int | None
    points: list[PointMappingPublic]


class ImportCounts(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class ImportReport(BaseModel):
    """Per entity kind: rows created, updated, unchanged."""

    counts: dict[str, ImportCounts]
    audit_entries: int
    dry_run: bool = False

    def summary(self) -> str:
        parts = [
            f"{kind}: {c.created} new, {c.updated} updated, {c.unchanged} unchanged"
            for kind, c in self.counts.items()
            if c.created or c.updated or c.unchanged
        ]
        return "; ".join(parts) or "nothing to import"
