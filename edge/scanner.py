"""Patrol checkpoint scanners on a serial line: each scanned line becomes a patrol_scan event.

Serial reads block, so each scanner gets a thread; the outbox is thread-safe and commits each scan
before it counts, so a scan made during a broker outage is kept and delivered later with its own time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from edge.config import ScannerConfig
from protocols.messages import EventType

log = logging.getLogger(__name__)
MAX_CODE_LENGTH = 512


class ScannerReader:
    def __init__(self, config: ScannerConfig, commit: Callable[[list[dict[str, Any]]], object]) -> None:
        self.config = config
        self._commit = commit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"scanner-{config.name}", daemon=True)
        self.scans = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        retry_s = 1.0
        while not self._stop.is_set():
            try:
                with serial.Serial(self.config.port, self.config.baudrate, timeout=0.2) as port:
                    retry_s = 1.0
                    self._read_lines(port)
            except (serial.SerialException, OSError) as exc:
                log.warning("scanner %s: %s; retrying in %.0fs", self.config.name, exc, retry_s)
                self._stop.wait(retry_s)
                retry_s = min(retry_s * 2, 30.0)

    def _read_lines(self, port: serial.Serial) -> None:
        buffer = b""
        while not self._stop.is_set():
            buffer += port.read(256)
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._scanned(line.strip(b"\r\x00 "))
            if len(buffer) > MAX_CODE_LENGTH:
                log.warning("scanner %s: discarding %d bytes without a line end", self.config.name, len(buffer))
                buffer = b""

    def _scanned(self, raw: bytes) -> None:
        if not raw:
            return
        code = raw.decode("utf-8", errors="replace")
        self._commit(
            [
                {
                    "kind": "event",
                    "ts": int(time.time() * 1000),
                    "type": EventType.PATROL_SCAN.value,
                    "device": self.config.name,
                    "message": f"scan at {self.config.checkpoint}",
                    "data": {"checkpoint": self.config.checkpoint, "code": code, "scanner": self.config.name},
                }
            ]
        )
        self.scans += 1
