"""Billing periods cut at tariff changes, and tier years: calendar logic in Asia/Shanghai.

A tariff version takes effect at 00:00 local time on its effective date. A calendar month that a change
falls inside is split at that instant into segments; each segment is priced with its own version, and the
monthly quantities of that version (tier thresholds, fixed charges) are prorated by the days it covers
(see ``pricing``).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from cloud.billing.engine.tariffs import TariffDocument
from cloud.timeseries.query import DEFAULT_TZ


@dataclass(frozen=True, slots=True)
class TariffVersion:
    """A tariff document with the day it takes effect (local date); ``id`` is the caller's row id, if any."""

    effective_from: date
    document: TariffDocument
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Proration:
    """The share of a month a segment covers, in whole local days: thresholds and fixed charges scale by
    ``days / month_days``."""

    days: int
    month_days: int

    def __post_init__(self) -> None:
        if not 0 < self.days <= self.month_days:
            raise ValueError(f"a segment covers 1 to {self.month_days} days of its month, not {self.days}")

    @property
    def whole(self) -> bool:
        return self.days == self.month_days


WHOLE_MONTH = Proration(1, 1)


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of a billing month priced with one tariff version: local days [first_day, last_day]."""

    version: TariffVersion
    first_day: date
    last_day: date
    start: datetime
    """Aware UTC instant of first_day 00:00 local: where the segment's start reading is taken."""
    end: datetime
    """Aware UTC instant of the day after last_day 00:00 local: the end reading (exclusive bound)."""
    proration: Proration

    @property
    def month(self) -> int:
        return self.first_day.month


def split_month(year: int, month: int, versions: Sequence[TariffVersion], tz: str = DEFAULT_TZ) -> list[Segment]:
    """The segments of a calendar month: one per tariff version in force during it, in time order.

    Raises ValueError when no version is in force on the first day of the month (a tariff must exist
    for the whole period billed) or when two versions share an effective date.
    """
    ordered = sorted(versions, key=lambda v: v.effective_from)
    dates = [v.effective_from for v in ordered]
    twice = sorted({d for d in dates if dates.count(d) > 1})
    if twice:
        raise ValueError(f"two tariff versions take effect on the same day ({twice[0].isoformat()}); keep one")
    month_days = calendar.monthrange(year, month)[1]
    first = date(year, month, 1)
    last = date(year, month, month_days)
    in_force = [v for v in ordered if v.effective_from <= first]
    if not in_force:
        raise ValueError(f"no tariff version is in force on {first.isoformat()}; add one effective on or before it")
    starts = [in_force[-1]] + [v for v in ordered if first < v.effective_from <= last]
    zone = ZoneInfo(tz)
    segments: list[Segment] = []
    for i, version in enumerate(starts):
        begin = first if i == 0 else version.effective_from
        end_day = starts[i + 1].effective_from if i + 1 < len(starts) else date.fromordinal(last.toordinal() + 1)
        days = (end_day - begin).days
        segments.append(
            Segment(
                version=version,
                first_day=begin,
                last_day=date.fromordinal(end_day.toordinal() - 1),
                start=_utc(begin, zone),
                end=_utc(end_day, zone),
                proration=Proration(days, month_days),
            )
        )
    return segments


def tier_year_start(document: TariffDocument, year: int, month: int) -> tuple[int, int]:
    """(year, month) the tier year containing ``year-month`` began: the accumulated usage that yearly tiers
    price against is the usage from that month up to (not including) the month billed."""
    start = document.year_start_month
    return (year, start) if month >= start else (year - 1, start)


def _utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)
