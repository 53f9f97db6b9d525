"""A serial QR/barcode scanner at a patrol checkpoint: each scan arrives as one line, ``code\\r\\n``.

Like a real scanner it does not wait for anyone: with no reader attached and the pty buffer full, scans
are lost (and logged), never queued without bound.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from types import TracebackType

from firmware_sims.rtu_server import open_raw_pty

log = logging.getLogger(__name__)


class SimulatedScanner:
    def __init__(self, name: str = "scanner", link: Path | None = None) -> None:
        self.name = name
        self._link = link
        self._fds: tuple[int, int] | None = None
        self.path = ""

    def start(self) -> SimulatedScanner:
        master, slave, self.path = open_raw_pty(self._link)
        fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._fds = (master, slave)
        return self

    def stop(self) -> None:
        if self._fds is None:
            return
        for fd in self._fds:
            os.close(fd)
        self._fds = None
        if self._link is not None:
            self._link.unlink(missing_ok=True)

    def __enter__(self) -> SimulatedScanner:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def scan(self, code: str) -> bool:
        """Send one scanned code; False if it was lost because nobody is reading."""
        if self._fds is None:
            raise RuntimeError(f"scanner {self.name} is not started")
        if any(c in code for c in "\r\n"):
            raise ValueError(f"a scanned code is one line, got {code!r}")
        try:
            os.write(self._fds[0], code.encode() + b"\r\n")
        except BlockingIOError:
            log.warning("%s: buffer full, scan %r lost", self.name, code)
            return False
        return True
