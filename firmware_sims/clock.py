"""Where simulated devices get the time from, so tests can run a day of meter readings in a millisecond."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Returns wall-clock seconds since the epoch; the time of day drives the load shape."""

system_clock: Clock = time.time


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
