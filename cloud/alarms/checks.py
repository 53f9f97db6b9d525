"""Rules that depend on the clock rather than on what just arrived: meter offline, edge offline, leak and
abnormal consumption. Each check looks at the state now and raises or clears to match, so running it again
changes nothing; leak and consumption alarms remember the night or day they are about, so an alarm a person
cleared is not raised again for the same period.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.alarms.models import Alarm, AlarmRule, RuleKind
from cloud.alarms.rules import (
    AbnormalConsumptionParams,
    EdgeOfflineParams,
    LeakParams,
    MeterOfflineParams,
    parse_params,
)
from cloud.alarms.services import Fault, clear_fault, raise_alarm
from cloud.alarms.texts import TEXTS
from cloud.console.i18n import DEFAULT_LANG
from cloud.ingest.models import EdgeStateRow
from cloud.registry.models import Edge, Meter, MeterKind, Site
from cloud.registry.services import MAIN_QUANTITY, mapped_series
from cloud.timeseries import query
from cloud.timeseries.query import DEFAULT_TZ
from protocols.quantities import PointKind

TZ = ZoneInfo(DEFAULT_TZ)


def run(session: Session, now: datetime) -> None:
    rules = session.scalars(
        select(AlarmRule).where(AlarmRule.enabled.is_(True), AlarmRule.kind.in_(list(_CHECKS))).order_by(AlarmRule.id)
    ).all()
    for rule in rules:
        _CHECKS[rule.kind](session, rule, now)


def _meters(session: Session, rule: AlarmRule, kind: MeterKind | None = None) -> list[Meter]:
    query_ = select(Meter).where(Meter.site_id == rule.site_id).order_by(Meter.id)
    if rule.meter_id is not None:
        query_ = query_.where(Meter.id == rule.meter_id)
    elif kind is not None:
        query_ = query_.where(Meter.kind == kind)
    return list(session.scalars(query_))


def _fault(rule: AlarmRule, meter: Meter | None, edge: str | None, message: str, flap_window_s: float,
           value: float | None = None, data: dict[str, object] | None = None) -> Fault:  # fmt: skip
    label = meter.code if meter is not None else edge or ""
    title = f"{TEXTS[f'alarm_kind_{rule.kind.value}'][DEFAULT_LANG]}：{label}"
    return Fault(
        site_id=rule.site_id, source_key=f"rule:{rule.id}",
        asset_key=f"meter:{meter.id}" if meter is not None else f"edge:{edge}", kind=rule.kind,
        severity=rule.severity, title=title, message=message, flap_window_s=flap_window_s, rule_id=rule.id,
        meter_id=meter.id if meter is not None else None, edge=edge, value=value, data=dict(data or {}),
    )  # fmt: skip


def meter_offline(session: Session, rule: AlarmRule, now: datetime) -> None:
    """No reading for ``intervals`` poll intervals; cleared by the next reading. Meters that never sent a
    reading are not watched (not commissioned yet)."""
    prm = parse_params(rule.kind, rule.params)
    assert isinstance(prm, MeterOfflineParams)
    meters = {m.id: m for m in _meters(session, rule)}
    series: dict[int, list[int]] = defaultdict(list)
    for mapped in mapped_series(session, meter_ids=list(meters)):
        if mapped.series_id is not None and mapped.meter_id is not None:
            series[mapped.meter_id].append(mapped.series_id)
    latest = query.latest(session.connection(), [s for ids in series.values() for s in ids])
    limit_ms = int(prm.interval_s * prm.intervals * 1000)
    for meter_id, ids in series.items():
        last = max((latest[s].ts for s in ids if s in latest), default=None)
        if last is None:
            continue
        meter, since = meters[meter_id], _at(last)
        if _ms(now) - last > limit_ms:
            message = (f"{meter.code} 自 {since.astimezone(TZ):%Y-%m-%d %H:%M:%S} 起无读数"
                       f"（超过 {prm.intervals} 个采集周期）")  # fmt: skip
            raise_alarm(session, _fault(rule, meter, None, message, prm.flap_window_s), _at(last + limit_ms), now)
        else:
            clear_fault(session, f"rule:{rule.id}", f"meter:{meter_id}", since, now, message=f"{meter.code} 恢复上报")


def edge_offline(session: Session, rule: AlarmRule, now: datetime) -> None:
    """The edge's latest status says offline (its MQTT will), for at least ``after_s``; cleared by an online
    status."""
    prm = parse_params(rule.kind, rule.params)
    assert isinstance(prm, EdgeOfflineParams)
    rows = session.execute(
        select(Edge.code, EdgeStateRow.online, EdgeStateRow.status_at)
        .join(Site, Site.id == Edge.site_id)
        .join(EdgeStateRow, (EdgeStateRow.site == Site.code) & (EdgeStateRow.edge == Edge.code))
        .where(Edge.site_id == rule.site_id)
    ).all()
    for code, online, status_at in rows:
        if online is None or status_at is None:
            continue
        if not online and now - status_at >= timedelta(seconds=prm.after_s):
            message = f"网关 {code} 自 {status_at.astimezone(TZ):%Y-%m-%d %H:%M:%S} 起离线"
            raise_alarm(session, _fault(rule, None, code, message, prm.flap_window_s), status_at, now)
        elif online:
            clear_fault(session, f"rule:{rule.id}", f"edge:{code}", status_at, now, message=f"网关 {code} 恢复在线")


def leak(session: Session, rule: AlarmRule, now: datetime) -> None:
    """The last complete night: every hour from night_start_hour to night_end_hour (local) used more than
    the floor. A later night that is not raises nothing and clears it."""
    prm = parse_params(rule.kind, rule.params)
    assert isinstance(prm, LeakParams)
    local = now.astimezone(TZ)
    end = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=prm.night_end_hour)
    if end > local:
        end -= timedelta(days=1)
    start = end - timedelta(hours=prm.night_end_hour - prm.night_start_hour)
    night = f"{start:%Y-%m-%d}"
    for meter, series_id in _counters(session, _meters(session, rule, MeterKind.WATER)):
        hours = query.buckets(session.connection(), series_id, PointKind.COUNTER, _ms(start), _ms(end), "hour")
        used = [b.consumption for b in hours]
        if used and all(u is not None and u > prm.floor for u in used):
            lowest = min(u for u in used if u is not None)
            message = (f"{meter.code} 夜间 {prm.night_start_hour:02d}:00-{prm.night_end_hour:02d}:00 每小时用量均超过 "
                       f"{prm.floor:g}（最低 {lowest:g}），疑似漏水")  # fmt: skip
            fault = _fault(rule, meter, None, message, prm.flap_window_s, lowest, {"period": night})
            if not _raised_for(session, fault, night):
                raise_alarm(session, fault, end.astimezone(UTC), now)
        else:
            clear_fault(session, f"rule:{rule.id}", f"meter:{meter.id}", end.astimezone(UTC), now,
                        message=f"{meter.code} {night} 夜间用量正常")  # fmt: skip


def abnormal_consumption(session: Session, rule: AlarmRule, now: datetime) -> None:
    """Yesterday (local) above factor x the median of the ``days`` before it (days with readings only, at
    least three of them); a normal later day clears it."""
    prm = parse_params(rule.kind, rule.params)
    assert isinstance(prm, AbnormalConsumptionParams)
    today = now.astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=prm.days + 1)
    day = f"{today - timedelta(days=1):%Y-%m-%d}"
    for meter, series_id in _counters(session, _meters(session, rule)):
        days = query.buckets(session.connection(), series_id, PointKind.COUNTER, _ms(first), _ms(today), "day")
        *before, last = days
        history = [b.consumption for b in before if b.count and b.consumption is not None]
        if len(history) < 3 or last.consumption is None or not last.count:
            continue
        median = statistics.median(history)
        used = last.consumption
        if used >= prm.min_daily and used > prm.factor * median:
            message = (f"{meter.code} {day} 用量 {used:g}，"
                       f"超过近 {len(history)} 天中位数 {median:g} 的 {prm.factor:g} 倍")  # fmt: skip
            fault = _fault(rule, meter, None, message, prm.flap_window_s, used, {"period": day, "median": median})
            if not _raised_for(session, fault, day):
                raise_alarm(session, fault, today.astimezone(UTC), now)
        else:
            clear_fault(session, f"rule:{rule.id}", f"meter:{meter.id}", today.astimezone(UTC), now,
                        value=used, message=f"{meter.code} {day} 用量正常")  # fmt: skip


def _counters(session: Session, meters: Iterable[Meter]) -> list[tuple[Meter, int]]:
    """Each meter with the series of the counter it is billed by."""
    by_id = {m.id: m for m in meters}
    out = []
    for mapped in mapped_series(session, meter_ids=list(by_id)):
        meter = by_id.get(mapped.meter_id or -1)
        if meter is not None and mapped.series_id is not None and mapped.quantity == MAIN_QUANTITY[meter.kind.value]:
            out.append((meter, mapped.series_id))
    return out


def _raised_for(session: Session, fault: Fault, period: str) -> bool:
    """An alarm is open, or one about this period exists already (cleared by a person, say)."""
    last = session.scalars(
        select(Alarm)
        .where(Alarm.source_key == fault.source_key, Alarm.asset_key == fault.asset_key)
        .order_by(Alarm.id.desc())
        .limit(1)
    ).first()
    return last is not None and (last.cleared_at is None or last.data.get("period") == period)


def _at(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


_CHECKS = {
    RuleKind.METER_OFFLINE: meter_offline,
    RuleKind.EDGE_OFFLINE: edge_offline,
    RuleKind.LEAK: leak,
    RuleKind.ABNORMAL_CONSUMPTION: abnormal_consumption,
}
