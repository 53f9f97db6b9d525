"""What each physical quantity looks like on a healthy device: nominal values, noise and consumption rates.

Noise is a deterministic function of time (two sines with per-point phases), so a frozen clock gives a
frozen value and a test can reproduce any reading from the seed.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from protocols.profiles import Point, Profile
from protocols.quantities import Quantity

LINE_TO_LINE = re.compile(r"_(ab|bc|ca|l1_?l2|l2_?l3|l3_?l1)$")
"""Voltage point names measured between two phases (380 V) rather than phase to neutral (220 V)."""
PER_PHASE = re.compile(r"_(a|b|c|l1|l2|l3)$")
"""Power and current point names that carry one phase of a three-phase total."""
PHASE_VOLTAGE = 220.0
_STATIC_GAUGES: dict[Quantity, tuple[float, float]] = {
    Quantity.POWER_FACTOR: (0.95, 0.03),
    Quantity.FREQUENCY_HZ: (50.0, 0.05),
    Quantity.PRESSURE_KPA: (300.0, 15.0),
    Quantity.LEVEL_M: (2.5, 0.5),
    Quantity.TEMPERATURE_C: (26.0, 3.0),
    Quantity.HUMIDITY_PCT: (55.0, 10.0),
}
"""Quantity -> (nominal, amplitude of the noise) for gauges that do not follow the load."""
_PUMP_CYCLE_S = 300.0


@dataclass(frozen=True)
class Traits:
    """The customer behind one device: what it draws at the daily peak."""

    peak_kw: float
    peak_m3h: float
    phases: int
    unit_id: int
    cycle_phase: float
    """Where in its on/off cycle the equipment started, in [0, 1)."""

    @classmethod
    def draw(cls, profile: Profile, unit_id: int, rng: random.Random, load_scale: float) -> Traits:
        """A household-sized customer (times load_scale, e.g. the unit count for a building master meter)."""
        currents = sum(1 for p in profile.points if p.quantity is Quantity.CURRENT_A)
        return cls(
            peak_kw=rng.uniform(0.8, 1.6) * load_scale,
            peak_m3h=rng.uniform(0.04, 0.1) * load_scale,
            phases=min(max(currents, 1), 3),
            unit_id=unit_id,
            cycle_phase=rng.random(),
        )

    def counter_rate(self, quantity: Quantity) -> float:
        """Units per full-load hour of a healthy counter; export and reverse totals hold still."""
        if quantity in (Quantity.ENERGY_IMPORT_KWH, Quantity.ENERGY_TOTAL_KWH):
            return self.peak_kw
        if quantity is Quantity.WATER_VOLUME_M3:
            return self.peak_m3h
        return 0.0

    def initial_count(self, quantity: Quantity, rng: random.Random) -> float:
        """A meter that has been in service for a while."""
        if quantity is Quantity.WATER_VOLUME_M3:
            return rng.uniform(50.0, 2000.0)
        if quantity is Quantity.WATER_REVERSE_M3:
            return rng.uniform(0.0, 2.0)
        if quantity is Quantity.ENERGY_EXPORT_KWH:
            return rng.uniform(0.0, 5.0)
        return rng.uniform(500.0, 20_000.0)

    def _power_w(self, point: Point, load: float) -> float:
        total = self.peak_kw * 1000 * load
        return total / self.phases if self.phases > 1 and PER_PHASE.search(point.name) else total

    def gauge(self, point: Point, load: float, wobble: float) -> float:
        """A healthy reading: load is the daily shape factor (0..1], wobble the point's noise in [-1, 1]."""
        q = point.quantity
        if q is Quantity.VOLTAGE_V:
            return (380.0 if LINE_TO_LINE.search(point.name) else PHASE_VOLTAGE) + 4.0 * wobble
        if q is Quantity.CURRENT_A:
            return self.peak_kw * 1000 * load / self.phases / PHASE_VOLTAGE * (1 + 0.1 * wobble)
        if q is Quantity.POWER_W:
            return self._power_w(point, load) * (1 + 0.1 * wobble)
        if q is Quantity.POWER_KW:
            return self._power_w(point, load) / 1000 * (1 + 0.1 * wobble)
        if q is Quantity.FLOW_M3H:
            return self.peak_m3h * load * (1 + 0.2 * wobble)
        if q is Quantity.DEVICE_ADDRESS:
            return float(self.unit_id)
        if q in _STATIC_GAUGES:
            nominal, amplitude = _STATIC_GAUGES[q]
            return nominal + amplitude * wobble
        if point.valid_range is not None:
            return sum(point.valid_range) / 2
        return 0.0

    def state(self, point: Point, t: float, load: float) -> float:
        """Pumps and fans run longer at peak hours; fault flags stay clear when healthy."""
        if point.quantity is Quantity.RUN_STATE:
            position = (t / _PUMP_CYCLE_S + self.cycle_phase) % 1.0
            return 1.0 if position < 0.2 + 0.7 * load else 0.0
        if point.quantity is Quantity.DEVICE_ADDRESS:
            return float(self.unit_id)
        return 0.0


@dataclass(frozen=True)
class Wobble:
    """Smooth, seeded noise in [-1, 1] as a function of time."""

    phase_slow: float
    phase_fast: float

    @classmethod
    def draw(cls, rng: random.Random) -> Wobble:
        return cls(rng.uniform(0, math.tau), rng.uniform(0, math.tau))

    def __call__(self, t: float) -> float:
        return 0.6 * math.sin(math.tau * t / 97.0 + self.phase_slow) + 0.4 * math.sin(
            math.tau * t / 13.0 + self.phase_fast
        )
