"""Modbus TCP and RTU-over-TCP slaves, read with the real pymodbus TCP client."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest
from pymodbus.exceptions import ModbusIOException
from sim_helpers import REALISTIC, every_profile_and_variant, read_point, read_raw, tcp_client

from firmware_sims.device import SimulatedDevice
from firmware_sims.faults import FaultKind
from firmware_sims.rtu_frames import rtu_frame
from firmware_sims.tcp_server import Framing, TcpServer
from protocols.modbus.wire import LineTiming
from protocols.profiles import load_profile


@pytest.mark.parametrize("framing", ["mbap", "rtu"])
def test_every_profile_reads_realistic_values_over_tcp(framing: Framing) -> None:
    devices = [SimulatedDevice(p, unit, seed=unit) for unit, p in enumerate(every_profile_and_variant(), start=1)]

    async def read_all(port: int) -> None:
        client = tcp_client(port, rtu=framing == "rtu")
        assert await client.connect()
        for device in devices:
            for point in device.profile.points:
                value = await read_point(client, point, device.unit_id)
                lo, hi = REALISTIC[point.quantity]
                assert lo <= value <= hi, f"{device.profile.id} {point.name} = {value}"
        client.close()

    with TcpServer(devices, framing) as server:
        assert server.port > 0
        asyncio.run(read_all(server.port))


def test_mbap_reply_is_byte_exact_and_garbage_closes_only_that_connection() -> None:
    device = SimulatedDevice(load_profile("chint_dtsu666"), 3)
    with TcpServer([device]) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=1) as sock:
            sock.sendall(struct.pack(">HHHB", 0x1234, 0, 6, 3) + bytes.fromhex("0300000002"))
            assert sock.recv(64) == struct.pack(">HHHB", 0x1234, 0, 3, 3) + bytes.fromhex("8302")
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert sock.recv(64) == b""
        with socket.create_connection(("127.0.0.1", server.port), timeout=1) as sock:
            sock.sendall(struct.pack(">HHHB", 7, 0, 6, 3) + bytes.fromhex("0320060002"))
            assert sock.recv(64)[:9] == struct.pack(">HHHB", 7, 0, 7, 3) + bytes.fromhex("0304")


def test_unknown_unit_and_no_response_time_out_over_tcp() -> None:
    device = SimulatedDevice(load_profile("chint_dtsu666"), 3)

    async def read(unit: int) -> None:
        client = tcp_client(server.port, timeout_s=0.2)
        await client.connect()
        try:
            await read_raw(client, 3, 0x2000, 2, unit)
        finally:
            client.close()

    with TcpServer([device]) as server:
        with pytest.raises(ModbusIOException):
            asyncio.run(read(9))
        device.set_fault(FaultKind.NO_RESPONSE)
        with pytest.raises(ModbusIOException):
            asyncio.run(read(3))
        device.set_fault(None)
        asyncio.run(read(3))


def test_rtu_over_tcp_forwards_a_corrupt_frame() -> None:
    device = SimulatedDevice(load_profile("chint_dtsu666"), 3)
    device.set_fault(FaultKind.BAD_CRC)
    with TcpServer([device], "rtu") as server, socket.create_connection(("127.0.0.1", server.port), timeout=1) as sock:
        sock.sendall(rtu_frame(3, bytes.fromhex("0320060002")))
        reply = sock.recv(64)
    assert reply[:3] == bytes.fromhex("030304") and len(reply) == 9
    assert reply != rtu_frame(3, reply[1:7])


def test_connections_share_one_timed_line() -> None:
    """Two masters on a gateway wait for each other, as they would on its serial line."""
    timing = LineTiming(9600, device_latency_s=0.01)
    device = SimulatedDevice(load_profile("chint_dtsu666"), 1)

    async def one_master(port: int) -> None:
        client = tcp_client(port, timeout_s=2.0)
        await client.connect()
        for _ in range(3):
            await client.read_holding_registers(0x2000, count=60, device_id=1)
        client.close()

    async def two_masters(port: int) -> float:
        start = time.perf_counter()
        await asyncio.gather(one_master(port), one_master(port))
        return time.perf_counter() - start

    with TcpServer([device], "mbap", timing) as server:
        elapsed = asyncio.run(two_masters(server.port))
    assert elapsed == pytest.approx(6 * timing.read_s(3, 60), rel=0.15)
