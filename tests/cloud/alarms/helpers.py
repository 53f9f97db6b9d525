"""Alarm test helpers: rules, samples and edge events written as ingest would, technicians, and a clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from cloud.alarms.models import Alarm, AlarmRule, AlarmTransition, RuleKind, Severity
from cloud.auth.models import Role
from cloud.db import session_factory
from cloud.ingest.models import EventRow
from cloud.tickets.models import Technician, Ticket
from cloud.timeseries.bulk import SeriesIds, write_samples
from cloud.timeseries.rollup import mark_dirty, series_hours
from tests.cloud.api.hub_app import Hub, add_user

SITE, EDGE = "demo-site", "demo-edge"
PUMP = (SITE, EDGE, "pump-station", "outlet_pressure")
WATER_B = (SITE, EDGE, "b2-u01-water", "forward_total")
ELEC_B = (SITE, EDGE, "b2-u01-elec", "energy_import")
QUANTITY = {"outlet_pressure": "pressure_kpa", "forward_total": "water_volume_m3", "energy_import": "energy_import_kwh"}
_seqs = count(1_000_000)


def at(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def add_rule(hub: Hub, kind: RuleKind, name: str = "rule", *, site: str = "site_x",
             severity: Severity = Severity.CRITICAL, **fields: Any) -> int:  # fmt: skip
    now = datetime.now(UTC)
    with session_factory(hub.engine).begin() as session:
        rule = AlarmRule(site_id=hub.ids[site], name=name, kind=kind, severity=severity, created_at=now,
                         updated_at=now, **{"params": {}, "enabled": True, **fields})  # fmt: skip
        session.add(rule)
        session.flush()
        return rule.id


def samples(engine: Engine, key: tuple[str, str, str, str], points: Iterable[tuple[datetime, float]]) -> None:
    """Readings stored as the ingest store stores them (with their hours marked for the rollups)."""
    with engine.begin() as conn:
        series_id = SeriesIds().resolve(conn, {key: QUANTITY[key[3]]})[key]
        rows = [(series_id, at(t), next(_seqs), value, 0) for t, value in points]
        write_samples(conn, rows)
        mark_dirty(conn, series_hours(rows))


def event(engine: Engine, type_: str, moment: datetime, *, device: str | None = "pump-station",
          point: str | None = "outlet_pressure", message: str = "", site: str = SITE, edge: str = EDGE,
          **data: Any) -> None:  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(EventRow), [{"site": site, "edge": edge, "seq": next(_seqs), "ts": at(moment),
                                         "type": type_, "device": device, "point": point, "message": message,
                                         "data": data}])  # fmt: skip


def every(start: datetime, step: timedelta, values: Iterable[float]) -> list[tuple[datetime, float]]:
    return [(start + i * step, v) for i, v in enumerate(values)]


def alarms(engine: Engine) -> list[Alarm]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(Alarm).order_by(Alarm.id)))


def transitions(engine: Engine, alarm_id: int) -> list[tuple[str, str]]:
    with session_factory(engine)() as session:
        rows = session.execute(select(AlarmTransition.reason, AlarmTransition.to_state)
                               .where(AlarmTransition.alarm_id == alarm_id).order_by(AlarmTransition.id))  # fmt: skip
        return [(reason, state.value) for reason, state in rows]


def tickets(engine: Engine) -> list[Ticket]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(Ticket).where(Ticket.alarm_id.is_not(None)).order_by(Ticket.id)))


def add_technician(session: Session, hub: Hub, name: str, skills: list[str], site: str = "site_x") -> int:
    user = add_user(session, name, Role.TECHNICIAN, sites=[hub.ids[site]], phone="13800000001")
    session.add(Technician(user_id=user.id, site_id=hub.ids[site], skills=skills, zone_building_ids=[],
                           on_duty=True))  # fmt: skip
    session.flush()
    return user.id
