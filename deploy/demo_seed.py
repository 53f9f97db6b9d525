"""What `make demo` puts in the hub besides the registry, so every page has something to show: staff logins,
the billing setup with last month's hourly history and its issued bills, an owner bound to one unit,
technicians, a pump alarm rule and maintenance plan, and a patrol route with a daily plan and a guard badge.

Everything goes through the owning domain's services, with their validation. Each step first looks for what
it made before and then does nothing, so a second run on the same work directory changes nothing.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cloud.alarms.models import AlarmRule, RuleKind, Severity
from cloud.alarms.routes import create_rule
from cloud.alarms.schemas import RuleIn
from cloud.api.scope import Scope
from cloud.audit.services import Actor
from cloud.auth import binding
from cloud.auth.models import User
from cloud.auth.schemas import StaffRole, UserCreate
from cloud.auth.services import create_user
from cloud.billing.compute import month_instant
from cloud.billing.demo import seed_demo_billing
from cloud.billing.models import Bill, MeterReading, ReadingSource
from cloud.billing.readings import NewReading, import_readings
from cloud.billing.runs import default_due_date, execute_run, parse_period, start_run
from cloud.db import session_factory
from cloud.maintenance.models import EquipmentType, ItemKind, MaintenancePlan, PeriodUnit
from cloud.maintenance.schemas import EquipmentTypeIn, ItemIn, PlanIn
from cloud.maintenance.services import create_plan, create_type
from cloud.patrol.checkpoints import CheckpointSpec, create_checkpoint
from cloud.patrol.keys import badge_code
from cloud.patrol.models import Checkpoint, CheckpointMethod, PatrolPlan, PatrolRoute, Recurrence
from cloud.patrol.plans import generate
from cloud.patrol.routes import PlanIn as PatrolPlanIn
from cloud.patrol.routes import add_plan
from cloud.patrol.routes_tour import Stop, create_route
from cloud.registry.demo import demo_registry
from cloud.registry.importer import import_registry, parse_data
from cloud.registry.models import Building, Device, Edge, Equipment, Meter, MeterRole, PointMapping, Site, Unit
from cloud.registry.services import MAIN_QUANTITY
from cloud.settings import HubSettings
from cloud.tickets.models import Category, Technician
from cloud.tickets.technicians import upsert_technician
from cloud.timeseries.bulk import SampleRow, SeriesIds, SeriesKey, write_samples
from cloud.timeseries.models import Sample
from cloud.timeseries.query import DEFAULT_TZ
from cloud.timeseries.rollup import HOUR_MS, mark_dirty, series_hours
from firmware_sims.device import SimulatedDevice
from firmware_sims.load_shape import DailyShape

SITE = "demo-site"
ADMIN = "demo"
OWNER_UNIT = "1-0101"
PUMP = "PUMP-01"
ACTOR = Actor("demo")
TZ = ZoneInfo(DEFAULT_TZ)
PAY_WITHIN = timedelta(days=14)


@dataclass(frozen=True)
class Login:
    role: str
    username: str
    password: str


@dataclass(frozen=True)
class StaffMember:
    username: str
    full_name: str
    role: StaffRole
    skills: tuple[Category, ...] = ()
    """Technicians only: what dispatch may send them."""


STAFF = (
    StaffMember("demo-finance", "演示财务", "finance"),
    StaffMember("demo-plumber", "王师傅", "technician", (Category.PLUMBING, Category.GENERAL)),
    StaffMember("demo-electrician", "李师傅", "technician", (Category.ELECTRICAL,)),
    StaffMember("demo-guard", "赵保安", "guard"),
)


@dataclass(frozen=True)
class Seeded:
    """What the demo prints."""

    logins: list[Login]
    badge: str
    """The guard's signed badge code, for the simulated gate scanner."""
    period: str
    """The month whose bills are issued."""
    bills: int
    history_samples: int
    """Hourly readings written by this run (0 when they were there already)."""


def secret(workdir: Path, name: str, nbytes: int = 18) -> str:
    """A secret generated on the first run and kept in the work directory (mode 600)."""
    path = workdir / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


def seed_registry(engine: Engine, password: str) -> None:
    """The demo site's registry (from its site file) and the demo admin."""
    with session_factory(engine).begin() as session:
        import_registry(session, parse_data(demo_registry(), "demo registry"), ACTOR, "demo registry")
        if session.scalar(select(User.id).where(User.username == ADMIN)) is None:
            data = UserCreate(username=ADMIN, full_name="演示管理员", role="admin", password=password, all_sites=True)
            create_user(session, ACTOR, data)


