"""The loop that feeds the evaluator: a pass right after ingest commits in this process (``wake``), a cheap
"anything new?" poll every ``poll_s`` for what other hub processes ingest, and the clock-driven rules every
``clock_s``."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from cloud.alarms.evaluator import Evaluator
from cloud.notify.live import Wakeup

log = logging.getLogger(__name__)

POLL_S = 0.2
CLOCK_S = 30.0
ERROR_WAIT_S = 2.0


class AlarmWorker:
    def __init__(self, engine: Engine, *, poll_s: float = POLL_S, clock_s: float = CLOCK_S) -> None:
        self.evaluator = Evaluator(engine)
        self._wakeup = Wakeup()
        self._poll_s, self._clock_s = poll_s, clock_s

    def wake(self) -> None:
        """Something was stored: evaluate now (ingest calls this after each commit)."""
        self._wakeup.set()

    def run(self, stop: threading.Event) -> None:
        """Evaluate until ``stop`` is set."""
        next_clock = 0.0
        woken = True
        while not stop.is_set():
            seen = self._wakeup.generation
            try:
                clock_due = time.monotonic() >= next_clock
                if woken or clock_due or self.evaluator.pending():
                    result = self.evaluator.run_once(clock_checks=clock_due)
                    if clock_due and result.ran:
                        next_clock = time.monotonic() + self._clock_s
            except Exception:
                log.exception("alarms: evaluation failed; retrying in %.0f s", ERROR_WAIT_S)
                stop.wait(ERROR_WAIT_S)
            woken = self._wakeup.wait_after(seen, self._poll_s)
