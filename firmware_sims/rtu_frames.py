"""Modbus RTU framing on the slave side: CRC, and finding request frames in a noisy byte stream.

A slave cannot trust silence on a pty or a TCP socket, so frames are found by length (known from the
function code) and CRC validity at any offset; bytes before a valid frame are noise and dropped. Frames
of functions whose length cannot be known are taken when the line goes quiet.
"""

from __future__ import annotations

from pymodbus.framer.rtu import FramerRTU

MIN_FRAME = 4
"""unit, function, CRC (2)."""
MAX_BUFFER = 512
_FIXED_LENGTH_FUNCTIONS = (1, 2, 3, 4, 5, 6)
_WRITE_MULTIPLE_FUNCTIONS = (15, 16)
"""unit, function, address (2), quantity (2), byte count, data, CRC (2)."""


def crc16(data: bytes) -> bytes:
    """The two CRC bytes as sent on the wire (low byte first)."""
    return FramerRTU.compute_CRC(data).to_bytes(2, "big")


def rtu_frame(unit_id: int, pdu: bytes, corrupt: bool = False) -> bytes:
    frame = bytes((unit_id,)) + pdu
    crc = crc16(frame)
    if corrupt:
        crc = bytes((crc[0] ^ 0xFF, crc[1]))
    return frame + crc


def _request_length(buf: bytearray, start: int) -> int | None:
    """Length of a request frame starting at `start`, or None when it cannot be known (yet)."""
    function = buf[start + 1]
    if function in _FIXED_LENGTH_FUNCTIONS:
        return 8
    if function in _WRITE_MULTIPLE_FUNCTIONS and start + 6 < len(buf):
        return 9 + buf[start + 6]
    return None


class RequestHunter:
    """Feed received bytes in, get (unit id, PDU) of each complete request with a valid CRC out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        if len(self._buf) > MAX_BUFFER:
            del self._buf[: len(self._buf) - MAX_BUFFER]
        return frames

    def idle(self) -> tuple[int, bytes] | None:
        """The line went quiet: what is left is one frame of a function we cannot size, or noise."""
        frame = bytes(self._buf)
        self._buf.clear()
        if len(frame) >= MIN_FRAME and crc16(frame[:-2]) == frame[-2:]:
            return frame[0], frame[1:-2]
        return None

    def _next(self) -> tuple[int, bytes] | None:
        buf = self._buf
        for start in range(len(buf) - MIN_FRAME + 1):
            length = _request_length(buf, start)
            if length is None or start + length > len(buf):
                continue
            frame = bytes(buf[start : start + length])
            if crc16(frame[:-2]) == frame[-2:]:
                del buf[: start + length]
                return frame[0], frame[1:-2]
        return None
