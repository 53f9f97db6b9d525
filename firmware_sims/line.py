"""Wire-time emulation: a reply leaves only when a real serial line would have delivered it.

A pty or a socket moves bytes instantly, so the simulator delays each reply to
``start + (request + response bytes) x character + t3.5 + device latency``, where ``start`` is when the
request arrived or, if later, when the previous transaction's trailing t3.5 silence ended: the master
cannot get a transaction done faster than the line allows (see LineTiming.read_s).

Sleeping is a coarse ``time.sleep`` then a short spin on ``perf_counter`` that yields the GIL, because a
plain sleep overshoots by up to a millisecond or more on a loaded box.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from protocols.modbus.wire import LineTiming

SPIN_S = 0.002
"""The last part of a wait is spun rather than slept."""
UNTIMED_GAP_S = 0.002
"""Silence that ends an unsized frame when no line timing is emulated."""
RECENT_SAMPLES = 10_000


def sleep_until(deadline: float) -> None:
    """Sleep until time.perf_counter() reaches deadline."""
    while (remaining := deadline - time.perf_counter()) > 0:
        time.sleep(remaining - SPIN_S if remaining > SPIN_S else 0)


@dataclass
class Lateness:
    """How late replies went out against their wire-time deadline: the emulation's own error."""

    count: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_SAMPLES))

    def add(self, late_s: float) -> None:
        self.count += 1
        self.total_s += late_s
        self.max_s = max(self.max_s, late_s)
        self.recent.append(late_s)

    @property
    def mean_s(self) -> float:
        return self.total_s / self.count if self.count else 0.0

    def percentile_s(self, q: float) -> float:
        """Of the recent samples; q in [0, 100]."""
        if not self.recent:
            return 0.0
        ordered = sorted(self.recent)
        return ordered[min(int(len(ordered) * q / 100), len(ordered) - 1)]


class Line:
    """One physical medium shared by every connection to it: transactions take turns and take time."""

    def __init__(self, timing: LineTiming | None = None) -> None:
        self.timing = timing
        self.lateness = Lateness()
        self._free_at = 0.0
        self._lock = threading.Lock()

    @property
    def gap_s(self) -> float:
        return self.timing.t35_s if self.timing is not None else UNTIMED_GAP_S

    def transmit(
        self, arrived: float, request_bytes: int, response_bytes: int, send: Callable[[], None] | None
    ) -> None:
        """Run one transaction whose request arrived at perf_counter time `arrived`; send None means silence."""
        with self._lock:
            timing = self.timing
            if timing is None:
                if send is not None:
                    send()
                return
            start = max(arrived, self._free_at)
            if send is None:
                self._free_at = start + timing.frame_s(request_bytes) + timing.t35_s
                return
            deadline = start + timing.frame_s(request_bytes + response_bytes) + timing.t35_s + timing.device_latency_s
            sleep_until(deadline)
            send()
            self.lateness.add(time.perf_counter() - deadline)
            self._free_at = deadline + timing.t35_s
