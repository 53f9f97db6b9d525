"""What every meter of a site used between two instants, loaded in bulk for a bill run.

The engine does the arithmetic (``reading_at``, ``metered_usage``, ``split_tou``); this module feeds it from
the database, in a few queries per few thousand meters rather than a few per meter, because a run bills
100,000 units:

* Telemetry: the hourly rollups (the caller refreshes dirty hours first, so they are exact). A reading at a
  boundary instant (always a whole hour: local midnights) lies between the last sample before it and the
  first at or after it, which are the last and first values of the two rollup hours around it. Meters with no
  rollup in those two hours are looked up further away, so a long gap gives a held, estimated reading.
* Manual readings for meters without communication, and corrections. Precedence at an instant: a correction,
  then a manual reading, then telemetry. A telemetry meter is corrected at boundary instants only (there is
  no other reading of it that a bill uses).
* Replacements: the old meter's final and the new one's initial reading (passed to ``metered_usage``).
* Time of use: the hourly usage of the period summed per local clock hour in SQL (the step between two
  consecutive hours counts in the later hour), laid out as one day of readings for ``split_tou``. The daily
  schedule repeats, so the proportions over that day equal those over the month, at 1/31 of the work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, TextClause, and_, bindparam, select, text
from sqlalchemy.orm import Session

from cloud.billing.engine import (
    MeteredUsage,
    MeterReplacement,
    Reading,
    Rollover,
    Sample,
    TariffDocument,
    TouUsage,
    metered_usage,
    reading_at,
    split_tou,
    to_decimal,
)
from cloud.billing.models import MeterReading, ReadingCorrection
from cloud.billing.models import MeterReplacement as ReplacementRow
from cloud.registry.models import Device, Edge, Meter, PointMapping, Site
from cloud.registry.services import MAIN_QUANTITY
from cloud.timeseries.models import Series
from cloud.timeseries.query import DEFAULT_TZ
from cloud.timeseries.rollup import HOUR_MS
from protocols.profiles import ProfileError, load_profile

CHUNK = 2_000
"""Series per query: keeps bound parameters well under both databases' limits."""
QUERY_THREADS = 2
"""Connections a run reads rollups on in parallel, per statement (PostgreSQL)."""
LOOKAROUND_MS = 400 * 24 * HOUR_MS
"""How far from a boundary a reading is looked for when the hours around it have none (then it is held)."""
Origin = Literal["meter", "manual", "corrected"]
_T = TypeVar("_T")
ClockSums = dict[tuple[int, int], tuple[list[float], int]]
"""(series or meter, piece) -> usage per local clock hour (0-23), decreases."""
Knots = dict[tuple[int, int], tuple[Sample | None, Sample | None]]
"""(series or meter, boundary instant) -> the last sample before it, the first at or after it."""


@dataclass(frozen=True, slots=True)
class BoundaryReading:
    reading: Reading
    origin: Origin
    """Telemetry, a manual reading, or an audited correction."""

    def as_detail(self) -> dict[str, Any]:
        detail = self.reading.as_detail()
        source = self.origin if self.origin != "meter" or self.reading.source == "sample" else self.reading.source
        return detail | {"source": source}


@dataclass(frozen=True, slots=True)
class MeterUsage:
    """A meter's usage over [start, end): the engine's result and where its readings came from."""

    metered: MeteredUsage
    start: BoundaryReading
    end: BoundaryReading

    def detail(self) -> dict[str, Any]:
        """The readings as a bill line shows them, so an owner can check ``end - start``."""
        out = dict(self.metered.detail)
        out["start"], out["end"] = self.start.as_detail(), self.end.as_detail()
        out["flags"] = sorted(f.value for f in self.metered.flags)
        return out


