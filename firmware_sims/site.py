"""A whole simulated site started from one file, and the edge config that matches what was started.

``start_site("firmware_sims/sites/demo_site.yaml")`` brings up one RTU bus per building (a pty each),
the pump room bus and the scanners, schedules the fault scenario, and returns a RunningSite that knows
the actual pty paths and ports: ``write_edge_config(path)`` gives an edge agent a ready config.
"""

from __future__ import annotations

import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from edge.config import EdgeConfig, parse_config
from firmware_sims.clock import Clock, system_clock
from firmware_sims.device import SimulatedDevice
from firmware_sims.faults import load_scenario
from firmware_sims.load_shape import DailyShape
from firmware_sims.rtu_server import RtuServer
from firmware_sims.scanner import SimulatedScanner
from firmware_sims.site_config import BusSpec, MeterSpec, SiteError, SiteSpec, load_site
from firmware_sims.tcp_server import Framing, TcpServer
from protocols.profiles import load_profile

BusServer = RtuServer | TcpServer
LOCALHOST = "127.0.0.1"
DEMO_SITE = Path(__file__).parent / "sites" / "demo_site.yaml"


@dataclass(frozen=True)
class PlannedDevice:
    name: str
    unit_id: int
    meter: MeterSpec
    asset: str
    load_scale: float = 1.0


@dataclass(frozen=True)
class PlannedBus:
    name: str
    spec: BusSpec
    devices: tuple[PlannedDevice, ...]


def plan_site(spec: SiteSpec) -> list[PlannedBus]:
    """Which device sits on which bus at which unit id (see site_config for the numbering)."""
    buses = []
    if spec.buildings is not None:
        b = spec.buildings
        for n in range(1, b.count + 1):
            devices = []
            if b.master_meter is not None:
                devices.append(PlannedDevice(f"b{n}-master", 1, b.master_meter, f"EM-B{n}-MAIN", load_scale=b.units))
            unit_id = 2
            for kind, tag, meter in (("elec", "EM", b.electricity_meter), ("water", "WM", b.water_meter)):
                if meter is None:
                    continue
                for u in range(1, b.units + 1):
                    devices.append(PlannedDevice(f"b{n}-u{u:02d}-{kind}", unit_id, meter, f"{tag}-B{n}-U{u:02d}"))
                    unit_id += 1
            buses.append(PlannedBus(f"b{n}", b.bus, tuple(devices)))
    if spec.pump_room is not None:
        room = spec.pump_room
        devices = [PlannedDevice(d.name, d.unit_id, d, d.asset or d.name, d.load_scale) for d in room.devices]
        buses.append(PlannedBus(room.name, room.bus, tuple(devices)))
    for kind, names in (("bus", [b.name for b in buses]), ("device", [d.name for b in buses for d in b.devices])):
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SiteError(f"site {spec.site}: duplicate {kind} names {', '.join(dupes)}")
    return buses


def start_bus(
    name: str, spec: BusSpec, devices: list[SimulatedDevice], link: Path | None = None, port: int = 0
) -> BusServer:
    """One bus of any transport, started: a pty (optionally symlinked) or a TCP port (0 = a free one)."""
    timing = spec.line_timing()
    if spec.transport == "modbus-rtu":
        return RtuServer(devices, timing, link, name).start()
    framing: Framing = "mbap" if spec.transport == "modbus-tcp" else "rtu"
    return TcpServer(devices, framing, timing, LOCALHOST, port, name).start()


def bus_entry(name: str, spec: BusSpec, server: BusServer) -> dict[str, Any]:
    """The edge config's view of a running bus."""
    entry: dict[str, Any] = {"name": name, "type": spec.transport, "device_latency_s": spec.latency_ms / 1000}
    if isinstance(server, RtuServer):
        entry["port"] = server.path
    else:
        entry.update(host=server.host, port=server.port)
    if spec.transport != "modbus-tcp":
        entry.update(baudrate=spec.baudrate, parity=spec.parity, stopbits=spec.stopbits)
    return entry


def describe_bus(name: str, spec: BusSpec, server: BusServer) -> str:
    where = server.path if isinstance(server, RtuServer) else f"{server.host}:{server.port}"
    units = sorted(server.responder.devices)
    ids = f"unit {units[0]}" if len(units) == 1 else f"{len(units)} devices, units {units[0]}-{units[-1]}"
    timing = (
        f"timing on ({spec.baudrate} 8{spec.parity}{spec.stopbits}, latency {spec.latency_ms:g} ms)"
        if spec.timing
        else "timing off"
    )
    return f"{name}: {spec.transport} {where}, {ids}, {timing}"


