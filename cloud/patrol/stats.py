"""Monthly patrol statistics per guard and route, and their CSV export.

Only decided checkpoints count (scanned, or missed once their window closed); checkpoints still open are
left out, so a month in progress is not shown as worse than it is. A round belongs to the local
(Asia/Shanghai) month it starts in, and to the guard answerable for it.

- completion rate (完成率) = checkpoints visited / checkpoints due
- miss rate (漏巡率) = checkpoints missed / checkpoints due
- lateness: checkpoints scanned late, and their average minutes past the on-time window

Rates are percentages with one decimal, rounded half up.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.auth.models import User
from cloud.console.i18n import Lang, translate
from cloud.patrol.models import CheckpointResult, PatrolRound, PatrolRoute, RoundCheckpoint
from cloud.patrol.scoring import lateness_s
from cloud.timeseries.query import DEFAULT_TZ

TZ = ZoneInfo(DEFAULT_TZ)
_ONE_DECIMAL = Decimal("0.1")


def percent(part: int, whole: int) -> Decimal:
    if whole == 0:
        return Decimal("0.0")
    return (Decimal(100 * part) / Decimal(whole)).quantize(_ONE_DECIMAL, ROUND_HALF_UP)


@dataclass
class StatsRow:
    guard_id: int | None
    guard: str
    route_id: int
    route: str
    rounds: int = 0
    complete_rounds: int = 0
    due: int = 0
    visited: int = 0
    missed: int = 0
    on_time: int = 0
    early: int = 0
    late: int = 0
    out_of_order: int = 0
    late_seconds: int = 0
    _rounds: set[int] = field(default_factory=set, repr=False)
    _incomplete: set[int] = field(default_factory=set, repr=False)

    @property
    def completion_rate(self) -> Decimal:
        return percent(self.visited, self.due)

    @property
    def miss_rate(self) -> Decimal:
        return percent(self.missed, self.due)

    @property
    def avg_late_min(self) -> Decimal:
        if self.late == 0:
            return Decimal("0.0")
        return (Decimal(self.late_seconds) / Decimal(60 * self.late)).quantize(_ONE_DECIMAL, ROUND_HALF_UP)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """UTC bounds of a local calendar month."""
    first = month.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    to_utc = lambda d: datetime(d.year, d.month, d.day, tzinfo=TZ).astimezone(UTC)  # noqa: E731
    return to_utc(first), to_utc(following)


def monthly_stats(session: Session, site_id: int, month: date) -> list[StatsRow]:
    """One row per (guard, route) with rounds in the month, ordered by guard then route."""
    start, end = month_bounds(month)
    rows = session.execute(
        select(RoundCheckpoint, PatrolRound.guard_id, PatrolRound.route_id, PatrolRoute.name)
        .join(PatrolRound, PatrolRound.id == RoundCheckpoint.round_id)
        .join(PatrolRoute, PatrolRoute.id == PatrolRound.route_id)
        .where(
            PatrolRound.site_id == site_id,
            PatrolRound.starts_at >= start,
            PatrolRound.starts_at < end,
            RoundCheckpoint.result != CheckpointResult.PENDING,
        )
    ).all()
    guard_ids = {g for _, g, _, _ in rows if g is not None}
    names = {id: name for id, name in session.execute(select(User.id, User.full_name).where(User.id.in_(guard_ids)))}
    table: dict[tuple[int | None, int], StatsRow] = {}
    for slot, guard_id, route_id, route_name in rows:
        key = (guard_id, route_id)
        row = table.get(key)
        if row is None:
            guard = names.get(guard_id, "") if guard_id is not None else ""
            row = table[key] = StatsRow(guard_id, guard, route_id, route_name)
        row._rounds.add(slot.round_id)
        row.due += 1
        if slot.result is CheckpointResult.MISSED:
            row.missed += 1
            row._incomplete.add(slot.round_id)
            continue
        row.visited += 1
        counts = {CheckpointResult.ON_TIME: "on_time", CheckpointResult.EARLY: "early",
                  CheckpointResult.LATE: "late", CheckpointResult.OUT_OF_ORDER: "out_of_order"}  # fmt: skip
        setattr(row, counts[slot.result], getattr(row, counts[slot.result]) + 1)
        if slot.result is CheckpointResult.LATE:
            row.late_seconds += lateness_s(slot)
    for row in table.values():
        row.rounds = len(row._rounds)
        row.complete_rounds = len(row._rounds - row._incomplete)
    return sorted(table.values(), key=lambda r: (r.guard_id is None, r.guard_id or 0, r.route_id))


CSV_COLUMNS = ("guard", "route", "rounds", "complete_rounds", "due", "visited", "missed", "completion_rate",
               "miss_rate", "on_time", "early", "late", "out_of_order", "avg_late_min")  # fmt: skip


def to_csv(rows: list[StatsRow], lang: Lang) -> str:
    """CSV with headers in the reader's language (UTF-8 with BOM, so spreadsheet programs read Chinese)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([translate(f"patrol_col_{c}", lang) for c in CSV_COLUMNS])
    for row in rows:
        guard = row.guard or translate("patrol_unclaimed", lang)
        writer.writerow([
            guard, row.route, row.rounds, row.complete_rounds, row.due, row.visited, row.missed,
            row.completion_rate, row.miss_rate, row.on_time, row.early, row.late, row.out_of_order, row.avg_late_min,
        ])  # fmt: skip
    return out.getvalue()
