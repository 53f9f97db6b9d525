"""``estatehub sim ...``: simulated meters, sensors and scanners."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import click
from pydantic import ValidationError

from edge.config import ConfigError
from firmware_sims.control import DEFAULT_SOCKET, ControlError, ControlServer, send
from firmware_sims.device import SimulatedDevice
from firmware_sims.faults import FaultKind, ScenarioError
from firmware_sims.site import describe_bus, start_bus, start_site
from firmware_sims.site_config import BusSpec, SiteError
from protocols.profiles import ProfileError, load_profile

_control_option = click.option(
    "--control",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_SOCKET,
    show_default=True,
    help="UNIX socket for switching faults and scanning codes while running.",
)


@click.group()
def sim() -> None:
    """Simulated devices that behave like real ones, faults included.

    \b
    `sim site` or `sim device` runs the simulation until Ctrl-C. While it runs, from another shell:
      estatehub sim fault b1-u03-elec no_response    switch a fault on
      estatehub sim fault b1-u03-elec clear          clear it
      estatehub sim fault                            list active faults
      estatehub sim scan gate-scanner CP-0042        a patrol scan at a checkpoint
    These talk to the running simulation over its control socket (--control, same default everywhere).
    """


def _run_until_stopped() -> None:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopping")


@sim.command("site")
@click.argument("site_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--edge-config", type=click.Path(dir_okay=False, path_type=Path), help="Write the matching edge-agent config here."
)
@click.option(
    "--timing/--no-timing", default=None, help="Emulate serial wire time on every bus (default: as the site file says)."
)
@click.option(
    "--link-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also give each pty a stable symlink DIR/<name>.tty.",
)
@_control_option
def site_command(
    site_file: Path, edge_config: Path | None, timing: bool | None, link_dir: Path | None, control: Path
) -> None:
    """Run the simulated site described by SITE_FILE until Ctrl-C, printing where each bus is."""
    try:
        running = start_site(site_file, timing=timing, link_dir=link_dir)
    except (SiteError, ScenarioError, ProfileError) as exc:
        raise click.ClickException(str(exc)) from None
    with running, ControlServer(running.devices, running.scanners, control):
        for line in running.describe():
            click.echo(line)
        if edge_config is not None:
            try:
                running.write_edge_config(edge_config)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"edge config written to {edge_config}")
        click.echo(f"control socket {control}; Ctrl-C to stop")
        _run_until_stopped()


@sim.command("device")
@click.argument("profile")
@click.option("--unit-id", type=click.IntRange(1, 247), default=1, show_default=True)
@click.option("--variant", help="Profile variant (register map of a particular source).")
@click.option("--rtu", "transport", flag_value="modbus-rtu", default=True, help="Modbus RTU on a pty (default).")
@click.option("--tcp", "transport", flag_value="modbus-tcp", help="Modbus TCP on 127.0.0.1.")
@click.option("--rtu-over-tcp", "transport", flag_value="rtu-over-tcp", help="Raw RTU frames over TCP on 127.0.0.1.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="TCP port (default: a free one).")
@click.option(
    "--link", type=click.Path(dir_okay=False, path_type=Path), help="Also give the pty a symlink at this path."
)
@click.option(
    "--timing/--no-timing", default=False, show_default=True, help="Emulate wire time at the profile's serial settings."
)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=20.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@_control_option
def device_command(
    profile: str,
    unit_id: int,
    variant: str | None,
    transport: str,
    port: int,
    link: Path | None,
    timing: bool,
    latency_ms: float,
    seed: int,
    control: Path,
) -> None:
    """Run one device of PROFILE (a shipped profile id or a profile.yaml) until Ctrl-C."""
    try:
        loaded = load_profile(profile, variant)
        serial = loaded.serial
        spec = BusSpec.model_validate(
            {
                "transport": transport,
                "baudrate": serial.baudrate,
                "parity": serial.parity,
                "stopbits": serial.stopbits,
                "timing": timing,
                "latency_ms": latency_ms,
            }
        )
    except (ProfileError, ValidationError) as exc:
        raise click.ClickException(str(exc)) from None
    device = SimulatedDevice(loaded, unit_id, seed)
    server = start_bus(device.name, spec, [device], link, port)
    try:
        with ControlServer({device.name: device}, path=control):
            click.echo(describe_bus(device.name, spec, server))
            click.echo(f"control socket {control}; Ctrl-C to stop")
            _run_until_stopped()
    finally:
        server.stop()


@sim.command("fault")
@click.argument("device", required=False)
@click.argument("kind", required=False, type=click.Choice([k.value for k in FaultKind] + ["clear"]))
@click.option(
    "--code", "exception_code", type=click.IntRange(1, 255), default=4, show_default=True, help="For kind exception."
)
@click.option(
    "--wrap-after",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="For counter_rollover: seconds until the counters wrap.",
)
@_control_option
def fault_command(device: str | None, kind: str | None, exception_code: int, wrap_after: float, control: Path) -> None:
    """Switch a fault on DEVICE of the running simulation, or clear it; with no arguments, list active faults.

    \b
    Kinds: no_response, bad_crc, exception (--code), counter_rollover (--wrap-after),
           meter_replaced, stuck, reverse_flow, out_of_range; or clear.
    """
    try:
        if device is None:
            faults = send({"op": "status"}, control)["faults"]
            active = {name: k for name, k in faults.items() if k}
            click.echo(
                "\n".join(f"{name}: {k}" for name, k in sorted(active.items())) or f"no faults ({len(faults)} devices)"
            )
            return
        if kind is None:
            raise click.UsageError("give a fault kind, or clear")
        request = {
            "op": "fault",
            "device": device,
            "fault": None if kind == "clear" else kind,
            "exception_code": exception_code,
            "wrap_after_s": wrap_after,
        }
        send(request, control)
    except ControlError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{device}: {kind}")


@sim.command("scan")
@click.argument("scanner")
@click.argument("code")
@_control_option
def scan_command(scanner: str, code: str, control: Path) -> None:
    """Scan CODE at SCANNER of the running simulation (as a guard on patrol would)."""
    try:
        reply = send({"op": "scan", "scanner": scanner, "code": code}, control)
    except ControlError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{scanner}: {code}" if reply["delivered"] else f"{scanner}: {code} lost (nobody is reading)")
