"""Reading simulated devices the way the edge does: with the real pymodbus clients over real links."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from protocols.profiles import Point, Profile, available_profiles, load_profile
from protocols.quantities import Quantity

REALISTIC: dict[Quantity, tuple[float, float]] = {
    Quantity.VOLTAGE_V: (200, 400),
    Quantity.CURRENT_A: (0, 200),
    Quantity.POWER_W: (0, 100_000),
    Quantity.POWER_KW: (0, 100),
    Quantity.POWER_FACTOR: (0.85, 1.0),
    Quantity.FREQUENCY_HZ: (49.8, 50.2),
    Quantity.ENERGY_IMPORT_KWH: (100, 1_000_000),
    Quantity.ENERGY_TOTAL_KWH: (100, 1_000_000),
    Quantity.ENERGY_EXPORT_KWH: (0, 10),
    Quantity.WATER_VOLUME_M3: (10, 100_000),
    Quantity.WATER_REVERSE_M3: (0, 10),
    Quantity.FLOW_M3H: (0, 20),
    Quantity.PRESSURE_KPA: (250, 350),
    Quantity.LEVEL_M: (1.5, 3.5),
    Quantity.TEMPERATURE_C: (15, 35),
    Quantity.HUMIDITY_PCT: (30, 80),
    Quantity.RUN_STATE: (0, 1),
    Quantity.FAULT_STATE: (0, 0),
    Quantity.DEVICE_ADDRESS: (1, 247),
}
"""What a healthy household meter or plant-room sensor reads."""


def every_profile_and_variant() -> list[Profile]:
    profiles = []
    for profile_id in available_profiles():
        base = load_profile(profile_id)
        profiles += [base] + [load_profile(profile_id, v) for v in base.variants]
    return profiles


def serial_client(path: str, timeout_s: float = 0.3, **kwargs: Any) -> AsyncModbusSerialClient:
    return AsyncModbusSerialClient(path, baudrate=9600, timeout=timeout_s, retries=0, **kwargs)


def tcp_client(port: int, rtu: bool = False, timeout_s: float = 0.3, **kwargs: Any) -> AsyncModbusTcpClient:
    framer = FramerType.RTU if rtu else FramerType.SOCKET
    return AsyncModbusTcpClient("127.0.0.1", port=port, framer=framer, timeout=timeout_s, retries=0, **kwargs)


async def read_raw(
    client: AsyncModbusSerialClient | AsyncModbusTcpClient, function: int, address: int, count: int, device_id: int
) -> ModbusPDU:
    calls: dict[int, Callable[..., Any]] = {
        1: client.read_coils,
        2: client.read_discrete_inputs,
        3: client.read_holding_registers,
        4: client.read_input_registers,
    }
    reply: ModbusPDU = await calls[function](address, count=count, device_id=device_id)
    return reply


async def read_point(client: AsyncModbusSerialClient | AsyncModbusTcpClient, point: Point, device_id: int) -> float:
    reply = await read_raw(client, point.function, point.address, point.register_count, device_id)
    assert not reply.isError(), f"{point.name}: {reply}"
    if point.function in (1, 2):
        return float(reply.bits[0])
    return point.decode(list(reply.registers))
