"""A malformed config gives one clear error naming the field; the agent never starts half-configured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "deploy" / "edge.example.yaml"


def good() -> dict[str, Any]:
    return {
        "site": "garden-court",
        "edge": "b1-plantroom",
        "broker": {"host": "127.0.0.1", "port": 1883},
        "buses": [{"name": "rs485-1", "type": "modbus-rtu", "port": "/dev/ttyUSB0", "baudrate": 9600}],
        "devices": [
            {"name": "b1-master", "bus": "rs485-1", "unit_id": 1, "profile": "chint_dtsu666"},
            {"name": "b1-0101-e", "bus": "rs485-1", "unit_id": 2, "profile": "chint_dtsu666", "variant": "openems",
             "poll_intervals": {"energy": 900}},
        ],
        "rules": [{"name": "b1-overvoltage", "device": "b1-master", "point": "voltage_a", "above": 250, "hysteresis": 5}],
    }


def error_of(data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "edge.yaml")
    return str(info.value)


def test_the_documented_example_config_loads() -> None:
    config = load_config(SAMPLE)
    assert config.devices and config.buses


def test_a_good_config_loads_with_profiles_resolved() -> None:
    config = parse_config(good())
    device = config.devices[1]
    assert config.profile_for(device).point("energy_import").address == 0x4000


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["buses"][0].update(baudrate=9601), "buses.0.modbus-rtu.baudrate: Input should be 1200, 2400"),
        (lambda c: c["buses"][0].update(type="modbus-udp"), "buses.0: Input tag 'modbus-udp'"),
        (lambda c: c["devices"][0].update(unit_id=0), "devices.0.unit_id: Input should be greater than or equal to 1"),
        (lambda c: c["devices"][0].update(bus="rs485-9"), "device b1-master: bus 'rs485-9' is not defined"),
        (lambda c: c["devices"][1].update(unit_id=1), "device b1-0101-e: unit_id 1 on bus rs485-1 is already used by device b1-master"),
        (lambda c: c["devices"][1].update(name="b1-master"), "duplicate device names: b1-master"),
        (lambda c: c["devices"][0].update(profile="chint_dtsu667"), "devices.0 (b1-master): unknown profile 'chint_dtsu667'"),
        (lambda c: c["devices"][1].update(variant="hobby"), "has no variant 'hobby'; choose one of ['openems', 'rebranded_101e']"),
        (lambda c: c["devices"][1].update(poll_intervals={"energ": 900}), "devices.1 (b1-0101-e).poll_intervals: unknown poll group energ"),
        (lambda c: c["devices"][0].update(points=["voltage_z"]), "devices.0 (b1-master).points: profile chint_dtsu666 has no point voltage_z"),
        (lambda c: c["rules"][0].update(point="volts"), "rules.0 (b1-overvoltage).point: device b1-master (profile chint_dtsu666) has no point 'volts'"),
        (lambda c: c["rules"][0].update(below=180), "rule b1-overvoltage: set exactly one of 'above' or 'below'"),
        (lambda c: c.update(site="garden court"), "site: site id 'garden court' is not usable in MQTT topics"),
        (lambda c: c["broker"].update(prot=1883), "broker.prot: Extra inputs are not permitted"),
        (lambda c: c.pop("edge"), "edge: Field required"),
    ],
)
def test_malformed_config_names_the_field(change: Any, expected: str) -> None:
    data = good()
    change(data)
    assert expected in error_of(data)


def test_not_a_mapping() -> None:
    assert "top level must be a mapping" in error_of(["site"])


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("site: a\nbuses: [\n")
    with pytest.raises(ConfigError, match=r"edge\.yaml: not valid YAML"):
        load_config(path)


def test_agent_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    data = good()
    data["devices"][0]["unit_id"] = 300
    data["outbox"] = {"path": str(tmp_path / "outbox.sqlite")}
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data))
    result = subprocess.run([sys.executable, "-m", "deploy.cli", "edge", "run", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert "devices.0.unit_id: Input should be less than or equal to 247" in result.stderr
    assert "nothing was started" in result.stderr
    assert not (tmp_path / "outbox.sqlite").exists(), "a rejected config must not create an outbox"


def test_check_shows_the_read_plan_and_bus_load_without_touching_a_bus() -> None:
    from click.testing import CliRunner

    from deploy.cli import main

    result = CliRunner().invoke(main, ["edge", "check", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "every 10 s: 15 points in 2 requests" in result.output, "profile groups merged into few requests"
    assert "every 10 s: 3 points in 1 requests" in result.output, "a device's `points` list is honoured"
    assert "bus load" in result.output


def test_check_reports_a_bad_config_and_fails(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from deploy.cli import main

    path = tmp_path / "edge.yaml"
    data = good()
    data["devices"][0]["profile"] = "chint_dtsu999"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["edge", "check", str(path)])
    assert result.exit_code == 2 and "unknown profile 'chint_dtsu999'" in result.output
