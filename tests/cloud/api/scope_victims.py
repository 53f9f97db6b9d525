"""The victim's objects of the domains added beside the registry, for the scope sweep (test_api_scope.py).

For a victim site (and one unit of it, with its owner) this seeds, through each domain's own services: a
pending ledger entry on an issued bill, a counter payment and an online payment intent, a tariff, a shared-cost
pool and a bill run; an alarm raised under a rule; a repair request with a photo and a technician; a maintenance
standard, plan and task; a patrol key, checkpoint, route, plan and round; and a notification for the owner. Two
are rows: the bill with its lines is written as the portal's page tests write it (tests/cloud/portal/bills.py; a
bill run needs tariffs and a month of readings), and the alarm rule as the alarm route stores it (checked by
parse_params; there is no rule service). Every name or text a leak would show is returned as a marker.

It also adds, when the hub lacks them, the victim site's users the sweep replays calls with where an admin may
not call (finance, guard, technician, the unit's owner).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.alarms import services as alarm_services
from cloud.alarms.models import AlarmRule, RuleKind, Severity
from cloud.alarms.rules import parse_params
from cloud.audit.services import Actor
from cloud.auth.models import Role, User
from cloud.billing import ledger, pools, runs, tariffs
from cloud.billing.demo import SHANGHAI_ELECTRICITY
from cloud.billing.engine import AllocationMethod
from cloud.billing.models import EntryKind, PoolKind, TariffKind
from cloud.maintenance import planner
from cloud.maintenance import services as maintenance
from cloud.maintenance.models import ItemKind, MaintenanceTask, PeriodUnit
from cloud.maintenance.schemas import EquipmentTypeIn, ItemIn, PlanIn
from cloud.notify.services import notify
from cloud.patrol.checkpoints import CheckpointSpec, create_checkpoint
from cloud.patrol.keys import checkpoint_code, rotate_key
from cloud.patrol.models import CheckpointMethod, PatrolPlan, PatrolRound, Recurrence
from cloud.patrol.plans import generate, validate
from cloud.patrol.routes_tour import Stop, create_route
from cloud.payments.models import PaymentMethod
from cloud.payments.services import counter_payment, create_intent
from cloud.registry import services as registry
from cloud.registry.models import Equipment, Meter, MeterKind, MeterRole, Site, Unit
from cloud.registry.schemas import MeterRow
from cloud.tickets import services as tickets
from cloud.tickets.attachments import AttachmentStore
from cloud.tickets.models import Category
from cloud.tickets.technicians import upsert_technician
from tests.cloud.api.hub_app import Hub, add_user
from tests.cloud.portal.bills import issue_bill

SEED = Actor("scope-seed")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
"""Enough of a PNG for the photo checks, which look at the bytes' signature."""


@dataclass(frozen=True)
class Victims:
    targets: dict[str, int | str]
    """Object id (or reference, signed code) per path, query or body parameter name."""
    markers: tuple[str, ...]
    guard_id: int
    """A guard of the victim site (for its badge)."""
    controls: dict[Role, str]
    """A user of the victim site (or the victim unit's owner) per role, to replay calls admins may not make."""


def ensure_user(hub: Hub, session: Session, name: str, role: Role, **kwargs: Any) -> User:
    """The hub's user ``name``, added on first use."""
    if name not in hub.users:
        hub.users[name] = add_user(session, name, role, **kwargs)
    return session.get_one(User, hub.users[name].id)


