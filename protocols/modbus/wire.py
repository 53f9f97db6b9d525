"""Modbus RTU wire-time model: what a serial bus physically costs per request.

Used by the read planner (to choose requests), the simulators (to delay replies as a real line would)
and the benchmarks (to state the physical minimum of a poll cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Parity = Literal["N", "E", "O"]
READ_REQUEST_BYTES = 8
"""unit, function, address (2), count (2), CRC (2)."""
MAX_REGISTERS = 125
MAX_BITS = 2000
BIT_FUNCTIONS = (1, 2)


def response_bytes(function: int, count: int) -> int:
    """unit, function, byte count, data, CRC (2)."""
    data = (count + 7) // 8 if function in BIT_FUNCTIONS else 2 * count
    return 5 + data


def max_count(function: int) -> int:
    return MAX_BITS if function in BIT_FUNCTIONS else MAX_REGISTERS


@dataclass(frozen=True)
class LineTiming:
    """Timing of one serial line, plus the response latency its devices add."""

    baudrate: int = 9600
    parity: Parity = "N"
    stopbits: int = 1
    device_latency_s: float = 0.0

    @property
    def bits_per_char(self) -> int:
        return 1 + 8 + (0 if self.parity == "N" else 1) + self.stopbits

    @property
    def char_s(self) -> float:
        return self.bits_per_char / self.baudrate

    @property
    def t35_s(self) -> float:
        """Inter-frame silence; the spec fixes it at 1.75 ms above 19200 baud."""
        return 0.00175 if self.baudrate > 19200 else 3.5 * self.char_s

    def frame_s(self, nbytes: int) -> float:
        return nbytes * self.char_s

    def read_s(self, function: int, count: int) -> float:
        """One read transaction: request, silence, device latency, response, silence."""
        wire_bytes = READ_REQUEST_BYTES + response_bytes(function, count)
        return self.frame_s(wire_bytes) + 2 * self.t35_s + self.device_latency_s
