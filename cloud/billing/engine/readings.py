"""From counter samples to billable usage: boundary readings, meter replacement, rollover, time-of-use split.

Pure functions over samples the caller already loaded (sorted by time). Readings are Decimal, exact to
0.0001 (interpolated values are rounded half-up to that); floats from the time-series store are taken at
their shortest decimal form (``repr``), so 1234.56 stays 1234.56.

What the owner checks by hand is ``end reading - start reading``: usage is computed from the two boundary
readings (plus the old meter's final and the new meter's initial reading on a replacement). A decrease is
never billed unless the meter's profile declares a rollover and the wrap is plausible; otherwise it is
flagged for a person to look at.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from operator import itemgetter
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from cloud.billing.engine.rounding import STEP, UNIT, largest_remainder
from cloud.billing.engine.tariffs import SLOTS_PER_DAY, TariffDocument, TouPeriod
from cloud.timeseries.query import DEFAULT_MAX_GAP_MS, DEFAULT_TZ
from cloud.timeseries.rollup import HOUR_MS

HALF_HOUR_MS = HOUR_MS // 2
ROLLOVER_BAND = Decimal("0.1")
"""A wrap is plausible when the value before it was within this fraction of the range below the maximum
and the value after it within this fraction above 0 (as edge/counters.py judges it)."""


class Sample(NamedTuple):
    ts_ms: int
    value: Decimal | float


@dataclass(frozen=True, slots=True)
class Reading:
    """A counter's reading at an instant."""

    ts_ms: int
    value: Decimal
    source: Literal["sample", "interpolated", "held"]
    """A sample at that instant; interpolated between the samples around it; or the nearest sample's value
    held (the instant lies outside the data, or the counter went down across it)."""
    estimated: bool
    """The samples around the instant are further apart than the allowed gap (or held across a decrease)."""
    gap_ms: int
    """Interpolated: the distance between the samples used; held: the distance to the sample used."""

    def as_detail(self) -> dict[str, Any]:
        return {
            "time": datetime.fromtimestamp(self.ts_ms / 1000, UTC).isoformat(),
            "value": str(self.value),
            "source": self.source,
            "estimated": self.estimated,
        }


@dataclass(frozen=True, slots=True)
class MeterReplacement:
    """A meter swapped inside the period: the old meter's last reading and the new meter's first."""

    at_ms: int
    old_final: Decimal
    new_initial: Decimal


@dataclass(frozen=True, slots=True)
class Rollover:
    """The meter profile says the register wraps: after ``register_max`` it shows 0 (one ``resolution``
    step later). 99999.99 -> 0.00 is an advance of 0.01."""

    register_max: Decimal
    resolution: Decimal = Decimal("0.01")

    @property
    def modulus(self) -> Decimal:
        return self.register_max + self.resolution


class UsageFlag(StrEnum):
    ESTIMATED = "estimated"
    """A boundary reading was estimated: billed, shown as estimated."""
    ROLLOVER = "rollover"
    """The register wrapped: billed across the wrap."""
    REPLACED = "replaced"
    """Meter replaced: old part + new part billed."""
    NEGATIVE = "negative_delta"
    """The counter went down without a plausible explanation: nothing billed, a person must look."""


@dataclass(frozen=True, slots=True)
class MeteredUsage:
    quantity: Decimal
    """Billable usage (0 when not billable)."""
    billable: bool
    flags: frozenset[UsageFlag]
    start: Reading
    end: Reading
    detail: dict[str, Any] = field(default_factory=dict)
    """JSON-safe: the readings used, replacement and rollover arithmetic, the negative delta."""


@dataclass(frozen=True, slots=True)
class TouUsage:
    usage: dict[TouPeriod, Decimal]
    """Per period of the tariff, summing exactly to the total split."""
    missing_hours: int
    """Hour boundaries without a reading (interpolated from their neighbours)."""
    decreases: int
    """Stretches where the counter went down: left out of the proportions."""
    by_clock: bool
    """No hourly usage to go by: the total was spread by the clock hours each period covers."""


def to_decimal(value: Decimal | float) -> Decimal:
    """A sample value as an exact Decimal (floats by their shortest repr), rounded half-up to 0.0001."""
    number = value if isinstance(value, Decimal) else Decimal(repr(value))
    return number.quantize(STEP, ROUND_HALF_UP)