def seed_victims(hub: Hub, site_key: str, unit_key: str, staff_suffix: str, owner: str, files: Path) -> Victims:
    """The victim site's objects of every domain; its users are ``<role>_<staff_suffix>`` and ``owner``. Photos
    are stored under ``files`` unless the app has a photo store already (one store serves the whole app)."""
    now = datetime.now(UTC)
    today = planner.local_date(now)
    if getattr(hub.app.state, "ticket_files", None) is None:  # photos in the test's folder, not the default one
        hub.app.state.ticket_files = AttachmentStore(files)
    store: AttachmentStore = hub.app.state.ticket_files
    with hub.session() as session, session.begin():
        site = session.get_one(Site, hub.ids[site_key])
        unit = session.get_one(Unit, hub.ids[unit_key])
        owner_user = ensure_user(hub, session, owner, Role.OWNER, units=[unit.id], phone=unit.owner_phone)
        staff = {role: f"{role.value}_{staff_suffix}" for role in (Role.FINANCE, Role.GUARD, Role.TECHNICIAN)}
        finance, guard_user, tech_user = (
            ensure_user(hub, session, name, role, sites=[site.id]) for role, name in staff.items()
        )
        tag = unit.code
        t: dict[str, int | str] = {}

        bill = issue_bill(session, unit.id, "2026-03", date(2026, 4, 15))
        t["bill_id"] = bill.id
        reason = f"{tag} 减免说明"
        t["entry_id"] = ledger.create_entry(session, finance, bill.id, EntryKind.WAIVER, reason, 100, now).id
        t["payment_id"] = counter_payment(
            session, finance, unit, 1000, PaymentMethod.CASH, f"{tag} 柜台收款"
        ).payment_id
        t["reference"] = create_intent(session, owner_user, unit.id, [bill], "demo", "/console/", now).reference

        tariff_name = f"{tag} 专用电价"
        tariff = tariffs.create_tariff(session, SEED, site, f"probe-{site.id}", tariff_name, TariffKind.ELECTRICITY,
                                       date(2026, 1, 1), SHANGHAI_ELECTRICITY)  # fmt: skip
        t["tariff_id"] = tariff.id
        common = MeterRow(
            code=f"PROBE-COMMON-{site.id}", kind=MeterKind.ELECTRICITY, role=MeterRole.COMMON, serves=[unit.code]
        )
        meter_id = registry.create(session, SEED, site, "meter", common)
        pool_name = f"{tag} 公摊"
        pool = pools.create_pool(session, SEED, session.get_one(Meter, meter_id), code=f"probe-{site.id}",
                                 name=pool_name, kind=PoolKind.COMMON, tariff=tariff, method=AllocationMethod.AREA,
                                 requires_approval=True)  # fmt: skip
        t["pool_id"] = pool.id
        spare = MeterRow(
            code=f"PROBE-SPARE-{site.id}", kind=MeterKind.ELECTRICITY, role=MeterRole.COMMON, serves=[unit.code]
        )
        t["spare_meter_id"] = registry.create(session, SEED, site, "meter", spare)
        t["run_id"] = runs.start_run(session, SEED, site, "2026-01", issue=False, now=now).id

        equipment = session.scalars(select(Equipment).where(Equipment.site_id == site.id)).first()
        assert equipment is not None
        rule_name = f"{tag} 泵压低"
        params = parse_params(RuleKind.THRESHOLD, {"below": 200}).model_dump(exclude_unset=True)
        rule = AlarmRule(site_id=site.id, name=rule_name, kind=RuleKind.THRESHOLD, severity=Severity.CRITICAL,
                         equipment_id=equipment.id, point="outlet_pressure", params=params, enabled=True,
                         created_at=now, updated_at=now)  # fmt: skip
        session.add(rule)
        session.flush()
        t["rule_id"] = rule.id
        alarm_title = f"{tag} 泵房压力告警"
        fault = alarm_services.Fault(
            site_id=site.id, source_key=f"rule:{rule.id}", asset_key=f"equipment:{equipment.id}",
            kind=RuleKind.THRESHOLD, severity=Severity.CRITICAL, title=alarm_title, message=alarm_title,
            flap_window_s=0, rule_id=rule.id, equipment_id=equipment.id, point="outlet_pressure", value=150.0,
        )  # fmt: skip
        alarm = alarm_services.raise_alarm(session, fault, now, now)
        assert alarm is not None
        t["alarm_id"] = alarm.id

        t["technician_user_id"] = tech_user.id
        t["technician_id"] = upsert_technician(session, tech_user, site.id, skills=[Category.PLUMBING]).id
        leak = f"{tag} 厨房水管漏水"
        ticket = tickets.open_repair_request(session, owner_user, unit_id=unit.id, category=Category.PLUMBING,
                                             description=leak, now=now)  # fmt: skip
        t["ticket_id"] = ticket.id
        t["attachment_id"] = tickets.attach_photo(session, store, ticket, owner_user, "leak.png", PNG, now).id

        standard = EquipmentTypeIn(site_id=site.id, code=equipment.type, name=f"{tag} 保养标准",
                                   period_unit=PeriodUnit.MONTH, period_count=1,
                                   items=[ItemIn(name="机械密封无渗漏", kind=ItemKind.CHECK)])  # fmt: skip
        t["item_id"] = maintenance.create_type(session, SEED, standard).items[0].id
        plan_name = f"{tag} 月度保养"
        plan = maintenance.create_plan(session, SEED, equipment, PlanIn(
            equipment_id=equipment.id, name=plan_name, responsible_id=tech_user.id, starts_on=today,
        ), now)  # fmt: skip
        planner.generate_tasks(session, now)
        t["task_id"] = session.scalars(select(MaintenanceTask.id).where(MaintenanceTask.plan_id == plan.id)).one()

        t["kid"] = rotate_key(session, site.id, now).kid  # to revoke: the codes below are signed with the next
        rotate_key(session, site.id, now)
        checkpoint_name = f"{tag} 地下车库巡更点"
        checkpoint = create_checkpoint(session, site.id, CheckpointSpec(f"P{site.id}", checkpoint_name,
                                                                        CheckpointMethod.QR))  # fmt: skip
        t["checkpoint_id"] = checkpoint.id
        t["checkpoint_code"] = checkpoint_code(session, site.id, checkpoint.id)
        route_name = f"{tag} 夜巡路线"
        route = create_route(session, site.id, route_name, True, [Stop(checkpoint.id, 60)])
        t["route_id"] = route.id
        patrol = PatrolPlan(site_id=site.id, route_id=route.id, name=f"{tag} 巡更计划", recurrence=Recurrence.DAILY,
                            every_n_days=1, start_date=today, end_date=None, shift_start=time(0, 0),
                            shift_end=time(23, 0), round_every_min=60, round_minutes=30, tolerance_min=5,
                            grace_min=10, assignees=[guard_user.id], ticket_on_miss=False, active=True)  # fmt: skip
        validate(patrol)
        session.add(patrol)
        session.flush()
        generate(session, patrol, today, today + timedelta(days=1), now - timedelta(days=1))
        rounds = session.scalars(select(PatrolRound.id).where(PatrolRound.plan_id == patrol.id)).all()
        assert rounds, "the patrol plan made no round today or tomorrow"
        t["round_id"] = rounds[0]

        notice = f"{tag} 账单已出"
        found = notify(session, kind="bill.issued", title=notice, body=notice, user_id=owner_user.id, now=now)
        assert found is not None
        t["notification_id"] = found.id
        markers = (bill.number, reason, tariff_name, pool_name, rule_name, alarm_title, leak, plan_name,
                   checkpoint_name, route_name, notice)  # fmt: skip
        return Victims(t, markers, guard_user.id, staff | {Role.OWNER: owner})
