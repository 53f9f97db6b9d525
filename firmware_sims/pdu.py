"""Modbus PDUs as a slave sees them: read requests in, register/bit replies or exceptions out.

Checks follow the order of the Modbus application protocol: function code (exception 1), then quantity
(3), then address (2, done by the device), then execution (4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocols.modbus.wire import BIT_FUNCTIONS, max_count

READ_FUNCTIONS = (1, 2, 3, 4)
ILLEGAL_FUNCTION = 1
ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3
SERVER_DEVICE_FAILURE = 4


class ModbusError(Exception):
    """A request the slave answers with an exception reply."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"exception {code}: {reason}" if reason else f"exception {code}")
        self.code = code


@dataclass(frozen=True)
class ReadRequest:
    function: int
    address: int
    count: int


def parse_request(pdu: bytes) -> ReadRequest:
    """A read request; anything else (writes, diagnostics) is refused as an illegal function."""
    function = pdu[0]
    if function not in READ_FUNCTIONS:
        raise ModbusError(ILLEGAL_FUNCTION, f"function {function} is not supported")
    if len(pdu) != 5:
        raise ModbusError(ILLEGAL_DATA_VALUE, f"read request of {len(pdu)} bytes, expected 5")
    address, count = struct.unpack(">HH", pdu[1:])
    if not 1 <= count <= max_count(function):
        raise ModbusError(ILLEGAL_DATA_VALUE, f"count {count} outside 1..{max_count(function)}")
    if address + count > 0x10000:
        raise ModbusError(ILLEGAL_DATA_ADDRESS, f"address {address} + count {count} runs past 65535")
    return ReadRequest(function, address, count)


def read_response(function: int, values: list[int]) -> bytes:
    """Registers big-endian; bits packed LSB first, eight to a byte."""
    if function in BIT_FUNCTIONS:
        data = bytearray((len(values) + 7) // 8)
        for i, bit in enumerate(values):
            if bit:
                data[i // 8] |= 1 << (i % 8)
        payload = bytes(data)
    else:
        payload = struct.pack(f">{len(values)}H", *values)
    return bytes((function, len(payload))) + payload


def exception_response(function: int, code: int) -> bytes:
    return bytes((function | 0x80, code))