def previous_month(now: datetime) -> tuple[int, int]:
    """The last calendar month that is over, in the site's time zone."""
    local = now.astimezone(TZ)
    return (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)


def seed_demo(
    engine: Engine,
    settings: HubSettings,
    workdir: Path,
    devices: Mapping[str, SimulatedDevice],
    shape: DailyShape,
    now: datetime,
) -> Seeded:
    """Everything the demo shows beyond the registry and the admin; ``devices`` are the running simulators,
    whose counters the synthetic history leads up to."""
    logins: list[Login] = []
    with session_factory(engine).begin() as session:
        site = session.scalars(select(Site).where(Site.code == SITE)).one()
        staff = {}
        for member in STAFF:
            password = secret(workdir, f"{member.username}-password")
            staff[member.username] = _staff_user(session, site, member, password)
            logins.append(Login(member.role, member.username, password))
        owner_password = secret(workdir, "owner-password")
        logins.append(Login("owner", _owner(session, settings, site, owner_password, now), owner_password))
        seed_demo_billing(session, ACTOR, SITE)
        admin = session.scalars(select(User).where(User.username == ADMIN)).one()
        _pump_alarm_rule(session, site, admin)
        _pump_maintenance(session, site, staff["demo-plumber"], now)
        badge = _patrol(session, site, staff["demo-guard"], now)
    written = seed_history(engine, devices, shape, now)
    year, month = previous_month(now)
    period = f"{year}-{month:02d}"
    with session_factory(engine).begin() as session:
        _read_public_meters(session, year, month, now)
    bills = issue_bills(engine, period, now)
    return Seeded(logins, badge, period, bills, written)


def _staff_user(session: Session, site: Site, member: StaffMember, password: str) -> User:
    user = session.scalars(select(User).where(User.username == member.username)).first()
    if user is None:
        data = UserCreate(username=member.username, full_name=member.full_name, role=member.role,
                          password=password, sites=[site.code])  # fmt: skip
        user = create_user(session, ACTOR, data)
    profile = select(Technician.id).where(Technician.user_id == user.id, Technician.site_id == site.id)
    if member.skills and session.scalar(profile) is None:
        upsert_technician(session, user, site.id, skills=member.skills, on_duty=True)
    return user


class _Inbox:
    """The demo owner's phone: keeps the binding SMS so the demo can answer it."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def send(self, phone: str, text: str) -> None:
        self.texts.append(text)


def _owner(session: Session, settings: HubSettings, site: Site, password: str, now: datetime) -> str:
    """The owner of OWNER_UNIT, bound as a real owner binds: a code by SMS to the registered number."""
    unit = session.scalars(select(Unit).where(Unit.site_id == site.id, Unit.code == OWNER_UNIT)).one()
    phone = unit.owner_phone
    if phone is None:
        raise ValueError(f"unit {OWNER_UNIT} has no registered owner phone to bind")
    if session.scalar(select(User.id).where(User.username == phone)) is None:
        inbox = _Inbox()
        binding.start(session, settings, inbox, phone, now)
        code = re.search(r"\b(\d{6})\b", inbox.texts[-1]) if inbox.texts else None
        if code is None:
            raise RuntimeError(f"no binding code reached {phone}: {inbox.texts}")
        binding.verify(session, settings, phone, code.group(1), password, now)
    return phone


def _pump_alarm_rule(session: Session, site: Site, admin: User) -> None:
    """Low outlet pressure on the pump, through the alarm API's own checks. The simulated pump holds 300 kPa
    with +-15 kPa of noise, so it dips below the limit now and then; the hysteresis band makes each dip one alarm."""
    name = "水泵出口压力低"
    if session.scalar(select(AlarmRule.id).where(AlarmRule.site_id == site.id, AlarmRule.name == name)) is not None:
        return
    pump = session.scalars(select(Equipment).where(Equipment.site_id == site.id, Equipment.code == PUMP)).one()
    body = RuleIn(site_id=site.id, name=name, kind=RuleKind.THRESHOLD, severity=Severity.WARNING, equipment_id=pump.id,
                  point="outlet_pressure", params={"below": 288.0, "hysteresis": 6.0, "raise_after_s": 5.0,
                                                   "clear_after_s": 10.0})  # fmt: skip
    create_rule(body, session, Scope.of(session, admin), admin)


PUMP_STANDARD = [
    ItemIn(name="出口压力", kind=ItemKind.READING, unit="kPa", min_value=Decimal(250), max_value=Decimal(450)),
    ItemIn(name="电机电流", kind=ItemKind.READING, unit="A", min_value=Decimal(0), max_value=Decimal(30)),
    ItemIn(name="机械密封无渗漏", kind=ItemKind.CHECK),
    ItemIn(name="联轴器与底座螺栓紧固", kind=ItemKind.CHECK),
]
"""The monthly inspection of a domestic water pump (readings outside a range fail the task and open a ticket)."""


def _pump_maintenance(session: Session, site: Site, plumber: User, now: datetime) -> None:
    """The pump's maintenance standard (its equipment type) and a monthly plan with the plumber responsible."""
    pump = session.scalars(select(Equipment).where(Equipment.site_id == site.id, Equipment.code == PUMP)).one()
    known = select(EquipmentType.id).where(EquipmentType.site_id == site.id, EquipmentType.code == pump.type)
    if session.scalar(known) is None:
        standard = EquipmentTypeIn(site_id=site.id, code=pump.type, name="生活水泵", period_unit=PeriodUnit.MONTH,
                                   period_count=1, items=PUMP_STANDARD)  # fmt: skip
        create_type(session, ACTOR, standard)
    if session.scalar(select(MaintenancePlan.id).where(MaintenancePlan.equipment_id == pump.id)) is None:
        plan = PlanIn(equipment_id=pump.id, name="生活水泵月度保养", responsible_id=plumber.id,
                      starts_on=now.astimezone(TZ).date(), lead_days=7, remind_days=2)  # fmt: skip
        create_plan(session, ACTOR, pump, plan, now)


