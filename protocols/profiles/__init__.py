"""Device profiles: what a meter or sensor holds in its registers, as data files.

Each profile lives in its own folder beside its test vectors (``<id>/profile.yaml``, ``<id>/vectors.yaml``).
A profile may declare named ``variants`` for devices whose register maps disagree between sources
(address, function code or word order), so an installer picks one in config instead of editing code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocols.modbus.datatypes import REGISTER_COUNT, DataType, WordOrder, decode_raw, encode_raw
from protocols.modbus.wire import BIT_FUNCTIONS, MAX_REGISTERS, Parity
from protocols.quantities import PointKind, Quantity

PROFILE_DIR = Path(__file__).parent
Address = Annotated[int, Field(ge=0, le=0xFFFF)]
Function = Annotated[int, Field(ge=1, le=4)]


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the profile, the point and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    quantity: Quantity
    kind: PointKind
    address: Address
    function: Function = 3
    data_type: DataType = DataType.F32
    word_order: WordOrder = WordOrder.ABCD
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    group: str = "default"
    valid_range: tuple[float, float] | None = None
    """Engineering values outside this range are sent with quality out_of_range."""
    rollover: float | None = None
    """Counters only: the value after which the register wraps to zero."""

    @property
    def register_count(self) -> int:
        return REGISTER_COUNT[self.data_type]

    @property
    def end(self) -> int:
        """One past the last address the point occupies."""
        return self.address + self.register_count

    def decode(self, registers: list[int]) -> float:
        return decode_raw(self.data_type, self.word_order, registers) * self.scale + self.offset

    def encode(self, value: float) -> list[int]:
        return encode_raw(self.data_type, self.word_order, (value - self.offset) / self.scale)

    def out_of_range(self, value: float) -> bool:
        return self.valid_range is not None and not self.valid_range[0] <= value <= self.valid_range[1]

    @model_validator(mode="after")
    def _consistent(self) -> Point:
        is_bit_fc = self.function in BIT_FUNCTIONS
        if is_bit_fc != (self.data_type is DataType.BIT):
            raise ValueError(
                f"point {self.name}: data_type {self.data_type} does not fit function {self.function} "
                "(functions 1 and 2 read bits and need data_type bit; 3 and 4 read registers)"
            )
        if self.scale == 0:
            raise ValueError(f"point {self.name}: scale must not be 0")
        if self.rollover is not None and self.kind is not PointKind.COUNTER:
            raise ValueError(f"point {self.name}: rollover only makes sense for kind counter")
        if self.end > 0x10000:
            raise ValueError(f"point {self.name}: address {self.address} + {self.register_count} runs past 65535")
        return self


class SerialDefaults(_Model):
    baudrate: int = 9600
    parity: Parity = "N"
    stopbits: Annotated[int, Field(ge=1, le=2)] = 1


class PointOverride(_Model):
    address: Address | None = None
    function: Function | None = None
    word_order: WordOrder | None = None
    scale: float | None = None


class Variant(_Model):
    description: str
    function: Function | None = None
    """Applies to every register point of the profile (some sources read input, others holding registers)."""
    points: dict[str, PointOverride] = Field(default_factory=dict)


class Workarounds(_Model):
    """Device quirks, named and documented instead of special-cased in code."""

    max_registers_per_request: Annotated[int, Field(ge=1, le=MAX_REGISTERS)] = MAX_REGISTERS
    unreadable: list[tuple[Address, Address]] = Field(default_factory=list)
    """Inclusive address ranges the device answers with an exception, for every function code; reads never span them."""
    notes: str = ""


class Profile(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    name: str
    version: Annotated[int, Field(ge=1)]
    category: Annotated[str, Field(pattern=r"^(electricity_meter|water_meter|equipment)$")]
    source: str = ""
    serial: SerialDefaults = SerialDefaults()
    poll_groups: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: {"default": 10.0})
    """Group name -> default poll interval in seconds; a device config may override each."""
    points: Annotated[list[Point], Field(min_length=1)]
    variants: dict[str, Variant] = Field(default_factory=dict)
    workarounds: Workarounds = Workarounds()

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        names = [p.name for p in self.points]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate point names: {', '.join(dupes)}")
        for p in self.points:
            if p.group not in self.poll_groups:
                raise ValueError(
                    f"point {p.name}: poll group {p.group!r} is not in poll_groups {sorted(self.poll_groups)}"
                )
        for vname, variant in self.variants.items():
            unknown = sorted(set(variant.points) - set(names))
            if unknown:
                raise ValueError(f"variant {vname}: unknown points {', '.join(unknown)}")
            self._variant_points(vname, variant)
        return self

    def point(self, name: str) -> Point:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"profile {self.id} has no point {name!r}")

    def with_variant(self, name: str | None) -> Profile:
        """The profile as a device of this variant presents it (points rewritten, variants dropped)."""
        if name is None:
            return self
        if name not in self.variants:
            raise ProfileError(
                f"profile {self.id} has no variant {name!r}; choose one of {sorted(self.variants) or 'none'}"
            )
        return self.model_copy(update={"points": self._variant_points(name, self.variants[name]), "variants": {}})

    def _variant_points(self, name: str, variant: Variant) -> list[Point]:
        """Points rewritten by a variant and validated again, so a variant cannot produce a point the file could not."""
        points: list[Point] = []
        for p in self.points:
            changes: dict[str, Any] = {}
            if variant.function is not None and p.function not in BIT_FUNCTIONS:
                changes["function"] = variant.function
            if p.name in variant.points:
                changes.update(variant.points[p.name].model_dump(exclude_none=True))
            try:
                points.append(Point.model_validate({**p.model_dump(), **changes}) if changes else p)
            except ValidationError as exc:
                raise ValueError(f"variant {name}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        return points


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from None


def parse_profile(data: Any, origin: str) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        lines = [f"profile {origin} is invalid:"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {where}: {err['msg']}")
        raise ProfileError("\n".join(lines)) from None


def available_profiles() -> list[str]:
    return sorted(p.parent.name for p in PROFILE_DIR.glob("*/profile.yaml"))


def load_profile(profile_id: str, variant: str | None = None) -> Profile:
    """A shipped profile by id, or a profile file by path; with the variant applied."""
    path = Path(profile_id)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / profile_id / "profile.yaml"
        if not path.exists():
            raise ProfileError(f"unknown profile {profile_id!r}; shipped profiles: {', '.join(available_profiles())}")
    return parse_profile(_load_yaml(path), str(profile_id)).with_variant(variant)


def load_vectors(profile_id: str) -> list[dict[str, Any]]:
    """Test vectors shipped beside a profile: raw registers -> expected engineering value."""
    return _load_yaml(PROFILE_DIR / profile_id / "vectors.yaml") or []