def reading_at(samples: Sequence[Sample], at_ms: int, max_gap_ms: int = DEFAULT_MAX_GAP_MS) -> Reading | None:
    """The counter reading at ``at_ms`` from samples sorted by time; None without samples.

    Between two samples the value is interpolated linearly (estimated when they are more than
    ``max_gap_ms`` apart). Before the first or after the last sample the nearest value is held (estimated
    when it is more than ``max_gap_ms`` away). Across a decrease the earlier value is held, estimated.
    """
    if not samples:
        return None
    i = bisect_left(samples, at_ms, key=itemgetter(0))
    if i < len(samples) and samples[i].ts_ms == at_ms:
        return Reading(at_ms, to_decimal(samples[i].value), "sample", False, 0)
    if i == 0 or i == len(samples):
        nearest = samples[0] if i == 0 else samples[-1]
        gap = abs(nearest.ts_ms - at_ms)
        return Reading(at_ms, to_decimal(nearest.value), "held", gap > max_gap_ms, gap)
    before, after = samples[i - 1], samples[i]
    low, high = to_decimal(before.value), to_decimal(after.value)
    gap = after.ts_ms - before.ts_ms
    if high < low:
        return Reading(at_ms, low, "held", True, at_ms - before.ts_ms)
    value = low + (high - low) * (at_ms - before.ts_ms) / gap
    return Reading(at_ms, value.quantize(STEP, ROUND_HALF_UP), "interpolated", gap > max_gap_ms, gap)


def metered_usage(
    start: Reading,
    end: Reading,
    *,
    rollover: Rollover | None = None,
    replacement: MeterReplacement | None = None,
) -> MeteredUsage:
    """Usage between two boundary readings: ``end - start``, or with a replacement
    ``(old_final - start) + (end - new_initial)``; a decrease is billed across a plausible rollover and is
    otherwise flagged NEGATIVE with nothing billed."""
    flags: set[UsageFlag] = set()
    detail: dict[str, Any] = {"start": start.as_detail(), "end": end.as_detail()}
    if start.estimated or end.estimated:
        flags.add(UsageFlag.ESTIMATED)
    if replacement is None:
        parts = [(start.value, end.value)]
    else:
        flags.add(UsageFlag.REPLACED)
        old_final, new_initial = to_decimal(replacement.old_final), to_decimal(replacement.new_initial)
        parts = [(start.value, old_final), (new_initial, end.value)]
        detail["replacement"] = {
            "time": datetime.fromtimestamp(replacement.at_ms / 1000, UTC).isoformat(),
            "old_final": str(old_final),
            "new_initial": str(new_initial),
            "old_part": str(old_final - start.value),
            "new_part": str(end.value - new_initial),
        }
    quantity = Decimal(0)
    for low, high in parts:
        delta = high - low
        if delta >= 0:
            quantity += delta
            continue
        if rollover is not None and _plausible_wrap(low, high, rollover):
            advance = rollover.modulus - low + high
            flags.add(UsageFlag.ROLLOVER)
            detail["rollover"] = {"register_max": str(rollover.register_max), "from": str(low), "to": str(high)}
            quantity += advance
            continue
        flags.add(UsageFlag.NEGATIVE)
        detail["negative_delta"] = str(delta)
    if UsageFlag.NEGATIVE in flags:
        return MeteredUsage(Decimal("0.0000"), False, frozenset(flags), start, end, detail)
    return MeteredUsage(quantity.quantize(STEP), True, frozenset(flags), start, end, detail)


def _plausible_wrap(low: Decimal, high: Decimal, rollover: Rollover) -> bool:
    modulus = rollover.modulus
    return modulus * (1 - ROLLOVER_BAND) <= low <= rollover.register_max and 0 <= high <= modulus * ROLLOVER_BAND


def split_tou(
    document: TariffDocument,
    start_ms: int,
    readings: Sequence[Decimal | float | None],
    total: Decimal,
    tz: str = DEFAULT_TZ,
) -> TouUsage:
    """Split ``total`` (the segment's billed usage) over the tariff's time-of-use periods.

    ``readings[i]`` is the counter at ``start_ms + i`` hours (UTC hour boundaries; None where the hour
    rollups have nothing: interpolated from the neighbours). Each period's usage is read at the local
    clock instants where periods change (a half-hour change takes the mean of the two hour readings);
    the total is then allocated in proportion to those usages by largest remainder (to 0.0001, ties to
    the earlier period), so the parts always sum exactly to ``total`` and equal the metered usage per
    period when the readings are complete. Stretches where the counter went down are left out.
    """
    if start_ms % HOUR_MS:
        raise ValueError(f"start_ms {start_ms} is not on a UTC hour boundary")
    if len(readings) < 2:
        raise ValueError("give the readings at the start and end hour boundaries at least (2 or more)")
    periods = document.tou_periods()
    if not periods:
        raise ValueError(f"tariff {document.name!r} has no time of use to split by")
    total_units = _whole_units(total)
    slots = document.period_slots()
    marks = _change_marks(slots, start_ms, 2 * (len(readings) - 1), tz)
    missing = readings.count(None)
    weights = dict.fromkeys(periods, 0)
    decreases = 0
    if missing < len(readings):
        at = _doubled_readings(readings) if missing else _doubled_dense(readings)
        values = [at(mark) for mark, _ in marks]
        for i in range(len(marks) - 1):
            delta = values[i + 1] - values[i]
            if delta < 0:
                decreases += 1
            else:
                weights[slots[marks[i][1]]] += delta
    by_clock = sum(weights.values()) == 0 and total_units > 0
    if by_clock:
        for (a, slot), (b, _) in zip(marks, marks[1:], strict=False):
            weights[slots[slot]] += b - a
    parts = largest_remainder(total_units, [weights[p] for p in periods], sum(weights.values()) or 1)
    return TouUsage(
        usage={p: Decimal(q).scaleb(-4) for p, q in zip(periods, parts, strict=True)},
        missing_hours=missing,
        decreases=decreases,
        by_clock=by_clock,
    )


