"""One RTU byte stream (a pty, or a TCP socket to a serial converter) served by the devices on a line."""

from __future__ import annotations

import time
from collections.abc import Callable

from firmware_sims.line import Line
from firmware_sims.responder import Responder
from firmware_sims.rtu_frames import RequestHunter, rtu_frame


class RtuLink:
    """Bytes in, paced reply frames out; noise and frames for other units are ignored."""

    def __init__(
        self,
        responder: Responder,
        line: Line,
        write: Callable[[bytes], None],
        before_reply: Callable[[], None] | None = None,
    ) -> None:
        self._responder = responder
        self._line = line
        self._write = write
        self._before_reply = before_reply
        self._hunter = RequestHunter()

    @property
    def pending(self) -> bool:
        """Bytes are waiting that do not form a frame yet; call idle() after line.gap_s of silence."""
        return self._hunter.pending

    def received(self, data: bytes, arrived: float) -> None:
        for unit_id, pdu in self._hunter.feed(data):
            self._handle(unit_id, pdu, arrived)

    def idle(self) -> None:
        frame = self._hunter.idle()
        if frame is not None:
            self._handle(*frame, time.perf_counter())

    def _handle(self, unit_id: int, pdu: bytes, arrived: float) -> None:
        if self._before_reply is not None:
            self._before_reply()
        reply = self._responder.answer(unit_id, pdu)
        request_bytes = len(pdu) + 3
        if reply is None:
            self._line.transmit(arrived, request_bytes, 0, None)
            return
        frame = rtu_frame(unit_id, reply.pdu, reply.corrupt)
        self._line.transmit(arrived, request_bytes, len(frame), lambda: self._write(frame))