CHECKPOINTS = (
    ("cp-north-gate", "北门岗亭", CheckpointMethod.SCANNER, None, "北门", 0),
    ("cp-b1-lobby", "1号楼大堂", CheckpointMethod.QR, "B1", "一层大堂", 180),
    ("cp-b2-lobby", "2号楼大堂", CheckpointMethod.QR, "B2", "一层大堂", 120),
    ("cp-pump-room", "生活水泵房", CheckpointMethod.QR, None, "地下一层", 240),
)
"""(code, name, method, building, location, walk from the previous stop in s); the gate's code is the one the
simulated gate scanner reports (firmware_sims/sites/demo_site.yaml)."""
ROUTE = "全天巡更"


def _patrol(session: Session, site: Site, guard: User, now: datetime) -> str:
    """Checkpoints, an unordered route and an all-day plan of hourly rounds for the guard; the guard's badge.
    A new plan's rounds start from the next hour; the round already running is added, so a badge scanned
    right after the demo starts counts."""
    existing = {c.code: c for c in session.scalars(select(Checkpoint).where(Checkpoint.site_id == site.id))}
    buildings = dict(session.execute(select(Building.code, Building.id).where(Building.site_id == site.id)).all())
    stops = []
    for code, name, method, building, location, walk_s in CHECKPOINTS:
        checkpoint = existing.get(code)
        if checkpoint is None:
            building_id = buildings[building] if building else None
            spec = CheckpointSpec(code, name, method, building_id=building_id,
                                  floor=None if building_id is None else 1, location=location)  # fmt: skip
            checkpoint = create_checkpoint(session, site.id, spec)
        stops.append(Stop(checkpoint.id, walk_s))
    route = session.scalars(
        select(PatrolRoute).where(PatrolRoute.site_id == site.id, PatrolRoute.name == ROUTE)
    ).first()
    if route is None:
        route = create_route(session, site.id, ROUTE, False, stops)
    if session.scalar(select(PatrolPlan.id).where(PatrolPlan.route_id == route.id)) is None:
        plan = PatrolPlanIn(route_id=route.id, name="全天每小时巡更", recurrence=Recurrence.DAILY,
                            start_date=now.astimezone(TZ).date(), shift_start=clock_time(0), shift_end=clock_time(0),
                            round_every_min=60, round_minutes=60, assignees=[guard.id])  # fmt: skip
        created = add_plan(site, plan, session)
        this_hour = now.replace(minute=0, second=0, microsecond=0)
        generate(session, session.get_one(PatrolPlan, created.id), plan.start_date, plan.start_date, this_hour)
    return badge_code(session, site.id, guard.id)


