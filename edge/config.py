"""Edge agent configuration: one YAML file, validated as a whole before anything starts.

Errors name the file, the field path and what to write instead, because the person reading them is a
field engineer in a plant room, not the author of this code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protocols.modbus.wire import Parity
from protocols.profiles import Profile, ProfileError, load_profile
from protocols.topics import check_id

Seconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]


class ConfigError(ValueError):
    """The config cannot be used; nothing has been started."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Model):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class BrokerConfig(_Model):
    host: str = "127.0.0.1"
    port: Port = 1883
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    tls: TlsConfig | None = None
    """With TLS configured the agent never falls back to plaintext."""
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    reconnect_min_s: Seconds = 1.0
    reconnect_max_s: Seconds = 60.0


class OutboxConfig(_Model):
    path: Path = Path("edge-outbox.sqlite")
    max_records: Annotated[int, Field(ge=100)] = 5_000_000
    max_age_days: Annotated[float, Field(gt=0)] = 30.0


class UplinkConfig(_Model):
    batch_max_records: Annotated[int, Field(ge=1, le=10_000)] = 500
    batch_max_bytes: Annotated[int, Field(ge=1024, le=256 * 1024 * 1024)] = 256 * 1024
    max_inflight_batches: Annotated[int, Field(ge=1, le=1000)] = 8
    ack_timeout_s: Seconds = 15.0
    replay_records_per_s: Annotated[float, Field(gt=0)] = 2000.0
    """Backlog replay rate after an outage; fresh data is sent beside it, not behind it."""
    status_interval_s: Seconds = 60.0
    """How often the retained status (backlog, link health per device) is refreshed while connected."""


class _BusBase(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    timeout_s: Seconds = 0.5
    """Deadline of one request; a device that misses it counts a timeout."""
    device_latency_s: Annotated[float, Field(ge=0)] = 0.02
    """Expected response latency of the devices, used by the read planner's cost model."""
    backoff_initial_s: Seconds = 5.0
    backoff_max_s: Seconds = 300.0


class RtuBus(_BusBase):
    type: Literal["modbus-rtu"]
    port: str
    """Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/..."""
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Parity = "N"
    stopbits: Literal[1, 2] = 1


class TcpBus(_BusBase):
    type: Literal["modbus-tcp"]
    host: str
    port: Port = 502
    serialize: bool = False
    """One transaction at a time (gateways in front of a serial line need this)."""


class RtuOverTcpBus(_BusBase):
    type: Literal["rtu-over-tcp"]
    host: str
    port: Port = 502
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    """Baud rate of the serial line behind the converter (for the planner's cost model)."""
    parity: Parity = "N"
    stopbits: Literal[1, 2] = 1


Bus = Annotated[RtuBus | TcpBus | RtuOverTcpBus, Field(discriminator="type")]


class DeviceConfig(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    bus: str
    unit_id: Annotated[int, Field(ge=1, le=247)]
    profile: str
    variant: str | None = None
    asset: str = ""
    """What this device measures in the registry (meter number, equipment tag), sent upstream as-is."""
    poll_intervals: dict[str, Seconds] = Field(default_factory=dict)
    """Override a profile's poll group intervals, e.g. {energy: 900}."""
    points: list[str] | None = None
    """Poll only these points (default: all of the profile)."""


class ThresholdRule(_Model):
    """Raise an alarm when a point stays beyond a limit for min_duration_s; clear past the hysteresis band."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    device: str
    point: str
    above: float | None = None
    below: float | None = None
    hysteresis: Annotated[float, Field(ge=0)] = 0.0
    min_duration_s: Annotated[float, Field(ge=0)] = 0.0
    severity: Literal["info", "warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _one_limit(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError(f"rule {self.name}: set exactly one of 'above' or 'below'")
        return self


class ScannerConfig(_Model):
    """A serial QR/barcode scanner fixed at a patrol checkpoint; one scanned code per line."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    port: str
    checkpoint: str
    baudrate: int = 9600


class EdgeConfig(_Model):
    site: str
    edge: str
    broker: BrokerConfig = BrokerConfig()
    outbox: OutboxConfig = OutboxConfig()
    uplink: UplinkConfig = UplinkConfig()
    buses: list[Bus] = Field(default_factory=list)
    devices: list[DeviceConfig] = Field(default_factory=list)
    rules: list[ThresholdRule] = Field(default_factory=list)
    scanners: list[ScannerConfig] = Field(default_factory=list)

    @field_validator("site", "edge")
    @classmethod
    def _topic_safe(cls, value: str, info: Any) -> str:
        return check_id(info.field_name, value)

    @model_validator(mode="after")
    def _references(self) -> EdgeConfig:
        _refuse_duplicates("bus", [b.name for b in self.buses])
        _refuse_duplicates("device", [d.name for d in self.devices])
        _refuse_duplicates("rule", [r.name for r in self.rules])
        _refuse_duplicates("scanner", [s.name for s in self.scanners])
        buses = {b.name for b in self.buses}
        seen_units: dict[tuple[str, int], str] = {}
        for d in self.devices:
            if d.bus not in buses:
                raise ValueError(
                    f"device {d.name}: bus {d.bus!r} is not defined under buses ({sorted(buses) or 'none'})"
                )
            other = seen_units.setdefault((d.bus, d.unit_id), d.name)
            if other != d.name:
                raise ValueError(
                    f"device {d.name}: unit_id {d.unit_id} on bus {d.bus} is already used by device {other}"
                )
        return self

    def profile_for(self, device: DeviceConfig) -> Profile:
        return load_profile(device.profile, device.variant)

    @property
    def version(self) -> str:
        """Short hash of the effective config, reported in the birth message."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def _refuse_duplicates(kind: str, names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate {kind} names: {', '.join(dupes)}")


def _format_errors(origin: str, exc: ValidationError) -> str:
    lines = [f"{origin}: invalid configuration, nothing was started:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, origin: str = "config") -> EdgeConfig:
    """Validate a config mapping, including that every profile, variant and point exists."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping with site, edge, broker, buses, devices")
    try:
        config = EdgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(origin, exc)) from None
    for i, device in enumerate(config.devices):
        where = f"{origin}: devices.{i} ({device.name})"
        try:
            profile = config.profile_for(device)
        except ProfileError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        unknown_groups = sorted(set(device.poll_intervals) - set(profile.poll_groups))
        if unknown_groups:
            raise ConfigError(
                f"{where}.poll_intervals: unknown poll group {', '.join(unknown_groups)}; "
                f"profile {profile.id} has {', '.join(sorted(profile.poll_groups))}"
            )
        names = {p.name for p in profile.points}
        unknown_points = sorted(set(device.points or ()) - names)
        if unknown_points:
            raise ConfigError(f"{where}.points: profile {profile.id} has no point {', '.join(unknown_points)}")
    devices = {d.name: d for d in config.devices}
    for i, rule in enumerate(config.rules):
        where = f"{origin}: rules.{i} ({rule.name})"
        if rule.device not in devices:
            raise ConfigError(f"{where}.device: no device named {rule.device!r}")
        profile = config.profile_for(devices[rule.device])
        if rule.point not in {p.name for p in profile.points}:
            raise ConfigError(f"{where}.point: device {rule.device} (profile {profile.id}) has no point {rule.point!r}")
    return config


def load_config(path: str | Path) -> EdgeConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path))
