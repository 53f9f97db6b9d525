"""One evaluation pass: new edge events and new samples, read by cursors kept in the database, then the state
checks (offline, leak, abnormal consumption) that depend on the clock.

Durable: the cursors commit with the alarms they caused, so a restart neither misses nor repeats anything.
Event ids are read past gaps: an id missing below the highest seen may belong to an ingest transaction still
open (PostgreSQL hands ids out before commit), so it is looked at again until it appears or HOLE_TTL_MS passes.
Samples are read per watched series by (ts, seq); a sample arriving with a ts older than its series' cursor
(a backlog replayed after an outage) is not evaluated by hub thresholds; the edge evaluates its own rules on
every reading and its alarm events are never skipped.

Several replicas: a pass runs under a transaction-scoped advisory lock on PostgreSQL (a replica finding it
taken skips the pass) and under SQLite's write lock; the unique ``active_key`` stops a double raise anyway.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast as type_cast

from sqlalchemy import Engine, String, and_, cast, func, literal, or_, select, text, tuple_
from sqlalchemy.orm import Session, aliased

from cloud.alarms import checks
from cloud.alarms.assets import Assets, asset_key
from cloud.alarms.models import AlarmCondition, AlarmCursor, AlarmRule, RuleKind, Severity
from cloud.alarms.rules import DEFAULT_FLAP_WINDOW_S, ThresholdParams, parse_params
from cloud.alarms.services import Fault, clear_fault, open_alarm, raise_alarm
from cloud.alarms.texts import TEXTS
from cloud.console.i18n import DEFAULT_LANG
from cloud.db import is_postgres, session_factory
from cloud.ingest.models import EventRow
from cloud.registry.models import Device, Edge, Equipment, Meter, PointMapping, Site
from cloud.timeseries.models import Sample, Series
from protocols.messages import EventType

log = logging.getLogger(__name__)

LOCK_KEY = 0x45485F414C41524D  # "EH_ALARM"
EVENT_BATCH = 2000
SAMPLE_BATCH = 5000
HOLE_TTL_MS = 60_000
MAX_HOLES = 1000
WATCH_TTL_S = 10.0
NEW_SERIES_LOOKBACK_MS = 3_600_000
"""A series seen by a threshold rule for the first time, and events on the first pass ever, are read from
this long before now (not from the beginning of history)."""
EVENT_RULE_KINDS = {
    EventType.COUNTER_DECREASE: RuleKind.TAMPER,
    EventType.COUNTER_ROLLOVER: RuleKind.COUNTER_ROLLOVER,
    EventType.METER_REPLACED: RuleKind.METER_REPLACED,
}


@dataclass
class PassResult:
    ran: bool
    """False when another replica held the lock."""
    events: int = 0
    samples: int = 0


@dataclass(frozen=True)
class _Watch:
    """A threshold rule on one series."""

    rule: AlarmRule
    params: ThresholdParams
    series_id: int
    equipment_id: int | None
    meter_id: int | None
    label: str
    edge: str
    device: str


@dataclass
class _Pass:
    session: Session
    now: datetime
    assets: Assets
    result: PassResult = field(default_factory=lambda: PassResult(ran=True))


class Evaluator:
    """Runs passes on an engine; ``run_once(now)`` is what the worker loops over and tests call directly."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = is_postgres(engine)
        self._sessions = session_factory(engine)
        self._watched: list[int] = []
        self._watched_at = -WATCH_TTL_S

    def run_once(self, now: datetime | None = None, *, clock_checks: bool = True) -> PassResult:
        """Evaluate what is new; with ``clock_checks`` also the offline, leak and consumption rules."""
        now = now or datetime.now(UTC)
        with self._sessions.begin() as session:
            if not self._lock(session):
                return PassResult(ran=False)
            p = _Pass(session, now, Assets(session))
            self._events(p)
            self._thresholds(p)
            if clock_checks:
                checks.run(session, now)
            return p.result

    def pending(self) -> bool:
        """The cheap "anything new?" a poll asks: events past the cursor or open holes, or a watched series
        with a sample newer than its cursor (the watched series are looked up again every WATCH_TTL_S)."""
        with self._sessions() as session:
            top = session.scalar(select(func.max(EventRow.id))) or 0
            cursor = session.execute(
                select(AlarmCursor.position, AlarmCursor.holes).where(AlarmCursor.key == "events")
            ).first()
            if cursor is None or top > cursor.position or cursor.holes:
                return True
            if time.monotonic() >= self._watched_at + WATCH_TTL_S:
                self._watched = sorted({w.series_id for w in _watches(session)})
                self._watched_at = time.monotonic()
            if not self._watched:
                return False
            newest_ts = select(func.max(Sample.ts)).where(Sample.series_id == Series.id).scalar_subquery()
            position = (
                select(AlarmCursor.position)
                .where(AlarmCursor.key == literal("series:") + cast(Series.id, String))
                .scalar_subquery()
            )
            rows = session.execute(select(newest_ts, position).where(Series.id.in_(self._watched))).all()
        pairs = type_cast(list[tuple[int | None, int | None]], rows)
        return any(newest is not None and (seen is None or newest > seen) for newest, seen in pairs)

    def _lock(self, session: Session) -> bool:
        conn = session.connection()
        if self._postgres:
            return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar())
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        return True

    # --- events ------------------------------------------------------------------------------------------------

    def _events(self, p: _Pass) -> None:
        cursor = p.session.get(AlarmCursor, "events", with_for_update=True)
        if cursor is None:  # first pass ever: from an hour back, not from the first event ever stored
            since = _ms(p.now) - NEW_SERIES_LOOKBACK_MS
            start = p.session.scalar(select(func.max(EventRow.id)).where(EventRow.ts < since)) or 0
            cursor = _cursor(p.session, "events", start)
        now_ms = _ms(p.now)
        holes = {int(i): int(t) for i, t in cursor.holes}
        rows = p.session.scalars(
            select(EventRow)
            .where(or_(EventRow.id > cursor.position, EventRow.id.in_(holes)))
            .order_by(EventRow.id)
            .limit(EVENT_BATCH)
        ).all()
        seen = {r.id for r in rows}
        top = max((r.id for r in rows), default=cursor.position)
        top = max(top, cursor.position)
        for missing in range(cursor.position + 1, top):
            if missing not in seen:
                holes.setdefault(missing, now_ms)
        kept = sorted((i, t) for i, t in holes.items() if i not in seen and now_ms - t < HOLE_TTL_MS)
        cursor.position, cursor.holes = top, [[i, t] for i, t in kept[-MAX_HOLES:]]
        for row in rows:
            self._event(p, row)
        p.result.events += len(rows)

    def _event(self, p: _Pass, row: EventRow) -> None:
        try:
            type_ = EventType(row.type)
        except ValueError:
            return
        if type_ in (EventType.ALARM_RAISED, EventType.ALARM_CLEARED):
            self._edge_alarm(p, row, type_)
        elif type_ in EVENT_RULE_KINDS:
            self._counter_event(p, row, EVENT_RULE_KINDS[type_])

    def _edge_alarm(self, p: _Pass, row: EventRow, type_: EventType) -> None:
        """Edge rules pass straight through: one alarm per edge rule and device point, no hub rule needed."""
        asset = p.assets.point(row.site, row.edge, row.device, row.point)
        if asset is None:
            log.warning("alarms: %s from %s/%s, a site the registry does not know; not raised", type_, row.site,
                        row.edge)  # fmt: skip
            return
        rule = str(row.data.get("rule") or f"{row.device}.{row.point}")
        source, where = f"edge:{row.edge}:{rule}", f"device:{row.edge}/{row.device}/{row.point}"
        at = _at(row.ts)
        value = _number(row.data.get("value"))
        if type_ is EventType.ALARM_CLEARED:
            clear_fault(p.session, source, where, at, p.now, value=value, message=row.message)
            return
        severity = _severity(row.data.get("severity"))
        fault = Fault(
            site_id=asset.site_id, source_key=source, asset_key=where, kind=RuleKind.EDGE_ALARM, severity=severity,
            title=_title(RuleKind.EDGE_ALARM, asset.label), message=row.message, flap_window_s=DEFAULT_FLAP_WINDOW_S,
            equipment_id=asset.equipment_id, meter_id=asset.meter_id, edge=row.edge, device=row.device,
            point=row.point, value=value, data={"edge_rule": rule, "event_id": row.id, **row.data},
        )  # fmt: skip
        raise_alarm(p.session, fault, at, p.now, repeat=True)

    def _counter_event(self, p: _Pass, row: EventRow, kind: RuleKind) -> None:
        asset = p.assets.point(row.site, row.edge, row.device, row.point)
        if asset is None or asset.meter_id is None:
            return
        rules = p.session.scalars(
            select(AlarmRule).where(
                AlarmRule.site_id == asset.site_id,
                AlarmRule.kind == kind,
                AlarmRule.enabled.is_(True),
                or_(AlarmRule.meter_id.is_(None), AlarmRule.meter_id == asset.meter_id),
            )  # fmt: skip
        ).all()
        for rule in rules:
            params = parse_params(kind, rule.params)
            fault = Fault(
                site_id=asset.site_id, source_key=f"rule:{rule.id}", asset_key=asset_key(None, asset.meter_id),
                kind=kind, severity=rule.severity, title=_title(kind, asset.label), message=row.message,
                flap_window_s=params.flap_window_s, rule_id=rule.id, meter_id=asset.meter_id, edge=row.edge,
                device=row.device, point=row.point, value=_number(row.data.get("current")),
                data={"event_id": row.id, **row.data},
            )  # fmt: skip
            raise_alarm(p.session, fault, _at(row.ts), p.now, repeat=True)

    # --- thresholds on samples -----------------------------------------------------------------------------------

    def _thresholds(self, p: _Pass) -> None:
        by_series: dict[int, list[_Watch]] = defaultdict(list)
        for watch in _watches(p.session):
            by_series[watch.series_id].append(watch)
        if not by_series:
            return
        newest_ts = select(func.max(Sample.ts)).where(Sample.series_id == Series.id).scalar_subquery()
        rows = p.session.execute(select(Series.id, newest_ts).where(Series.id.in_(by_series))).all()
        newest = dict(type_cast(list[tuple[int, int | None]], rows))
        for series_id, watches in by_series.items():
            cursor = _cursor(p.session, f"series:{series_id}", _ms(p.now) - NEW_SERIES_LOOKBACK_MS)
            latest = newest.get(series_id)
            if latest is None or latest < cursor.position:
                continue
            samples = p.session.execute(
                select(Sample.ts, Sample.seq, Sample.value, Sample.quality)
                .where(
                    Sample.series_id == series_id, tuple_(Sample.ts, Sample.seq) > tuple_(cursor.position, cursor.seq)
                )  # fmt: skip
                .order_by(Sample.ts, Sample.seq)
                .limit(SAMPLE_BATCH)
            ).all()
            if not samples:
                continue
            good = [(ts, value) for ts, _seq, value, quality in samples if quality == 0]
            for watch in watches:
                self._step(p, watch, good)
            cursor.position, cursor.seq = samples[-1].ts, samples[-1].seq
            p.result.samples += len(samples)

    def _step(self, p: _Pass, w: _Watch, samples: list[tuple[int, float]]) -> None:
        """Hysteresis and minimum durations over the new samples, in time order."""
        cond = p.session.scalars(
            select(AlarmCondition).where(AlarmCondition.rule_id == w.rule.id, AlarmCondition.series_id == w.series_id)
        ).first()
        if cond is None:
            cond = AlarmCondition(rule_id=w.rule.id, series_id=w.series_id)
            p.session.add(cond)
        source, where = f"rule:{w.rule.id}", asset_key(w.equipment_id, w.meter_id)
        is_open = open_alarm(p.session, source, where) is not None
        prm = w.params
        raise_ms, clear_ms = int(prm.raise_after_s * 1000), int(prm.clear_after_s * 1000)
        for ts, value in samples:
            if not is_open:
                cond.back_since = None
                if not prm.beyond(value):
                    cond.beyond_since = None
                    continue
                cond.beyond_since = ts if cond.beyond_since is None else cond.beyond_since
                if ts - cond.beyond_since >= raise_ms:
                    raise_alarm(p.session, self._fault(w, value, cond.beyond_since, ts), _at(ts), p.now)
                    is_open, cond.beyond_since = True, None
            else:
                cond.beyond_since = None
                if not prm.back(value):
                    cond.back_since = None
                    continue
                cond.back_since = ts if cond.back_since is None else cond.back_since
                if ts - cond.back_since >= clear_ms:
                    message = (f"{w.device}.{w.rule.point} = {value:g}，已恢复"
                               f"（限值 {prm.limit:g}，回差 {prm.hysteresis:g}）")  # fmt: skip
                    clear_fault(p.session, source, where, _at(ts), p.now, value=value, message=message)
                    is_open, cond.back_since = False, None

    @staticmethod
    def _fault(w: _Watch, value: float, since_ms: int, ts: int) -> Fault:
        prm = w.params
        side = "高于" if prm.above is not None else "低于"
        seconds = (ts - since_ms) / 1000
        message = f"{w.device}.{w.rule.point} = {value:g}，{side}限值 {prm.limit:g} 已 {seconds:.0f} 秒"
        return Fault(
            site_id=w.rule.site_id, source_key=f"rule:{w.rule.id}", asset_key=asset_key(w.equipment_id, w.meter_id),
            kind=RuleKind.THRESHOLD, severity=w.rule.severity, title=_title(RuleKind.THRESHOLD, w.label),
            message=message, flap_window_s=prm.flap_window_s, rule_id=w.rule.id, equipment_id=w.equipment_id,
            meter_id=w.meter_id, edge=w.edge, device=w.device, point=w.rule.point, value=value,
            data={"rule": w.rule.name, "limit": prm.limit, "hysteresis": prm.hysteresis},
        )  # fmt: skip