@dataclass
class _Manual:
    """A meter's manual readings (corrections applied) and replacements."""

    points: dict[int, tuple[Decimal, Origin]] = field(default_factory=dict)
    replacements: list[MeterReplacement] = field(default_factory=list)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def meter_series(session: Session, site_id: int) -> dict[int, tuple[int, Rollover | None]]:
    """Meter id -> (series id of its billing counter (``MAIN_QUANTITY`` of its kind), the counter's rollover
    from the device profile), for the meters of a site that have sent a reading; the first mapping wins."""
    query = (
        select(PointMapping.meter_id, Meter.kind, PointMapping.quantity, Series.id, Device.profile, PointMapping.point)
        .join(Device, PointMapping.device_id == Device.id)
        .join(Edge, Device.edge_id == Edge.id)
        .join(Site, Edge.site_id == Site.id)
        .join(Meter, Meter.id == PointMapping.meter_id)
        .join(
            Series,
            and_(
                Series.site == Site.code,
                Series.edge == Edge.code,
                Series.device == Device.name,
                Series.point == PointMapping.point,
            ),
        )
        .where(Device.site_id == site_id)
        .order_by(PointMapping.id)
    )
    out: dict[int, tuple[int, Rollover | None]] = {}
    for meter_id, kind, quantity, series_id, profile, point in session.execute(query):
        if meter_id is not None and meter_id not in out and quantity == MAIN_QUANTITY[kind.value]:
            out[meter_id] = (series_id, _rollover(profile, point))
    return out


@lru_cache(maxsize=256)
def _rollover(profile: str, point: str) -> Rollover | None:
    try:
        value = load_profile(profile).point(point).rollover
    except (ProfileError, KeyError, ValueError):
        return None
    return None if value is None else Rollover(to_decimal(value))