def _whole_units(total: Decimal) -> int:
    scaled = total * UNIT
    units = int(scaled)
    if units != scaled or units < 0:
        raise ValueError(f"total {total} must be a non-negative quantity exact to 0.0001")
    return units


def _change_marks(slots: tuple[TouPeriod, ...], start_ms: int, halves: int, tz: str) -> list[tuple[int, int]]:
    """(half-hour position from ``start_ms``, local slot there) where the period changes, plus both ends.

    The local offset must be whole half hours; a zone whose offset changes inside the range (daylight
    saving) is walked day by day, the fixed-offset case (Asia/Shanghai) by arithmetic.
    """
    zone = ZoneInfo(tz)
    end_ms = start_ms + halves * HALF_HOUR_MS
    offset = _offset_ms(zone, start_ms)
    if offset % HALF_HOUR_MS:
        raise ValueError(f"time zone {tz} is not a whole number of half hours from UTC")
    first = ((start_ms + offset) // HALF_HOUR_MS) % SLOTS_PER_DAY
    changes = [c for c in range(SLOTS_PER_DAY) if slots[c] != slots[c - 1]]
    marks = {0: first, halves: 0}
    if offset == _offset_ms(zone, end_ms):
        for change in changes:
            mark = (change - first) % SLOTS_PER_DAY
            while 0 < mark < halves:
                marks[mark] = change
                mark += SLOTS_PER_DAY
        return sorted(marks.items())
    day = datetime.fromtimestamp(start_ms / 1000, zone).date()
    last_day = datetime.fromtimestamp(end_ms / 1000, zone).date()
    while day <= last_day:
        for change in changes:
            instant = _local_ms(day, change, zone)
            if start_ms < instant < end_ms and (instant - start_ms) % HALF_HOUR_MS == 0:
                marks[(instant - start_ms) // HALF_HOUR_MS] = change
        day += timedelta(days=1)
    return sorted(marks.items())


def _offset_ms(zone: ZoneInfo, ts_ms: int) -> int:
    offset = datetime.fromtimestamp(ts_ms / 1000, zone).utcoffset()
    return int(offset.total_seconds() * 1000) if offset is not None else 0


def _local_ms(day: date, slot: int, zone: ZoneInfo) -> int:
    local = datetime.combine(day, time(slot // 2, (slot % 2) * 30), zone)
    return int(local.timestamp() * 1000)


def _doubled_dense(readings: Sequence[Decimal | float | None]) -> Callable[[int], int]:
    """``_doubled_readings`` for the usual case of a reading at every hour boundary (no gap filling)."""

    def at(half: int) -> int:
        hour = half >> 1
        low = readings[hour]
        assert low is not None
        if not half & 1:
            return 2 * round(low * UNIT)
        high = readings[hour + 1]
        assert high is not None
        return round(low * UNIT) + round(high * UNIT)

    return at


def _doubled_readings(readings: Sequence[Decimal | float | None]) -> Callable[[int], int]:
    """A function: half-hour position -> twice the reading there, in 0.0001 units (None filled linearly from
    the nearest readings, held beyond the first or last one). At least one reading must be present.

    Only the readings at period changes are converted: a month has about 90 of them, not 745.
    """

    def known(i: int) -> int:
        value = readings[i]
        assert value is not None
        return round(value * UNIT)

    def at_hour(i: int) -> int:
        if readings[i] is not None:
            return 2 * known(i)
        low = next((j for j in range(i - 1, -1, -1) if readings[j] is not None), None)
        high = next((j for j in range(i + 1, len(readings)) if readings[j] is not None), None)
        if low is None or high is None:
            nearest = high if low is None else low
            assert nearest is not None
            return 2 * known(nearest)
        span = high - low
        return (2 * (known(low) * (high - i) + known(high) * (i - low)) + span // 2) // span

    def at(half: int) -> int:
        if half % 2 == 0:
            return at_hour(half // 2)
        return (at_hour(half // 2) + at_hour(half // 2 + 1)) // 2

    return at