def seed_history(engine: Engine, devices: Mapping[str, SimulatedDevice], shape: DailyShape, now: datetime) -> int:
    """Hourly readings of every meter's billing counter from a day before last month up to now, written as
    ingest writes them (bulk samples, rollup hours marked dirty). They follow the simulator's own load shape
    back from its live value, so history and live readings join up, unless the register is younger than
    that (then the history starts at 0 and the live value is lower). Series that already have readings in
    that span are left alone. Returns the number of readings written."""
    year, month = previous_month(now)
    start_ms = int(month_instant(year, month).timestamp() * 1000) - 24 * HOUR_MS
    end_ms = int(month_instant(year + month // 12, month % 12 + 1).timestamp() * 1000)
    now_s = now.timestamp()
    with session_factory(engine)() as session:
        mapped = session.execute(
            select(Site.code, Edge.code, Device.name, PointMapping.point, PointMapping.quantity, Meter.kind)
            .join(Device, PointMapping.device_id == Device.id)
            .join(Edge, Device.edge_id == Edge.id)
            .join(Site, Edge.site_id == Site.id)
            .join(Meter, Meter.id == PointMapping.meter_id)
            .where(Site.code == SITE)
        ).all()
    wanted: dict[SeriesKey, str] = {
        (site, edge, device, point): quantity
        for site, edge, device, point, quantity, kind in mapped
        if quantity == MAIN_QUANTITY[kind.value] and device in devices
    }
    with engine.begin() as conn:
        ids = SeriesIds().resolve(conn, wanted)
        first = dict(conn.execute(
            select(Sample.series_id, func.min(Sample.ts))
            .where(Sample.series_id.in_(list(ids.values())), Sample.ts >= start_ms)
            .group_by(Sample.series_id)
        ).all())  # fmt: skip
        rows: list[SampleRow] = []
        for key, series_id in ids.items():
            until = first.get(series_id, int(now_s * 1000))
            if until < end_ms:
                continue
            device = devices[key[2]]
            point = next(p for p in device.profile.points if p.name == key[3])
            rate = device.traits.counter_rate(point.quantity)
            base = max(device.value(point.name) - rate * shape.full_load_hours(start_ms / 1000, now_s), 0.0)
            for ts in range(start_ms, until, HOUR_MS):
                value = base + rate * shape.full_load_hours(start_ms / 1000, ts / 1000)
                rows.append((series_id, ts, 0, round(value, 3), 0))
        write_samples(conn, rows)
        mark_dirty(conn, series_hours(rows))
    return len(rows)


PUBLIC_BASE_KWH = Decimal("8200")
PUBLIC_KWH_PER_DAY = Decimal("38.5")
"""Lifts and corridor lights of one building: what the caretaker reads on the public meter."""


def _read_public_meters(session: Session, year: int, month: int, now: datetime) -> None:
    """The public meters have no communication (the registry maps no device to them): the caretaker reads
    them by hand at the month's boundaries, through the manual-reading service."""
    site = session.scalars(select(Site).where(Site.code == SITE)).one()
    meters = session.scalars(
        select(Meter).where(Meter.site_id == site.id, Meter.role == MeterRole.COMMON).order_by(Meter.code)
    ).all()
    read = set(session.scalars(select(MeterReading.meter_id).where(MeterReading.site_id == site.id)))
    start, end = month_instant(year, month), month_instant(year + month // 12, month % 12 + 1)
    used = PUBLIC_KWH_PER_DAY * (end - start).days
    readings = [
        NewReading(meter.code, at, value)
        for meter in meters
        if meter.id not in read
        for at, value in ((start, PUBLIC_BASE_KWH), (end, PUBLIC_BASE_KWH + used))
    ]
    rows = list(enumerate(readings, start=1))
    if rows:
        import_readings(session, ACTOR, site, rows, source=ReadingSource.MANUAL, now=now, label="demo")


def issue_bills(engine: Engine, period: str, now: datetime) -> int:
    """The period's bills, issued by the bill-run service as finance would, unless they were issued already.
    They fall due two weeks from now at the earliest, so a demo started late in the month shows bills to pay
    rather than 48 overdue notices and late fees."""
    with session_factory(engine).begin() as session:
        site = session.scalars(select(Site).where(Site.code == SITE)).one()
        issued = session.scalar(select(func.count()).select_from(Bill).where(Bill.site_id == site.id,
                                                                             Bill.period == period))  # fmt: skip
        if issued:
            return int(issued)
        run_id = start_run(session, ACTOR, site, period, issue=True, now=now).id
    year, month = parse_period(period)
    due = max(default_due_date(year, month), now.astimezone(TZ).date() + PAY_WITHIN)
    run = execute_run(engine, run_id, now=now, due_date=due)
    if run.error is not None:
        raise RuntimeError(f"the demo's bill run for {period} failed: {run.error}")
    return int(run.summary["bills_issued"])
