"""The hub's background loops: one pass of work every interval on a daemon thread.

Every worker is safe to run on each hub replica: a pass claims its work with database locks or unique keys.
A pass that fails (a lost connection, a deadlock victim) has committed what it finished and rolled back the
rest, so the loop logs it and tries again at the next interval instead of dying.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class PeriodicWorker(ABC):
    name = "worker"
    """The thread's name, and how the logs call the worker."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def run_once(self) -> object:
        """One pass; what it returns is logged at debug level."""

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                log.debug("%s: %s", self.name, self.run_once())
            except Exception as exc:  # see the module docstring: the next pass retries
                log.warning("%s pass failed, retrying in %.0fs: %s", self.name, self._interval_s, exc)
            if self._stop.wait(self._interval_s):
                return
