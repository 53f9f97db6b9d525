"""Modbus RTU slaves on a pseudo-terminal: the edge opens `path` as it would open /dev/ttyUSB0.

Several devices share the line (one unit id each). The server keeps the pty's slave side open itself,
so clients may come and go without the line breaking, and runs in its own thread so that precise reply
pacing does not depend on anyone's event loop.
"""

from __future__ import annotations

import logging
import os
import select
import termios
import threading
import time
import tty
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from firmware_sims.device import SimulatedDevice
from firmware_sims.line import Line
from firmware_sims.responder import Responder
from firmware_sims.rtu_link import RtuLink
from protocols.modbus.wire import LineTiming

log = logging.getLogger(__name__)


def open_raw_pty(link: Path | None) -> tuple[int, int, str]:
    """A pty pair in raw mode (no echo, no newline translation); returns master, slave and the path to use."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    if link is not None:
        link.unlink(missing_ok=True)
        link.symlink_to(path)
        path = str(link)
    return master, slave, path


class RtuServer:
    """One RS-485 line with its devices, reachable through a pty."""

    def __init__(
        self,
        devices: Iterable[SimulatedDevice],
        timing: LineTiming | None = None,
        link: Path | None = None,
        name: str = "rtu",
    ) -> None:
        self.name = name
        self.responder = Responder(devices)
        self.line = Line(timing)
        self._link = link
        self._thread: threading.Thread | None = None
        self.path = ""

    def start(self) -> RtuServer:
        self._master, self._slave, self.path = open_raw_pty(self._link)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=f"sim-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        os.write(self._wake_w, b"\0")
        self._thread.join()
        self._thread = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)
        if self._link is not None:
            self._link.unlink(missing_ok=True)

    def __enter__(self) -> RtuServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _write(self, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            view = view[os.write(self._master, view) :]

    def _drop_unread(self) -> None:
        """Replies a client never read (it gave up) would fill the pty and block the line."""
        termios.tcflush(self._slave, termios.TCIFLUSH)

    def _serve(self) -> None:
        link = RtuLink(self.responder, self.line, self._write, self._drop_unread)
        while True:
            timeout = self.line.gap_s if link.pending else None
            ready, _, _ = select.select([self._master, self._wake_r], [], [], timeout)
            if self._wake_r in ready:
                return
            try:
                if not ready:
                    link.idle()
                else:
                    link.received(os.read(self._master, 4096), time.perf_counter())
            except Exception:
                log.exception("%s: request handling failed; the line keeps running", self.name)
