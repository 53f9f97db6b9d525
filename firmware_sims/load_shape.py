"""Daily load shape of a residential building: low at night, peaks in the morning and evening.

Counters are computed from elapsed time rather than ticked, so the shape is piecewise linear between
hourly knots and its integral is exact: a counter read at any two instants advanced by exactly the energy
(or water) the shape says, whatever the polling pattern or clock jumps.
"""

from __future__ import annotations

from itertools import accumulate, pairwise

SECONDS_PER_DAY = 86_400
RESIDENTIAL: tuple[float, ...] = (
    0.15, 0.12, 0.10, 0.10, 0.10, 0.15, 0.35, 0.70, 0.60, 0.40, 0.35, 0.40,
    0.50, 0.40, 0.35, 0.35, 0.40, 0.60, 0.85, 1.00, 0.95, 0.75, 0.50, 0.30,
)  # fmt: skip
"""Fraction of peak demand at each hour of the day (local time)."""


class DailyShape:
    """Fraction of peak load over the day, and its exact integral in full-load hours."""

    def __init__(self, hourly: tuple[float, ...] = RESIDENTIAL, utc_offset_s: float = 0.0) -> None:
        if len(hourly) != 24 or min(hourly) <= 0:
            raise ValueError("a daily shape needs 24 hourly factors, all above 0 (counters must keep advancing)")
        self._knots = (*hourly, hourly[0])
        self._cumulative = tuple(accumulate(((a + b) / 2 for a, b in pairwise(self._knots)), initial=0.0))
        self._utc_offset_s = utc_offset_s

    def _split(self, t: float) -> tuple[float, int, float]:
        """Whole local days, hour index and fraction of that hour at epoch time t."""
        local = t + self._utc_offset_s
        days, second_of_day = divmod(local, SECONDS_PER_DAY)
        hour, frac = divmod(second_of_day / 3600, 1.0)
        return days, int(hour), frac

    def factor(self, t: float) -> float:
        _, hour, frac = self._split(t)
        a, b = self._knots[hour], self._knots[hour + 1]
        return a + (b - a) * frac

    def _integral(self, t: float) -> float:
        days, hour, frac = self._split(t)
        a, b = self._knots[hour], self._knots[hour + 1]
        return days * self._cumulative[24] + self._cumulative[hour] + a * frac + (b - a) * frac * frac / 2

    def full_load_hours(self, t0: float, t1: float) -> float:
        """Hours at peak load equivalent to running the shape from t0 to t1."""
        return self._integral(t1) - self._integral(t0)