def _watches(session: Session) -> list[_Watch]:
    """Every enabled threshold rule on every series it covers (by equipment, equipment type or meter)."""
    m, eq = PointMapping, aliased(Equipment)
    rows = session.execute(
        select(AlarmRule, Series.id, m.equipment_id, m.meter_id, eq.name, Meter.code, Edge.code, Device.name)
        .join(m, m.point == AlarmRule.point)
        .join(Device, and_(Device.id == m.device_id, Device.site_id == AlarmRule.site_id))
        .join(Edge, Edge.id == Device.edge_id)
        .join(Site, Site.id == Edge.site_id)
        .join(
            Series,
            and_(
                Series.site == Site.code,
                Series.edge == Edge.code,
                Series.device == Device.name,
                Series.point == m.point,
            ),
        )  # fmt: skip
        .outerjoin(eq, eq.id == m.equipment_id)
        .outerjoin(Meter, Meter.id == m.meter_id)
        .where(AlarmRule.kind == RuleKind.THRESHOLD, AlarmRule.enabled.is_(True))
        .where(
            or_(
                and_(AlarmRule.equipment_id.is_not(None), AlarmRule.equipment_id == m.equipment_id),
                and_(AlarmRule.meter_id.is_not(None), AlarmRule.meter_id == m.meter_id),
                and_(AlarmRule.equipment_type.is_not(None), eq.type == AlarmRule.equipment_type),
            )
        )  # fmt: skip
        .order_by(AlarmRule.id, Series.id)
    ).all()
    return [
        _Watch(
            rule,
            type_cast(ThresholdParams, parse_params(rule.kind, rule.params)),
            series_id,
            equipment_id,
            meter_id,
            eq_name or meter_code or device,
            edge,
            device,
        )  # fmt: skip
        for rule, series_id, equipment_id, meter_id, eq_name, meter_code, edge, device in rows
    ]


def _cursor(session: Session, key: str, start: int) -> AlarmCursor:
    cursor = session.get(AlarmCursor, key, with_for_update=True)
    if cursor is None:
        cursor = AlarmCursor(key=key, position=start, seq=0, holes=[])
        session.add(cursor)
    return cursor


def _title(kind: RuleKind, label: str) -> str:
    return f"{TEXTS[f'alarm_kind_{kind.value}'][DEFAULT_LANG]}：{label}"


def _severity(value: object) -> Severity:
    try:
        return Severity(str(value))
    except ValueError:
        return Severity.WARNING


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _at(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
