"""The simulated-site file: buildings of units with meters on per-building RS-485 buses, a pump room on
Modbus TCP, patrol scanners, and an optional fault scenario. Validated as a whole before anything starts.

Unit ids on a building bus: master meter 1, electricity meters 2..N+1, water meters N+2..2N+1
(N units per building), so a building holds at most 123 units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.config import BrokerConfig
from protocols.modbus.wire import LineTiming, Parity
from protocols.profiles import ProfileError, load_profile

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
Baudrate = Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
Transport = Literal["modbus-rtu", "modbus-tcp", "rtu-over-tcp"]
MAX_UNIT_ID = 247


class SiteError(ValueError):
    """The site file cannot be used; nothing was started."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterSpec(_Model):
    profile: str
    variant: str | None = None

    @model_validator(mode="after")
    def _exists(self) -> MeterSpec:
        try:
            load_profile(self.profile, self.variant)
        except ProfileError as exc:
            raise ValueError(str(exc)) from None
        return self


class BusSpec(_Model):
    transport: Transport = "modbus-rtu"
    baudrate: Baudrate = 9600
    parity: Parity = "N"
    stopbits: Literal[1, 2] = 1
    timing: bool = True
    """Delay replies by the wire time a real line would take (see firmware_sims.line)."""
    latency_ms: Annotated[float, Field(ge=0)] = 20.0
    """Response latency of the devices, added to the wire time when timing is on."""

    def line_timing(self) -> LineTiming | None:
        if not self.timing:
            return None
        return LineTiming(self.baudrate, self.parity, self.stopbits, self.latency_ms / 1000)


class Buildings(_Model):
    count: Annotated[int, Field(ge=1, le=99)] = 2
    units: Annotated[int, Field(ge=1)] = 24
    electricity_meter: MeterSpec | None = None
    water_meter: MeterSpec | None = None
    master_meter: MeterSpec | None = None
    bus: BusSpec = BusSpec()

    @model_validator(mode="after")
    def _fits_on_a_bus(self) -> Buildings:
        per_unit = (self.electricity_meter is not None) + (self.water_meter is not None)
        highest = 1 + self.units * per_unit
        if highest > MAX_UNIT_ID:
            raise ValueError(
                f"{self.units} units need unit ids up to {highest} on one building bus (master 1, meters from 2); "
                f"the highest is {MAX_UNIT_ID}"
            )
        return self


class RoomDevice(MeterSpec):
    name: Name
    unit_id: Annotated[int, Field(ge=1, le=MAX_UNIT_ID)]
    asset: str = ""
    load_scale: Annotated[float, Field(gt=0)] = 1.0
    """Demand relative to one household (a pump serving many flats draws more)."""


class PumpRoom(_Model):
    name: Name = "pump-room"
    bus: BusSpec = BusSpec(transport="modbus-tcp", timing=False, latency_ms=0)
    devices: Annotated[list[RoomDevice], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> PumpRoom:
        for attr in ("name", "unit_id"):
            values = [getattr(d, attr) for d in self.devices]
            dupes = sorted({str(v) for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"duplicate device {attr} in the pump room: {', '.join(dupes)}")
        return self


class ScannerSpec(_Model):
    name: Name
    checkpoint: Name


class SiteSpec(_Model):
    site: Name
    edge: Name
    seed: int = 0
    utc_offset_h: Annotated[float, Field(ge=-12, le=14)] = 8.0
    """Local time of the site: the load shape peaks at local morning and evening."""
    broker: BrokerConfig = BrokerConfig()
    """Copied into the generated edge config."""
    buildings: Buildings | None = None
    pump_room: PumpRoom | None = None
    scanners: list[ScannerSpec] = Field(default_factory=list)
    scenario: Path | None = None
    """Fault scenario file (see firmware_sims.faults), relative to the site file."""


def parse_site(data: Any, origin: str = "site", base_dir: Path = Path(".")) -> SiteSpec:
    if not isinstance(data, dict):
        raise SiteError(f"{origin}: the top level must be a mapping with site, edge, buildings, pump_room")
    try:
        spec = SiteSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"{origin}: invalid site, nothing was started:"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')}")
        raise SiteError("\n".join(lines)) from None
    if spec.scenario is not None and not spec.scenario.is_absolute():
        spec = spec.model_copy(update={"scenario": base_dir / spec.scenario})
    return spec


def load_site(path: str | Path) -> SiteSpec:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SiteError(f"{path}: cannot read site: {exc}") from None
    return parse_site(data, str(path), path.parent)
