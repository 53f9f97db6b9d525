"""Per-device link health and the circuit breaker that keeps a dead device from stalling its bus."""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.messages import LinkHealth


@dataclass
class Breaker:
    """Closed while a device answers; after a failure it opens for a backoff window that doubles each time.

    While open, polls are skipped, so a dead meter costs at most one timeout per window.
    """

    initial_s: float
    max_s: float
    retry_at: float = 0.0
    _next_backoff: float = field(default=0.0)

    def allows(self, now: float) -> bool:
        return now >= self.retry_at

    @property
    def open(self) -> bool:
        return self._next_backoff > 0

    def trip(self, now: float) -> float:
        """Open (or re-open) the breaker; returns the window length."""
        window = self._next_backoff or self.initial_s
        self.retry_at = now + window
        self._next_backoff = min(window * 2, self.max_s)
        return window

    def reset(self) -> None:
        self.retry_at = 0.0
        self._next_backoff = 0.0


@dataclass
class DeviceHealth:
    polls: int = 0
    good_reads: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    exceptions: int = 0
    link_down: int = 0
    skipped_in_backoff: int = 0
    consecutive_failures: int = 0
    last_good_ts: float | None = None
    last_error: str = ""
    latency_ms_last: float | None = None
    latency_ms_avg: float | None = None

    def record_ok(self, now: float, latency_s: float) -> None:
        self.good_reads += 1
        self.consecutive_failures = 0
        self.last_good_ts = now
        ms = latency_s * 1000
        self.latency_ms_last = round(ms, 2)
        self.latency_ms_avg = round(ms if self.latency_ms_avg is None else 0.9 * self.latency_ms_avg + 0.1 * ms, 2)

    def record_error(self, kind: str, message: str) -> None:
        counter = {
            "timeout": "timeouts",
            "crc_error": "crc_errors",
            "exception": "exceptions",
            "link_down": "link_down",
        }[kind]
        setattr(self, counter, getattr(self, counter) + 1)
        self.consecutive_failures += 1
        self.last_error = message

    def as_link(self, ok: bool) -> LinkHealth:
        """The upstream view of this device's link, for the edge's status message."""
        return LinkHealth(
            ok=ok,
            good_reads=self.good_reads,
            timeouts=self.timeouts,
            crc_errors=self.crc_errors,
            exceptions=self.exceptions,
            skipped_in_backoff=self.skipped_in_backoff,
            last_good_ts=None if self.last_good_ts is None else int(self.last_good_ts * 1000),
            latency_ms_avg=self.latency_ms_avg,
            last_error=self.last_error,
        )
