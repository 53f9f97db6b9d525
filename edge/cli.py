"""``estatehub edge ...``: run the agent, check a config, probe a device."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any, NoReturn

import click

from edge.config import ConfigError, EdgeConfig, load_config, parse_config


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(2)


def _load(config_path: str) -> EdgeConfig:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc))


@click.group()
def edge() -> None:
    """The edge agent in the plant room."""


@edge.command()
@click.argument("config_path", type=click.Path(dir_okay=False))
def check(config_path: str) -> None:
    """Validate CONFIG_PATH and show each device's read plan and each bus's load, without touching a bus."""
    from edge.bus import line_timing
    from edge.poller import poll_groups
    from protocols.modbus.planner import plan_cost, plan_naive, plan_profile

    config = _load(config_path)
    click.echo(
        f"site {config.site}, edge {config.edge}: {len(config.buses)} buses, {len(config.devices)} devices, "
        f"{len(config.rules)} rules, {len(config.scanners)} scanners; config version {config.version}"
    )
    for bus in config.buses:
        timing = line_timing(bus)
        busy_s_per_s = 0.0
        click.echo(f"bus {bus.name} ({bus.type}):")
        for device in (d for d in config.devices if d.bus == bus.name):
            profile = config.profile_for(device)
            variant = f"/{device.variant}" if device.variant else ""
            click.echo(f"  {device.name} unit {device.unit_id} {profile.id}{variant}")
            for group in poll_groups(device, profile):
                plan = plan_profile(profile, timing, [p.name for p in group.points])
                naive = plan_naive(group.points)
                cost = plan_cost(plan, timing)
                busy_s_per_s += cost / group.interval_s
                click.echo(
                    f"    every {group.interval_s:g} s: {len(group.points)} points in {len(plan)} requests, "
                    f"{cost * 1000:.0f} ms on the wire (one request per point: {len(naive)}, "
                    f"{plan_cost(naive, timing) * 1000:.0f} ms)"
                )
        warning = "  <- over 80%: lengthen poll intervals or split the bus" if busy_s_per_s > 0.8 else ""
        click.echo(f"  bus load {busy_s_per_s:.0%} of wire time{warning}")


@edge.command()
@click.argument("config_path", type=click.Path(dir_okay=False))
def run(config_path: str) -> None:
    """Run the agent with CONFIG_PATH until SIGINT/SIGTERM."""
    from edge.agent import EdgeAgent

    config = _load(config_path)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await EdgeAgent(config).run(stop)

    asyncio.run(main())


def _bus_from_options(
    port: str | None,
    host: str | None,
    tcp_port: int,
    rtu_over_tcp: bool,
    baudrate: int,
    parity: str,
    stopbits: int,
    timeout: float,
) -> Any:
    if bool(port) == bool(host):
        _fail("give exactly one of --port (serial RS-485) or --host (Modbus TCP / RTU-over-TCP gateway)")
    if port:
        bus = {"type": "modbus-rtu", "port": port, "baudrate": baudrate, "parity": parity, "stopbits": stopbits}
    else:
        bus = {"type": "rtu-over-tcp" if rtu_over_tcp else "modbus-tcp", "host": host, "port": tcp_port}
        if rtu_over_tcp:
            bus |= {"baudrate": baudrate, "parity": parity, "stopbits": stopbits}
    try:
        return parse_config(
            {"site": "probe", "edge": "probe", "buses": [{"name": "probe", "timeout_s": timeout, **bus}]},
            "probe options",
        ).buses[0]
    except ConfigError as exc:
        _fail(str(exc))


@edge.command()
@click.option("--port", help="Serial port of the RS-485 adapter, e.g. /dev/ttyUSB0.")
@click.option("--host", help="Modbus TCP or RTU-over-TCP gateway address.")
@click.option("--tcp-port", default=502, show_default=True)
@click.option("--rtu-over-tcp", is_flag=True, help="The gateway passes raw RTU frames (transparent converter).")
@click.option("--baudrate", default=9600, show_default=True)
@click.option("--parity", type=click.Choice(["N", "E", "O"]), default="N", show_default=True)
@click.option("--stopbits", type=click.Choice(["1", "2"]), default="1", show_default=True)
@click.option("--timeout", default=0.5, show_default=True, help="Seconds to wait for each reply.")
@click.option(
    "--profile", "profile_id", required=True, help="Profile id (see 'estatehub edge profiles') or a profile YAML path."
)
@click.option("--variant", help="Profile variant, for meters whose register maps differ between sources.")
@click.option("--unit", "unit_id", type=click.IntRange(1, 247), help="Unit id (Modbus slave address) to read.")
@click.option("--scan", "scan_range", help="Scan unit ids instead, e.g. 1-32.")
@click.option("--all-orders", is_flag=True, help="Also show multi-register values decoded in every word order.")
def probe(
    port: str | None,
    host: str | None,
    tcp_port: int,
    rtu_over_tcp: bool,
    baudrate: int,
    parity: str,
    stopbits: str,
    timeout: float,
    profile_id: str,
    variant: str | None,
    unit_id: int | None,
    scan_range: str | None,
    all_orders: bool,
) -> None:
    """Read one device once with a profile, or scan a bus for unit ids that answer."""
    from edge.probe import diagnose, format_probe, probe_device, scan_units
    from protocols.profiles import ProfileError, load_profile

    bus = _bus_from_options(port, host, tcp_port, rtu_over_tcp, baudrate, parity, int(stopbits), timeout)
    try:
        profile = load_profile(profile_id, variant)
    except ProfileError as exc:
        _fail(str(exc))
    if scan_range:
        try:
            first, _, last = scan_range.partition("-")
            units = range(int(first), int(last or first) + 1)
        except ValueError:
            _fail(f"--scan {scan_range!r}: write a range like 1-32")
        found = asyncio.run(scan_units(bus, units, profile))
        for unit, ms in found:
            click.echo(f"unit {unit:>3}: answers ({ms:.0f} ms)")
        click.echo(f"{len(found)} of {len(units)} unit ids answered")
        return
    if unit_id is None:
        _fail("give --unit N to read one device, or --scan FIRST-LAST to find devices")
    results = asyncio.run(probe_device(bus, unit_id, profile))
    click.echo(f"{profile.name} ({profile.id}{'/' + variant if variant else ''}) unit {unit_id}")
    click.echo(format_probe(results, all_orders))
    hint = diagnose(results)
    if hint:
        _fail(f"nothing could be read: {hint}")


@edge.command()
def profiles() -> None:
    """List the shipped device profiles and their variants."""
    from protocols.profiles import available_profiles, load_profile

    for pid in available_profiles():
        p = load_profile(pid)
        variants = f"  variants: {', '.join(p.variants)}" if p.variants else ""
        click.echo(f"{pid:<18} {p.name} ({len(p.points)} points){variants}")