class SiteUsage:
    """Readings and usage of a site's meters for one run: ``load`` once, then ask per meter."""

    def __init__(
        self,
        series: dict[int, tuple[int, Rollover | None]],
        knots: dict[tuple[int, int], tuple[Sample | None, Sample | None]],
        manual: dict[int, _Manual],
        clock: Callable[[], ClockSums],
        cuts: Sequence[int],
    ) -> None:
        self._series = series
        self._knots = knots
        self._manual = manual
        self._clock_source = clock
        self._cuts = list(cuts)

    @cached_property
    def _clock(self) -> ClockSums:
        """(meter, piece) -> hourly usage by clock hour and decreases; waits for the query on first use."""
        return self._clock_source()

    @classmethod
    def load(
        cls,
        session: Session,
        site_id: int,
        meter_ids: Iterable[int],
        instants: Iterable[int],
        *,
        tou_meters: Iterable[int] = (),
        tou_clocks: Iterable[int] = (),
        cuts: Sequence[int] = (),
        tz: str = DEFAULT_TZ,
    ) -> SiteUsage:
        """Everything needed for readings at ``instants`` (epoch ms, whole hours) of ``meter_ids``, and for the
        time-of-use split of ``tou_meters`` over the pieces between consecutive ``cuts`` (``tou_clocks``: the
        local clock hours where their tariffs change period, see ``change_clocks``)."""
        wanted = set(meter_ids)
        series = {m: v for m, v in meter_series(session, site_id).items() if m in wanted}
        points = sorted(set(instants))
        if any(p % HOUR_MS for p in points):
            raise ValueError("boundary instants must be whole hours")
        conn = session.connection()
        by_series = {sid: m for m, (sid, _) in series.items()}
        tou_series = [series[m][0] for m in tou_meters if m in series]

        def clock_sums(own: Connection) -> ClockSums:
            if not tou_series or len(cuts) < 2:
                return {}
            found = _clock_sums(own, tou_series, list(cuts), tou_clocks, tz)
            return {(by_series[s], piece): v for (s, piece), v in found.items()}

        clock = _in_background(conn, clock_sums)
        knots = _knots(conn, list(by_series), points)
        return cls(
            series,
            {(by_series[s], at): v for (s, at), v in knots.items()},
            _manual(session, site_id, wanted),
            clock,
            cuts,
        )

    def has_telemetry(self, meter_id: int) -> bool:
        return meter_id in self._series

    def reading(self, meter_id: int, at_ms: int) -> BoundaryReading | None:
        """The meter's reading at a boundary instant; None when nothing at all is known of it."""
        manual = self._manual.get(meter_id)
        if manual is not None and at_ms in manual.points:
            value, origin = manual.points[at_ms]
            return BoundaryReading(Reading(at_ms, value, "sample", False, 0), origin)
        if meter_id in self._series:
            before, after = self._knots.get((meter_id, at_ms), (None, None))
            found = reading_at([s for s in (before, after) if s is not None], at_ms)
            return None if found is None else BoundaryReading(found, "meter")
        if manual is None or not manual.points:
            return None
        found = reading_at(self._life(manual, at_ms), at_ms)
        return None if found is None else BoundaryReading(found, "manual")

    def _life(self, manual: _Manual, at_ms: int) -> list[Sample]:
        """Manual readings of the physical meter installed at ``at_ms`` (replacements cut the timeline)."""
        low, high = -1, None
        first: Sample | None = None
        last: Sample | None = None
        for r in manual.replacements:
            if r.at_ms <= at_ms and r.at_ms > low:
                low, first = r.at_ms, Sample(r.at_ms, r.new_initial)
            if r.at_ms > at_ms and (high is None or r.at_ms < high):
                high, last = r.at_ms, Sample(r.at_ms, r.old_final)
        samples = [
            Sample(t, v) for t, (v, _) in sorted(manual.points.items()) if t > low and (high is None or t < high)
        ]
        return ([first] if first else []) + samples + ([last] if last else [])

    def usage(self, meter_id: int, start_ms: int, end_ms: int) -> MeterUsage | None:
        """Usage over [start, end) by the engine's rules; None when a boundary reading is missing."""
        start, end = self.reading(meter_id, start_ms), self.reading(meter_id, end_ms)
        if start is None or end is None:
            return None
        manual = self._manual.get(meter_id)
        inside = [r for r in (manual.replacements if manual else []) if start_ms < r.at_ms < end_ms]
        rollover = self._series.get(meter_id, (0, None))[1]
        used = metered_usage(start.reading, end.reading, rollover=rollover, replacement=inside[0] if inside else None)
        return MeterUsage(used, start, end)

    def replacements_inside(self, meter_id: int, start_ms: int, end_ms: int) -> int:
        manual = self._manual.get(meter_id)
        return sum(1 for r in (manual.replacements if manual else []) if start_ms < r.at_ms < end_ms)

    def tou(self, meter_id: int, document: TariffDocument, start_ms: int, end_ms: int, total: Decimal) -> TouUsage:
        """``total`` split over the tariff's periods by the meter's hourly usage in [start, end) (pieces between
        consecutive cuts); by the clock when there is none (a manual meter)."""
        hours = [0.0] * 24
        decreases = 0
        for piece, (a, b) in enumerate(zip(self._cuts, self._cuts[1:], strict=False)):
            if a >= start_ms and b <= end_ms and (meter_id, piece) in self._clock:
                sums, dec = self._clock[(meter_id, piece)]
                hours = [x + y for x, y in zip(hours, sums, strict=True)]
                decreases += dec
        first_hour = ((start_ms + _offset_ms(start_ms)) // HOUR_MS) % 24
        cumulative = 0.0
        readings: list[Decimal | float | None] = [cumulative]
        for i in range(24):
            cumulative += max(hours[(first_hour + i) % 24], 0.0)
            readings.append(cumulative)
        result = split_tou(document, start_ms, readings, total)
        return TouUsage(result.usage, result.missing_hours, result.decreases + decreases, result.by_clock)


def change_clocks(document: TariffDocument) -> set[int]:
    """Local clock hours at which the tariff's time-of-use period changes (both hours around a half-hour change)."""
    slots = document.period_slots()
    out: set[int] = set()
    for slot in range(len(slots)):
        if slots[slot] != slots[slot - 1]:
            out |= {slot // 2, (slot // 2 + slot % 2) % 24}
    return out


def _offset_ms(at_ms: int, tz: str = DEFAULT_TZ) -> int:
    offset = datetime.fromtimestamp(at_ms / 1000, ZoneInfo(tz)).utcoffset()
    return int(offset.total_seconds() * 1000) if offset is not None else 0


def _fetch(conn: Connection, statement: TextClause, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(statement, params)]


def _fetch_chunks(
    conn: Connection, statement: TextClause, series_ids: list[int], params: dict[str, Any]
) -> Iterable[list[tuple[Any, ...]]]:
    return _per_chunk(conn, series_ids, lambda own, chunk: _fetch(own, statement, {"series": chunk, **params}))


def _per_chunk(conn: Connection, series_ids: list[int], work: Callable[[Connection, list[int]], _T]) -> Iterable[_T]:
    """``work`` per chunk of series; on PostgreSQL on ``QUERY_THREADS`` connections at once (the work is the
    database's: the hub process would only wait)."""
    chunks = list(_chunks(series_ids))
    if conn.dialect.name != "postgresql" or len(chunks) < 2:
        return (work(conn, chunk) for chunk in chunks)

    def one(chunk: list[int]) -> _T:
        with conn.engine.connect() as own:
            _without_jit(own)
            return work(own, chunk)

    with ThreadPoolExecutor(QUERY_THREADS) as pool:
        return list(pool.map(one, chunks))


def _in_background(conn: Connection, work: Callable[[Connection], _T]) -> Callable[[], _T]:
    """PostgreSQL: ``work`` starts at once on its own connection and thread (the time-of-use query, the run's
    longest, overlaps the boundary readings and the pools); the result waits for it. SQLite: done now."""
    if conn.dialect.name != "postgresql":
        done = work(conn)
        return lambda: done

    def own() -> _T:
        with conn.engine.connect() as separate:
            _without_jit(separate)
            return work(separate)

    executor = ThreadPoolExecutor(1)
    future = executor.submit(own)
    executor.shutdown(wait=False)
    return future.result


def _without_jit(conn: Connection) -> None:
    """PostgreSQL, for the rest of this connection's transaction: the run's reads are many per-series index probes
    whose estimated cost passes ``jit_above_cost``, so each statement spent about 0.2 s compiling expressions that
    then ran a few microseconds per row."""
    conn.exec_driver_sql("SET LOCAL jit = off")


def _chunks(items: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(items), CHUNK):
        yield list(items[i : i + CHUNK])


_NEAR = text(
    "SELECT series_id, hour_start, first_ts, first_value, last_ts, last_value FROM rollup_hours "
    "WHERE series_id IN :series AND hour_start IN :hours"
).bindparams(bindparam("series", expanding=True), bindparam("hours", expanding=True))
_PREV = text(
    "SELECT r.series_id, r.last_ts, r.last_value FROM rollup_hours r JOIN ("
    " SELECT s.id AS series_id, (SELECT max(h.hour_start) FROM rollup_hours h"
    "  WHERE h.series_id = s.id AND h.hour_start < :at AND h.hour_start >= :lo) AS hour"
    " FROM series s WHERE s.id IN :series"
    ") m ON m.series_id = r.series_id AND m.hour = r.hour_start"
).bindparams(bindparam("series", expanding=True))
"""The last rollup hour before an instant, per series: one index probe each (a correlated max)."""
_NEXT = text(
    "SELECT r.series_id, r.first_ts, r.first_value FROM rollup_hours r JOIN ("
    " SELECT s.id AS series_id, (SELECT min(h.hour_start) FROM rollup_hours h"
    "  WHERE h.series_id = s.id AND h.hour_start >= :at AND h.hour_start < :hi) AS hour"
    " FROM series s WHERE s.id IN :series"
    ") m ON m.series_id = r.series_id AND m.hour = r.hour_start"
).bindparams(bindparam("series", expanding=True))


def _knots(conn: Connection, series_ids: list[int], instants: list[int]) -> Knots:
    """(series, instant) -> (last sample before the instant, first sample at or after it)."""
    hours = sorted({h for at in instants for h in (at - HOUR_MS, at)})
    out: Knots = {}
    for part in _per_chunk(conn, series_ids, lambda own, chunk: _chunk_knots(own, chunk, instants, hours)):
        out.update(part)
    return out


def _chunk_knots(conn: Connection, chunk: list[int], instants: list[int], hours: list[int]) -> Knots:
    rows: dict[tuple[int, int], tuple[int, float, int, float]] = {}
    for sid, hour, first_ts, first_value, last_ts, last_value in _fetch(conn, _NEAR, {"series": chunk, "hours": hours}):
        rows[(sid, hour)] = (first_ts, first_value, last_ts, last_value)
    prev: dict[tuple[int, int], Sample] = {}
    nxt: dict[tuple[int, int], Sample] = {}
    for at in instants:
        missing_prev, missing_next = [], []
        for sid in chunk:
            before, after = rows.get((sid, at - HOUR_MS)), rows.get((sid, at))
            if before is not None:
                prev[(sid, at)] = Sample(before[2], before[3])
            else:
                missing_prev.append(sid)
            if after is not None:
                nxt[(sid, at)] = Sample(after[0], after[1])
            else:
                missing_next.append(sid)
        if missing_prev:
            params = {"series": missing_prev, "at": at - HOUR_MS, "lo": at - LOOKAROUND_MS}
            for sid, ts, value in _fetch(conn, _PREV, params):
                prev[(sid, at)] = Sample(ts, value)
        if missing_next:
            params = {"series": missing_next, "at": at + HOUR_MS, "hi": at + LOOKAROUND_MS}
            for sid, ts, value in _fetch(conn, _NEXT, params):
                nxt[(sid, at)] = Sample(ts, value)
    return {(sid, at): (prev.get((sid, at)), nxt.get((sid, at))) for sid in chunk for at in instants}


def _clock_sums(
    conn: Connection, series_ids: list[int], cuts: list[int], clocks: Iterable[int], tz: str
) -> dict[tuple[int, int], tuple[list[float], int]]:
    """(series, piece) -> (usage per local clock hour 0-23, decreases) over each piece [cuts[i], cuts[i+1]).

    Read as ``split_tou`` reads it, at the instants where a period changes: the counter is read (interpolated
    from the rollup hours around it) only at the local clock hours in ``clocks`` (the tariffs' period changes)
    and at midnight, and the usage between two such instants is spread evenly over the hours between them, which
    all lie in one period. A missing reading makes the stretch before it longer (it counts from the clock
    hour the stretch began at); a stretch where the counter went down counts as a decrease, not as usage.
    """
    offset = _offset_ms(cuts[0], tz)
    if offset != _offset_ms(cuts[-1], tz):
        raise ValueError(f"the UTC offset of {tz} changes inside the period; time of use needs a fixed offset")
    day = sorted(set(clocks) | {0})
    marks = sorted(
        {t for t in range(cuts[0], cuts[-1] + 1, HOUR_MS) if (t + offset) // HOUR_MS % 24 in day} | set(cuts)
    )
    hours = sorted(set(marks) | {m - HOUR_MS for m in marks})
    piece = " + ".join(f"CASE WHEN since >= {int(c)} THEN 1 ELSE 0 END" for c in cuts[1:-1]) or "0"
    query = _clock_query(conn.dialect.name == "postgresql", piece)
    span = {c: ((day[(i + 1) % len(day)] - c - 1) % 24) + 1 for i, c in enumerate(day)}
    out: dict[tuple[int, int], tuple[list[float], int]] = {}
    params = {"offset": offset, "hours": hours, "marks": marks}
    for rows in _fetch_chunks(conn, query, series_ids, params):
        for sid, p, clock, used, dec in rows:
            sums, decreases = out.setdefault((sid, int(p)), ([0.0] * 24, 0))
            length = span.get(int(clock), 1)
            for h in range(int(clock), int(clock) + length):
                sums[h % 24] += float(used or 0.0) / length
            out[(sid, int(p))] = (sums, decreases + int(dec or 0))
    return out


_CLOCK_VALUES = (
    "SELECT {key}hour_start, CASE"
    " WHEN first_ts = hour_start OR prev_ts IS NULL THEN first_value"
    " WHEN first_value < prev THEN prev"
    " ELSE prev + (first_value - prev) * (hour_start - prev_ts) / (first_ts - prev_ts)"
    " END AS v"
    " FROM (SELECT {key}hour_start, first_ts, first_value,"
    f"  CASE WHEN lag(hour_start) OVER h = hour_start - {HOUR_MS} THEN lag(last_ts) OVER h END AS prev_ts,"
    f"  CASE WHEN lag(hour_start) OVER h = hour_start - {HOUR_MS} THEN lag(last_value) OVER h END AS prev"
    "  FROM rollup_hours WHERE {rows}"
    "  WINDOW h AS ({partition}ORDER BY hour_start)) r"
    " WHERE hour_start IN :marks"
)
"""The counter at each mark hour: its first sample, or interpolated from the last sample of the hour before."""
_CLOCK_SUMS = (
    "SELECT {key}{piece} AS piece, ((since + :offset) / " + str(HOUR_MS) + ") % 24 AS clock,"
    " sum(CASE WHEN used > 0 THEN used ELSE 0 END) AS used, sum(CASE WHEN used < 0 THEN 1 ELSE 0 END) AS decreases"
    " FROM (SELECT {key}lag(hour_start) OVER w AS since, v - lag(v) OVER w AS used FROM ({values}) m"
    "  WINDOW w AS ({partition}ORDER BY hour_start)) d"
    " WHERE since IS NOT NULL GROUP BY {key}piece, clock"
)


def _clock_query(postgres: bool, piece: str) -> TextClause:
    """The usage between consecutive marks per series, piece and clock hour of the mark it starts at.

    PostgreSQL: one series at a time (LATERAL over the chunk's ids), so each reads its mark hours by primary key
    and sorts a few hundred rows; over a whole chunk the planner preferred scanning the entire table once per
    chunk (all months of every series) and sorting millions of rows. SQLite (small sites): one statement."""
    if not postgres:
        values = _CLOCK_VALUES.format(
            key="series_id, ", rows="series_id IN :series AND hour_start IN :hours", partition="PARTITION BY series_id "
        )
        sums = _CLOCK_SUMS.format(key="series_id, ", piece=piece, values=values, partition="PARTITION BY series_id ")
        return text(sums).bindparams(
            bindparam("series", expanding=True), bindparam("hours", expanding=True), bindparam("marks", expanding=True)
        )
    values = _CLOCK_VALUES.format(key="", rows="series_id = s.id AND hour_start IN :hours", partition="")
    sums = _CLOCK_SUMS.format(key="", piece=piece, values=values, partition="")
    return text(
        "SELECT s.id, d.piece, d.clock, d.used, d.decreases FROM unnest(CAST(:series AS integer[])) s(id)"
        f" CROSS JOIN LATERAL ({sums}) d"
    ).bindparams(bindparam("hours", expanding=True), bindparam("marks", expanding=True))


def _manual(session: Session, site_id: int, meter_ids: set[int]) -> dict[int, _Manual]:
    out: dict[int, _Manual] = defaultdict(_Manual)
    for meter_id, at, value in session.execute(
        select(MeterReading.meter_id, MeterReading.read_at, MeterReading.value).where(MeterReading.site_id == site_id)
    ):
        if meter_id in meter_ids:
            out[meter_id].points[_ms(at)] = (value, "manual")
    for meter_id, at, value in session.execute(
        select(ReadingCorrection.meter_id, ReadingCorrection.read_at, ReadingCorrection.new_value)
        .where(ReadingCorrection.site_id == site_id)
        .order_by(ReadingCorrection.id)
    ):
        if meter_id in meter_ids:
            out[meter_id].points[_ms(at)] = (value, "corrected")
    for meter_id, at, old_final, new_initial in session.execute(
        select(
            ReplacementRow.meter_id, ReplacementRow.replaced_at, ReplacementRow.old_final, ReplacementRow.new_initial
        ).where(ReplacementRow.site_id == site_id)
    ):
        if meter_id in meter_ids:
            out[meter_id].replacements.append(MeterReplacement(_ms(at), old_final, new_initial))
    for manual in out.values():
        manual.replacements.sort(key=lambda r: r.at_ms)
    return dict(out)
