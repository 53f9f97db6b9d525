"""RTU slaves on a pty, read with the real pymodbus serial client (and raw pyserial for byte-exact cases)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import serial
from pymodbus.exceptions import ModbusIOException
from sim_helpers import REALISTIC, every_profile_and_variant, read_point, read_raw, serial_client

from firmware_sims.clock import FakeClock
from firmware_sims.device import SimulatedDevice
from firmware_sims.faults import Fault, FaultKind
from firmware_sims.rtu_frames import rtu_frame
from firmware_sims.rtu_server import RtuServer
from protocols.modbus.wire import LineTiming
from protocols.profiles import load_profile

EVENING = 1_700_000_000.0 - 1_700_000_000.0 % 86_400 + 19 * 3600


@pytest.fixture
def dtsu_pair() -> Iterator[tuple[RtuServer, FakeClock]]:
    clock = FakeClock(EVENING)
    profile = load_profile("chint_dtsu666")
    devices = [SimulatedDevice(profile, unit, seed=unit, clock=clock) for unit in (1, 2)]
    with RtuServer(devices) as server:
        yield server, clock


def test_every_profile_reads_realistic_values_over_rtu() -> None:
    profiles = every_profile_and_variant()
    devices = [SimulatedDevice(p, unit, seed=unit) for unit, p in enumerate(profiles, start=1)]

    async def read_all(path: str) -> None:
        client = serial_client(path)
        assert await client.connect()
        for device in devices:
            for point in device.profile.points:
                value = await read_point(client, point, device.unit_id)
                lo, hi = REALISTIC[point.quantity]
                assert lo <= value <= hi, f"{device.profile.id} {point.name} = {value}"
                assert not point.out_of_range(value)
        client.close()

    with RtuServer(devices) as server:
        asyncio.run(read_all(server.path))


def test_two_units_on_one_line_answer_separately(dtsu_pair: tuple[RtuServer, FakeClock]) -> None:
    server, _ = dtsu_pair
    point = load_profile("chint_dtsu666").point("energy_import")

    async def run() -> tuple[float, float]:
        client = serial_client(server.path)
        await client.connect()
        values = (await read_point(client, point, 1), await read_point(client, point, 2))
        client.close()
        return values

    one, two = asyncio.run(run())
    devices = server.responder.devices
    assert one == pytest.approx(devices[1].value("energy_import"), rel=1e-6)
    assert two == pytest.approx(devices[2].value("energy_import"), rel=1e-6)
    assert one != two


def test_unknown_unit_is_silent_and_the_line_recovers(dtsu_pair: tuple[RtuServer, FakeClock]) -> None:
    server, _ = dtsu_pair
    with serial.Serial(server.path, 9600, timeout=0.2) as port:
        port.write(rtu_frame(9, bytes.fromhex("0320000002")))
        assert port.read(64) == b""
        port.write(b"\x00\xff\x13garbage" + rtu_frame(1, bytes.fromhex("0320000002")))
        reply = port.read(9)
    assert reply[:3] == bytes.fromhex("010304")
    assert reply == rtu_frame(1, reply[1:7])


def test_exception_replies_are_byte_exact(dtsu_pair: tuple[RtuServer, FakeClock]) -> None:
    server, _ = dtsu_pair
    with serial.Serial(server.path, 9600, timeout=0.3) as port:
        port.write(rtu_frame(1, bytes.fromhex("0300000002")))  # below the register map
        assert port.read(5) == rtu_frame(1, bytes.fromhex("8302"))
        port.write(rtu_frame(2, bytes.fromhex("0600060005")))  # write single register
        assert port.read(5) == rtu_frame(2, bytes.fromhex("8601"))
        port.write(rtu_frame(1, bytes.fromhex("0800000000")))  # diagnostics: framed by silence
        assert port.read(5) == rtu_frame(1, bytes.fromhex("8801"))


def test_client_that_gave_up_does_not_block_the_line(dtsu_pair: tuple[RtuServer, FakeClock]) -> None:
    server, _ = dtsu_pair
    request = rtu_frame(1, bytes.fromhex("032000007D"))
    with serial.Serial(server.path, 9600, timeout=0.3) as port:
        for _ in range(100):  # 26 kB of replies nobody reads
            port.write(request)
            time.sleep(0.002)
        port.reset_input_buffer()
        port.write(rtu_frame(1, bytes.fromhex("0320000002")))
        assert port.read(9)[:3] == bytes.fromhex("010304")


def _with_fault(server: RtuServer, fault: Fault | FaultKind) -> tuple[list[bytes], BaseException | None, object]:
    """Read unit 1 with the fault on; returns raw bytes received, the error raised, the reply."""
    received: list[bytes] = []

    def trace(sending: bool, data: bytes) -> bytes:
        if not sending:
            received.append(data)
        return data

    async def run() -> tuple[BaseException | None, object]:
        client = serial_client(server.path, timeout_s=0.25, trace_packet=trace)
        await client.connect()
        try:
            return None, await read_raw(client, 3, 0x2000, 2, 1)
        except ModbusIOException as exc:
            return exc, None
        finally:
            client.close()

    server.responder.devices[1].set_fault(fault)
    error, reply = asyncio.run(run())
    return received, error, reply


def test_no_response_times_out_with_nothing_on_the_wire(dtsu_pair: tuple[RtuServer, FakeClock]) -> None:
    received, error, _ = _with_fault(dtsu_pair[0], FaultKind.NO_RESPONSE)
    assert isinstance(error, ModbusIOException)
    assert b"".join(received) == b""


def test_bad_crc_reaches_the_wire_but_gives_no_valid_reply(dtsu_pair: tuple[RtuServer, FakeClock]) -> None:
    received, error, _ = _with_fault(dtsu_pair[0], FaultKind.BAD_CRC)
    assert isinstance(error, ModbusIOException)
    frame = b"".join(received)
    assert frame[:3] == bytes.fromhex("010304") and len(frame) == 9


def test_exception_fault_returns_its_code(dtsu_pair: tuple[RtuServer, FakeClock]) -> None:
    _, error, reply = _with_fault(dtsu_pair[0], Fault(kind=FaultKind.EXCEPTION, exception_code=6))
    assert error is None
    assert reply.isError() and reply.exception_code == 6  # type: ignore[attr-defined]


def test_data_faults_are_visible_over_the_wire(dtsu_pair: tuple[RtuServer, FakeClock]) -> None:
    server, clock = dtsu_pair
    profile = load_profile("chint_dtsu666")
    energy, voltage = profile.point("energy_import"), profile.point("voltage_a")
    device = server.responder.devices[1]

    async def read(point_name: str) -> float:
        client = serial_client(server.path)
        await client.connect()
        value = await read_point(client, profile.point(point_name), 1)
        client.close()
        return value

    device.set_fault(FaultKind.COUNTER_ROLLOVER)
    assert asyncio.run(read("energy_import")) > 0.999 * (energy.rollover or 0)
    clock.advance(31)
    assert asyncio.run(read("energy_import")) < 1.0
    device.set_fault(FaultKind.METER_REPLACED)
    assert asyncio.run(read("energy_import")) == 0.0
    device.set_fault(FaultKind.STUCK)
    stuck = asyncio.run(read("power_total"))
    clock.advance(60)
    assert asyncio.run(read("power_total")) == stuck
    device.set_fault(FaultKind.REVERSE_FLOW)
    assert asyncio.run(read("power_total")) < 0
    device.set_fault(FaultKind.OUT_OF_RANGE)
    assert voltage.out_of_range(asyncio.run(read("voltage_a")))
    device.set_fault(None)
    assert not voltage.out_of_range(asyncio.run(read("voltage_a")))


def test_wire_timing_of_a_125_register_read_at_9600() -> None:
    timing = LineTiming(9600, "N", 1, device_latency_s=0.02)
    device = SimulatedDevice(load_profile("chint_dtsu666"), 1)
    reads = 4

    async def run(path: str) -> tuple[float, float]:
        client = serial_client(path, timeout_s=1.0)
        await client.connect()
        start = time.perf_counter()
        await client.read_holding_registers(0x2000, count=125, device_id=1)
        first = time.perf_counter() - start
        for _ in range(reads - 1):
            await client.read_holding_registers(0x2000, count=125, device_id=1)
        total = time.perf_counter() - start
        client.close()
        return first, total / reads

    with RtuServer([device], timing) as server:
        first, per_read = asyncio.run(run(server.path))
        lateness = server.line.lateness
    # One read: request + t3.5 + latency + response = 277.6 + 20 ms; back to back the trailing t3.5
    # counts too, as on a real line: 281.3 + 20 ms per read (shared/reference/meters.md).
    assert first == pytest.approx(0.2776 + 0.020, rel=0.15)
    assert per_read == pytest.approx(timing.read_s(3, 125), rel=0.15)
    assert timing.read_s(3, 125) == pytest.approx(0.2813 + 0.020, abs=0.0005)
    assert lateness.count == reads


def test_reply_pacing_jitter_stays_under_half_a_millisecond() -> None:
    device = SimulatedDevice(load_profile("chint_dtsu666"), 1)

    async def run(path: str) -> None:
        client = serial_client(path)
        await client.connect()
        for _ in range(40):
            await client.read_holding_registers(0x2000, count=2, device_id=1)
        client.close()

    with RtuServer([device], LineTiming(115200, device_latency_s=0.003)) as server:
        asyncio.run(run(server.path))
        lateness = server.line.lateness
    assert lateness.count == 40
    assert lateness.percentile_s(50) < 0.0005, sorted(lateness.recent)
