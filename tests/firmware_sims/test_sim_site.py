"""The demo site file: starts, matches the edge config it writes, runs its fault scenario."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import serial
from click.testing import CliRunner
from sim_helpers import REALISTIC, read_point, serial_client, tcp_client

from edge.config import RtuBus, TcpBus, load_config
from firmware_sims.cli import sim
from firmware_sims.clock import FakeClock
from firmware_sims.control import ControlError, ControlServer, send
from firmware_sims.faults import FaultKind, ScenarioError, load_scenario, parse_scenario
from firmware_sims.scanner import SimulatedScanner
from firmware_sims.site import DEMO_SITE, start_site
from firmware_sims.site_config import SiteError, load_site, parse_site
from protocols.profiles import load_profile

ESTATEHUB = Path(sys.executable).parent / "estatehub"


def test_demo_site_starts_and_its_edge_config_validates(tmp_path: Path) -> None:
    out = tmp_path / "edge.yaml"
    with start_site(DEMO_SITE, timing=False, link_dir=tmp_path) as site:
        site.write_edge_config(out)
        config = load_config(out)
        assert len(config.devices) == 2 * (24 * 2 + 1) + 3
        assert {b.name for b in config.buses} == {"b1", "b2", "pump-room"}
        buses = {b.name: b for b in config.buses}
        b1, room = buses["b1"], buses["pump-room"]
        assert isinstance(b1, RtuBus) and b1.port == str(tmp_path / "b1.tty")
        assert isinstance(room, TcpBus)
        assert config.scanners[0].port == str(tmp_path / "gate-scanner.tty")
        by_name = {d.name: d for d in config.devices}

        async def poll(name: str) -> float:
            device = by_name[name]
            bus = buses[device.bus]
            client = serial_client(bus.port) if isinstance(bus, RtuBus) else tcp_client(bus.port)
            await client.connect()
            profile = config.profile_for(device)
            point = profile.points[0]
            value = await read_point(client, point, device.unit_id)
            client.close()
            lo, hi = REALISTIC[point.quantity]
            assert lo <= value <= hi, f"{name} {point.name} = {value}"
            return value

        for name in ("b1-master", "b1-u24-water", "b2-u01-elec", "pump-station", "water-tank", "switchroom-env"):
            asyncio.run(poll(name))
        with serial.Serial(config.scanners[0].port, 9600, timeout=1) as port:
            site.scanners["gate-scanner"].scan("CP-0042")
            assert port.readline() == b"CP-0042\r\n"
    assert not (tmp_path / "b1.tty").exists()


def test_demo_scenario_switches_faults_on_schedule() -> None:
    clock = FakeClock()
    with start_site(DEMO_SITE, timing=False, clock=clock) as site:
        device = site.devices["b1-u03-elec"]
        assert device.fault is None
        clock.advance(61)
        assert device.fault is not None and device.fault.kind is FaultKind.NO_RESPONSE
        clock.advance(120)
        assert device.fault is None
        assert {s.fault for s in load_scenario(site.spec.scenario or "")} == set(FaultKind)


def test_site_errors_name_the_field(tmp_path: Path) -> None:
    base = {"site": "s", "edge": "e"}
    with pytest.raises(SiteError, match="buildings: 200 units need unit ids up to 401"):
        parse_site(
            base
            | {
                "buildings": {
                    "units": 200,
                    "electricity_meter": {"profile": "chint_ddsu666"},
                    "water_meter": {"profile": "xintai_water"},
                    "master_meter": None,
                }
            }
        )
    with pytest.raises(SiteError, match="unknown profile 'nope'"):
        parse_site(base | {"buildings": {"electricity_meter": {"profile": "nope"}}})
    with pytest.raises(SiteError, match="duplicate device unit_id in the pump room: 1"):
        parse_site(
            base
            | {
                "pump_room": {
                    "devices": [
                        {"name": "a", "profile": "water_tank", "unit_id": 1},
                        {"name": "b", "profile": "water_tank", "unit_id": 1},
                    ]
                }
            }
        )
    scenario = tmp_path / "s.yaml"
    scenario.write_text("- {device: ghost, fault: stuck, at: 1}\n")
    (tmp_path / "site.yaml").write_text(
        f"site: s\nedge: e\nscenario: {scenario.name}\n"
        "pump_room: {devices: [{name: tank, profile: water_tank, unit_id: 1}]}\n"
    )
    assert load_site(tmp_path / "site.yaml").scenario == scenario
    with pytest.raises(SiteError, match="no device named ghost"):
        start_site(tmp_path / "site.yaml")


def test_scenario_errors_name_the_step() -> None:
    with pytest.raises(ScenarioError, match="step 1: fault: Input should be"):
        parse_scenario([{"device": "a", "fault": "stuck", "at": 0}, {"device": "a", "fault": "melted", "at": 0}])
    with pytest.raises(ScenarioError, match="step 0: duration"):
        parse_scenario([{"device": "a", "fault": "stuck", "at": 0, "duration": 0}])


def test_control_socket_and_cli_switch_faults(tmp_path: Path) -> None:
    sock = tmp_path / "ctl.sock"
    with start_site(DEMO_SITE, timing=False) as site, ControlServer(site.devices, site.scanners, sock):
        runner = CliRunner()
        result = runner.invoke(sim, ["fault", "b2-u02-elec", "exception", "--code", "6", "--control", str(sock)])
        assert result.exit_code == 0, result.output
        fault = site.devices["b2-u02-elec"].fault
        assert fault is not None and fault.exception_code == 6
        listed = runner.invoke(sim, ["fault", "--control", str(sock)])
        assert "b2-u02-elec: exception" in listed.output
        assert runner.invoke(sim, ["fault", "b2-u02-elec", "clear", "--control", str(sock)]).exit_code == 0
        assert site.devices["b2-u02-elec"].fault is None
        unknown = runner.invoke(sim, ["fault", "b9-u01-elec", "stuck", "--control", str(sock)])
        assert unknown.exit_code != 0 and "no device 'b9-u01-elec'" in unknown.output
        scanned = runner.invoke(sim, ["scan", "gate-scanner", "CP-1", "--control", str(sock)])
        assert scanned.output.strip() == "gate-scanner: CP-1"
        with pytest.raises(ControlError, match="unknown op"):
            send({"op": "reboot"}, sock)
    with pytest.raises(ControlError, match="no simulation answering"):
        send({"op": "status"}, sock)


def test_scanner_writes_one_line_per_scan() -> None:
    with SimulatedScanner() as scanner, serial.Serial(scanner.path, 9600, timeout=1) as port:
        assert scanner.scan("CP-A")
        assert scanner.scan("CP-B")
        assert port.read(12) == b"CP-A\r\nCP-B\r\n"
        with pytest.raises(ValueError):
            scanner.scan("two\nlines")


def _run_until_ready(args: list[str]) -> tuple[subprocess.Popen[str], list[str]]:
    """Start an `estatehub sim ...` command; returns it with what it printed before it was ready."""
    proc = subprocess.Popen(
        [str(ESTATEHUB), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Ctrl-C to stop" in line:
            break
    return proc, lines


def _interrupt(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=10)


def test_cli_site_runs_until_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "edge.yaml"
    proc, lines = _run_until_ready(
        ["sim", "site", str(DEMO_SITE), "--no-timing", "--edge-config", str(out), "--control", str(tmp_path / "c.sock")]
    )
    try:
        assert any(line.startswith("b1: modbus-rtu /dev/pts/") for line in lines), lines
        assert len(load_config(out).devices) == 101
    finally:
        assert _interrupt(proc) == 0


def test_cli_device_serves_one_device_over_tcp(tmp_path: Path) -> None:
    proc, lines = _run_until_ready(
        [
            "sim",
            "device",
            "chint_dtsu666",
            "--unit-id",
            "5",
            "--tcp",
            "--variant",
            "openems",
            "--control",
            str(tmp_path / "c"),
        ]
    )
    try:
        assert lines[0].startswith("chint_dtsu666-5: modbus-tcp 127.0.0.1:"), lines
        port = int(lines[0].split(":")[2].split(",")[0])
        point = load_profile("chint_dtsu666", "openems").point("energy_import")

        async def read() -> float:
            client = tcp_client(port)
            await client.connect()
            value = await read_point(client, point, 5)
            client.close()
            return value

        assert asyncio.run(read()) > 100
    finally:
        assert _interrupt(proc) == 0
