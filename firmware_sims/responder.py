"""The devices sharing one line: turn a request PDU for a unit id into the reply that unit would send."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from firmware_sims.device import SimulatedDevice
from firmware_sims.faults import FaultKind
from firmware_sims.pdu import ModbusError, exception_response, parse_request, read_response


@dataclass(frozen=True)
class Reply:
    pdu: bytes
    corrupt: bool = False
    """Send with a broken checksum (bad_crc fault)."""


class Responder:
    """Unit id -> device; unknown units (and broadcasts) get no reply, as on a real bus."""

    def __init__(self, devices: Iterable[SimulatedDevice]) -> None:
        self.devices: dict[int, SimulatedDevice] = {}
        for device in devices:
            other = self.devices.setdefault(device.unit_id, device)
            if other is not device:
                raise ValueError(f"unit id {device.unit_id} is used by both {other.name} and {device.name}")

    def answer(self, unit_id: int, pdu: bytes) -> Reply | None:
        device = self.devices.get(unit_id)
        if device is None or not pdu:
            return None
        fault = device.fault
        kind = fault.kind if fault is not None else None
        if kind is FaultKind.NO_RESPONSE:
            return None
        try:
            request = parse_request(pdu)
            reply = read_response(request.function, device.read(request.function, request.address, request.count))
        except ModbusError as exc:
            reply = exception_response(pdu[0], exc.code)
        return Reply(reply, corrupt=kind is FaultKind.BAD_CRC)
