"""`estatehub edge probe`: what a field engineer sees when commissioning a meter over a real pty line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from deploy.cli import main
from firmware_sims.device import SimulatedDevice
from firmware_sims.faults import Fault, FaultKind
from firmware_sims.rtu_server import RtuServer
from protocols.profiles import load_profile


@pytest.fixture
def line() -> Iterator[tuple[RtuServer, list[SimulatedDevice]]]:
    devices = [SimulatedDevice(load_profile("chint_dtsu666", "openems"), unit, seed=unit) for unit in (2, 5)]
    with RtuServer(devices) as server:
        yield server, devices


def probe(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["edge", "probe", "--timeout", "0.2", "--profile", "chint_dtsu666", *args])
    return result.exit_code, result.output


def test_probe_prints_raw_registers_beside_decoded_values(line: tuple[RtuServer, list[SimulatedDevice]]) -> None:
    server, _ = line
    code, out = probe("--port", server.path, "--unit", "2", "--variant", "openems", "--all-orders")
    assert code == 0, out
    row = next(r for r in out.splitlines() if r.startswith("voltage_a "))
    fields = row.split()
    assert fields[1:3] == ["4", "0x2006"], "function code and address as the manual writes them"
    assert 200 < float(fields[5]) < 240 and fields[6] == "V"
    assert "as CDAB" in out, "alternative word orders are shown to spot a wrong order"


def test_wrong_variant_is_diagnosed_as_a_register_map_problem(line: tuple[RtuServer, list[SimulatedDevice]]) -> None:
    server, _ = line
    code, out = probe("--port", server.path, "--unit", "2")
    assert code == 2
    assert "exception 2 (illegal address)" in out
    assert "wrong function code or register map; try another --variant" in out


def test_silent_unit_is_diagnosed_as_wiring(line: tuple[RtuServer, list[SimulatedDevice]]) -> None:
    server, devices = line
    devices[0].set_fault(Fault(kind=FaultKind.NO_RESPONSE))
    code, out = probe("--port", server.path, "--unit", "2", "--variant", "openems")
    assert code == 2 and "no reply: check wiring (A/B swapped?), unit id, baud rate and parity" in out


def test_scan_finds_the_unit_ids_on_the_bus(line: tuple[RtuServer, list[SimulatedDevice]]) -> None:
    server, _ = line
    code, out = probe("--port", server.path, "--scan", "1-6", "--variant", "openems")
    assert code == 0, out
    assert [ln.split()[1].rstrip(":") for ln in out.splitlines() if ln.startswith("unit")] == ["2", "5"]
    assert "2 of 6 unit ids answered" in out


def test_probe_options_are_validated() -> None:
    code, out = probe("--unit", "1")
    assert code == 2 and "give exactly one of --port" in out
    code, out = probe("--port", "/dev/null", "--baudrate", "9601", "--unit", "1")
    assert code == 2 and "baudrate: Input should be 1200, 2400" in out