class RunningSite:
    """Everything a site file started; stop() (or leaving the with block) shuts it all down."""

    def __init__(
        self,
        spec: SiteSpec,
        plan: list[PlannedBus],
        servers: dict[str, BusServer],
        devices: dict[str, SimulatedDevice],
        scanners: dict[str, SimulatedScanner],
        stack: ExitStack,
    ) -> None:
        self.spec = spec
        self.plan = plan
        self.servers = servers
        self.devices = devices
        self.scanners = scanners
        self._stack = stack

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> RunningSite:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def describe(self) -> list[str]:
        lines = [describe_bus(bus.name, bus.spec, self.servers[bus.name]) for bus in self.plan]
        checkpoints = {s.name: s.checkpoint for s in self.spec.scanners}
        lines += [f"{name}: scanner {s.path} (checkpoint {checkpoints[name]})" for name, s in self.scanners.items()]
        return lines

    def edge_config_data(self) -> dict[str, Any]:
        """The config an edge agent needs to poll this site, as written to a file."""
        return {
            "site": self.spec.site,
            "edge": self.spec.edge,
            "broker": self.spec.broker.model_dump(mode="json", exclude_none=True),
            "buses": [bus_entry(bus.name, bus.spec, self.servers[bus.name]) for bus in self.plan],
            "devices": [
                {"name": d.name, "bus": bus.name, "unit_id": d.unit_id, "profile": d.meter.profile, "asset": d.asset}
                | ({"variant": d.meter.variant} if d.meter.variant else {})
                for bus in self.plan
                for d in bus.devices
            ],
            "scanners": [
                {"name": s.name, "port": self.scanners[s.name].path, "checkpoint": s.checkpoint}
                for s in self.spec.scanners
            ],
        }

    def edge_config(self) -> EdgeConfig:
        """The edge config, validated as the agent would validate it."""
        return parse_config(self.edge_config_data(), f"edge config for site {self.spec.site}")

    def write_edge_config(self, path: str | Path) -> EdgeConfig:
        config = self.edge_config()
        header = f"# Generated by `estatehub sim site` for the running simulated site {self.spec.site}.\n"
        Path(path).write_text(header + yaml.safe_dump(self.edge_config_data(), sort_keys=False), encoding="utf-8")
        return config


def _with_timing(spec: SiteSpec, timing: bool) -> SiteSpec:
    """The site with timing emulation switched on or off on every bus."""
    update: dict[str, Any] = {}
    for part in ("buildings", "pump_room"):
        section = getattr(spec, part)
        if section is not None:
            update[part] = section.model_copy(update={"bus": section.bus.model_copy(update={"timing": timing})})
    return spec.model_copy(update=update)


def _make_devices(spec: SiteSpec, bus: PlannedBus, clock: Clock, shape: DailyShape) -> list[SimulatedDevice]:
    profiles = {(m.profile, m.variant): load_profile(m.profile, m.variant) for m in {d.meter for d in bus.devices}}
    return [
        SimulatedDevice(
            profiles[d.meter.profile, d.meter.variant],
            d.unit_id,
            seed=zlib.crc32(f"{spec.seed}:{d.name}".encode()),
            clock=clock,
            name=d.name,
            load_scale=d.load_scale,
            shape=shape,
        )
        for d in bus.devices
    ]


def start_site(
    site: str | Path | SiteSpec,
    *,
    timing: bool | None = None,
    link_dir: Path | None = None,
    clock: Clock = system_clock,
) -> RunningSite:
    """Start every bus, device and scanner of a site; timing overrides every bus's setting when given.

    With link_dir, each pty also gets a stable symlink ``<link_dir>/<bus or scanner>.tty``.
    """
    spec = site if isinstance(site, SiteSpec) else load_site(site)
    if timing is not None:
        spec = _with_timing(spec, timing)
    plan = plan_site(spec)
    steps = load_scenario(spec.scenario) if spec.scenario is not None else []
    unknown = sorted({s.device for s in steps} - {d.name for bus in plan for d in bus.devices})
    if unknown:
        raise SiteError(f"scenario {spec.scenario}: no device named {', '.join(unknown)} in site {spec.site}")
    shape = DailyShape(utc_offset_s=spec.utc_offset_h * 3600)
    devices: dict[str, SimulatedDevice] = {}
    servers: dict[str, BusServer] = {}
    scanners: dict[str, SimulatedScanner] = {}
    stack = ExitStack()
    try:
        for bus in plan:
            members = _make_devices(spec, bus, clock, shape)
            devices.update((d.name, d) for d in members)
            link = link_dir / f"{bus.name}.tty" if link_dir is not None else None
            servers[bus.name] = start_bus(bus.name, bus.spec, members, link)
            stack.callback(servers[bus.name].stop)
        for s in spec.scanners:
            link = link_dir / f"{s.name}.tty" if link_dir is not None else None
            scanners[s.name] = SimulatedScanner(s.name, link).start()
            stack.callback(scanners[s.name].stop)
    except BaseException:
        stack.close()
        raise
    t0 = clock()
    for step in steps:
        end = t0 + step.at + step.duration if step.duration is not None else None
        devices[step.device].schedule(step.to_fault(), t0 + step.at, end)
    return RunningSite(spec, plan, servers, devices, scanners, stack)
