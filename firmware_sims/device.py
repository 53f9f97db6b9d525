"""A simulated Modbus device: register values computed on read from its profile, a clock and its faults.

Nothing ticks in the background: every read evaluates the device at the clock's current time, so a test
with a fake clock can jump a day ahead and still get exactly the energy the load shape says.
Faults change the device at precise instants: a scheduled fault window takes effect at its start time
even if the device is first read long after.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
from dataclasses import dataclass, field

from firmware_sims.clock import Clock, system_clock
from firmware_sims.faults import Fault, FaultKind
from firmware_sims.load_shape import DailyShape
from firmware_sims.pdu import ILLEGAL_DATA_ADDRESS, ModbusError
from firmware_sims.signals import Traits, Wobble
from protocols.modbus.datatypes import DataType, encode_raw
from protocols.profiles import Point, Profile
from protocols.quantities import PointKind, Quantity

_RAW_LIMITS: dict[DataType, tuple[float, float]] = {
    DataType.BIT: (0, 1),
    DataType.U16: (0, 0xFFFF),
    DataType.I16: (-0x8000, 0x7FFF),
    DataType.U32: (0, 0xFFFF_FFFF),
    DataType.I32: (-0x8000_0000, 0x7FFF_FFFF),
    DataType.U64: (0, 0xFFFF_FFFF_FFFF_FFFF),
    DataType.TUF2000_TOTAL: (-0x8000_0000, 0x7FFF_FFFF),
}
_SIGNED_FLOWS = {Quantity.FLOW_M3H, Quantity.POWER_W, Quantity.POWER_KW}


@dataclass
class _Counter:
    """A cumulative register: base at `since`, advancing at `rate` units per full-load hour."""

    point: Point
    nominal_rate: float
    base: float
    since: float
    rate: float

    def value(self, t: float, shape: DailyShape) -> float:
        v = self.base + self.rate * shape.full_load_hours(self.since, t)
        if self.point.rollover is not None and v > self.point.rollover:
            v %= self.point.rollover
        return max(v, 0.0)

    def rebase(self, t: float, shape: DailyShape) -> None:
        self.base, self.since = self.value(t, shape), t


@dataclass(frozen=True, order=True)
class _Event:
    at: float
    seq: int
    window: int = field(compare=False)
    fault: Fault | None = field(compare=False)
    """The fault starting, or None at the end of the window."""


def _registers(point: Point, value: float) -> list[int]:
    """The registers a device shows; values beyond the data type saturate as a real register would."""
    raw = (value - point.offset) / point.scale
    lo, hi = _RAW_LIMITS.get(point.data_type, (-math.inf, math.inf))
    return encode_raw(point.data_type, point.word_order, min(max(raw, lo), hi))


class SimulatedDevice:
    """One meter or sensor answering Modbus reads as described by a profile."""

    def __init__(
        self,
        profile: Profile,
        unit_id: int,
        seed: int = 0,
        clock: Clock = system_clock,
        *,
        name: str | None = None,
        load_scale: float = 1.0,
        shape: DailyShape | None = None,
    ) -> None:
        if not 1 <= unit_id <= 247:
            raise ValueError(f"unit id {unit_id} outside 1..247")
        self.profile = profile
        self.unit_id = unit_id
        self.name = name or f"{profile.id}-{unit_id}"
        self._clock = clock
        self._shape = shape or DailyShape()
        rng = random.Random(seed)
        self.traits = Traits.draw(profile, unit_id, rng, load_scale)
        self._wobbles = {p.name: Wobble.draw(rng) for p in profile.points}
        now = clock()
        self._counters = {
            p.name: _Counter(p, rate, self.traits.initial_count(p.quantity, rng), now, rate)
            for p in profile.points
            if p.kind is PointKind.COUNTER
            for rate in [self.traits.counter_rate(p.quantity)]
        }
        self._tables: dict[int, dict[int, tuple[Point, int]]] = {}
        for p in profile.points:
            table = self._tables.setdefault(p.function, {})
            for i in range(p.register_count):
                table[p.address + i] = (p, i)
        self._spans = {f: (min(t), max(t) + 1) for f, t in self._tables.items()}
        self._fault: Fault | None = None
        self._window: int | None = None
        self._frozen_at: float | None = None
        self._events: list[_Event] = []
        self._seq = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SimulatedDevice({self.name!r}, {self.profile.id}, unit {self.unit_id})"

    @property
    def fault(self) -> Fault | None:
        with self._lock:
            self._sync(self._clock())
            return self._fault

    def set_fault(self, fault: Fault | FaultKind | None) -> None:
        """Switch the fault now (None clears it); overrides any scheduled window in progress."""
        if isinstance(fault, FaultKind):
            fault = Fault(kind=fault)
        with self._lock:
            now = self._clock()
            self._sync(now)
            self._transition(now, fault, None)

    def schedule(self, fault: Fault, start: float, end: float | None = None) -> None:
        """A fault window in clock time; it ends only the fault it started."""
        with self._lock:
            self._seq += 1
            window = self._seq
            heapq.heappush(self._events, _Event(start, self._seq, window, fault))
            if end is not None:
                self._seq += 1
                heapq.heappush(self._events, _Event(end, self._seq, window, None))

    def value(self, point_name: str) -> float:
        """The engineering value the device shows now (before register encoding)."""
        point = self.profile.point(point_name)
        with self._lock:
            return self._value(point, self._sync(self._clock()))

    def read(self, function: int, address: int, count: int) -> list[int]:
        """Register words (or bits) for a read request; raises ModbusError for exception replies."""
        with self._lock:
            t = self._sync(self._clock())
            if self._fault is not None and self._fault.kind is FaultKind.EXCEPTION:
                raise ModbusError(self._fault.exception_code, "fault injected")
            table = self._check_address(function, address, count)
            cache: dict[str, list[int]] = {}
            words = []
            for a in range(address, address + count):
                hit = table.get(a)
                if hit is None:
                    words.append(0)
                    continue
                point, i = hit
                if point.name not in cache:
                    cache[point.name] = _registers(point, self._value(point, t))
                words.append(cache[point.name][i])
            return words

    def _check_address(self, function: int, address: int, count: int) -> dict[int, tuple[Point, int]]:
        """Reserved registers between points read as 0; outside them, or in an unreadable range, exception 2."""
        if function not in self._tables:
            raise ModbusError(ILLEGAL_DATA_ADDRESS, f"no points for function {function}")
        lo, hi = self._spans[function]
        end = address + count
        if address < lo or end > hi:
            raise ModbusError(ILLEGAL_DATA_ADDRESS, f"{address}..{end - 1} outside {lo}..{hi - 1}")
        for first, last in self.profile.workarounds.unreadable:
            if address <= last and first < end:
                raise ModbusError(ILLEGAL_DATA_ADDRESS, f"{address}..{end - 1} touches unreadable {first}..{last}")
        return self._tables[function]

    def _sync(self, now: float) -> float:
        """Apply scheduled transitions up to now; returns the time values are evaluated at."""
        while self._events and self._events[0].at <= now:
            event = heapq.heappop(self._events)
            if event.fault is not None:
                self._transition(event.at, event.fault, event.window)
            elif self._window == event.window:
                self._transition(event.at, None, None)
        return self._frozen_at if self._frozen_at is not None else now

    def _transition(self, at: float, fault: Fault | None, window: int | None) -> None:
        for counter in self._counters.values():
            counter.rebase(at, self._shape)
            counter.rate = counter.nominal_rate
        self._fault, self._window = fault, window
        kind = fault.kind if fault is not None else None
        self._frozen_at = at if kind is FaultKind.STUCK else None
        if kind is FaultKind.METER_REPLACED:
            for counter in self._counters.values():
                counter.base = 0.0
        elif kind is FaultKind.COUNTER_ROLLOVER and fault is not None:
            for counter in self._counters.values():
                if counter.point.rollover is not None and counter.nominal_rate > 0:
                    ahead = counter.nominal_rate * self._shape.full_load_hours(at, at + fault.wrap_after_s)
                    counter.base = counter.point.rollover - ahead
        elif kind is FaultKind.REVERSE_FLOW:
            self._reverse_counters()

    def _reverse_counters(self) -> None:
        """A water meter with a reverse total counts there; any other consuming counter runs backwards."""
        reverse = [c for c in self._counters.values() if c.point.quantity is Quantity.WATER_REVERSE_M3]
        for counter in self._counters.values():
            if counter.nominal_rate == 0:
                continue
            has_partner = counter.point.quantity is Quantity.WATER_VOLUME_M3 and bool(reverse)
            counter.rate = 0.0 if has_partner else -counter.nominal_rate
        for counter in reverse:
            counter.rate = self.traits.peak_m3h

    def _value(self, point: Point, t: float) -> float:
        if point.kind is PointKind.COUNTER:
            return self._counters[point.name].value(t, self._shape)
        load = self._shape.factor(t)
        if point.kind is PointKind.STATE:
            return self.traits.state(point, t, load)
        value = self.traits.gauge(point, load, self._wobbles[point.name](t))
        if point.valid_range is not None:
            value = min(max(value, point.valid_range[0]), point.valid_range[1])
        kind = self._fault.kind if self._fault is not None else None
        if kind is FaultKind.REVERSE_FLOW and point.quantity in _SIGNED_FLOWS:
            value = -abs(value)
        elif kind is FaultKind.OUT_OF_RANGE and point.valid_range is not None:
            lo, hi = point.valid_range
            value = hi + max((hi - lo) / 4, 1.0)
        return value
