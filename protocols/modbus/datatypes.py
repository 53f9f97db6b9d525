"""Register <-> value conversion for every data type and word order a profile can name.

Word orders name the four bytes of a 32-bit value as they appear on the wire, A being the most
significant: ABCD is plain big-endian, CDAB swaps the 16-bit words, BADC swaps the bytes inside each
word, DCBA does both. For 64-bit values the same two swaps apply to four words.
"""

from __future__ import annotations

import math
import struct
from enum import StrEnum


class DataType(StrEnum):
    BIT = "bit"
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    U64 = "u64"
    F32 = "f32"
    F64 = "f64"
    TUF2000_TOTAL = "tuf2000_total"
    """TUF-2000 totaliser: i32 integer part, low word first, then an f32 fraction in the point's order."""


class WordOrder(StrEnum):
    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


REGISTER_COUNT: dict[DataType, int] = {
    DataType.BIT: 1,
    DataType.U16: 1,
    DataType.I16: 1,
    DataType.U32: 2,
    DataType.I32: 2,
    DataType.F32: 2,
    DataType.U64: 4,
    DataType.F64: 4,
    DataType.TUF2000_TOTAL: 4,
}
_STRUCT = {
    DataType.U16: "H",
    DataType.I16: "h",
    DataType.U32: "I",
    DataType.I32: "i",
    DataType.F32: "f",
    DataType.U64: "Q",
    DataType.F64: "d",
}


def _to_wire(words: list[int], order: WordOrder) -> list[int]:
    """Map big-endian words (ABCD) to the device's order; the mapping is its own inverse."""
    if order in (WordOrder.CDAB, WordOrder.DCBA):
        words = words[::-1]
    if order in (WordOrder.BADC, WordOrder.DCBA):
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words


def _check_registers(registers: list[int], count: int) -> None:
    if len(registers) != count:
        raise ValueError(f"expected {count} registers, got {len(registers)}")
    for r in registers:
        if not 0 <= r <= 0xFFFF:
            raise ValueError(f"register value {r} is not a 16-bit word")


def decode_raw(data_type: DataType, order: WordOrder, registers: list[int]) -> float | int:
    """Raw number (before scale and offset) from the registers as read off the wire."""
    _check_registers(registers, REGISTER_COUNT[data_type])
    if data_type is DataType.BIT:
        return 1 if registers[0] else 0
    if data_type is DataType.TUF2000_TOTAL:
        integer = decode_raw(DataType.I32, WordOrder.CDAB, registers[:2])
        fraction = decode_raw(DataType.F32, order, registers[2:])
        return integer + fraction
    words = _to_wire(list(registers), order)
    fmt = _STRUCT[data_type]
    return struct.unpack(">" + fmt, struct.pack(f">{len(words)}H", *words))[0]


def encode_raw(data_type: DataType, order: WordOrder, raw: float | int) -> list[int]:
    """Registers a device would hold for a raw number; used by the simulators and test vectors."""
    if data_type is DataType.BIT:
        return [1 if raw else 0]
    if data_type is DataType.TUF2000_TOTAL:
        integer = math.floor(raw)
        return encode_raw(DataType.I32, WordOrder.CDAB, integer) + encode_raw(DataType.F32, order, raw - integer)
    fmt = _STRUCT[data_type]
    value = raw if fmt in "fd" else int(round(raw))
    packed = struct.pack(">" + fmt, value)
    words = list(struct.unpack(f">{len(packed) // 2}H", packed))
    return _to_wire(words, order)
