"""Alarm API: rules (engineers and admins of the site), alarms (staff of the site: list, acknowledge; engineers
and admins also clear by hand). Everything is scoped: another site's rule or alarm answers 404."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.alarms import services
from cloud.alarms.models import Alarm, AlarmRule, AlarmState, RuleKind
from cloud.alarms.rules import RuleError, check_target, parse_params
from cloud.alarms.schemas import AlarmDetail, AlarmOut, Note, RuleIn, RuleOut, RuleUpdate, TransitionOut
from cloud.api.deps import ASSET_EDITORS, STAFF, CurrentUser, ScopeDep, SessionDep, require_roles
from cloud.api.scope import Scope
from cloud.audit.services import Change, record
from cloud.auth.services import actor
from cloud.registry.models import Equipment, Meter, Site

router = APIRouter(tags=["alarms"])
EDITORS = [Depends(require_roles(*ASSET_EDITORS))]
VIEWERS = [Depends(require_roles(*STAFF))]
RULE_FIELDS = ("site_id", "name", "kind", "severity", "equipment_id", "equipment_type", "meter_id", "point",
               "params", "enabled")  # fmt: skip


def _unprocessable(errors: list[str]) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, errors)


def _values(rule: AlarmRule) -> dict[str, Any]:
    return {f: getattr(rule, f) for f in RULE_FIELDS}


@router.get("/alarm-rules", dependencies=EDITORS)
def list_rules(session: SessionDep, scope: ScopeDep, site_id: int | None = None) -> list[RuleOut]:
    query = select(AlarmRule).where(scope.where(AlarmRule)).order_by(AlarmRule.site_id, AlarmRule.name)
    if site_id is not None:
        query = query.where(AlarmRule.site_id == site_id)
    return [RuleOut.model_validate(r) for r in session.scalars(query)]


@router.post("/alarm-rules", status_code=status.HTTP_201_CREATED, dependencies=EDITORS)
def create_rule(body: RuleIn, session: SessionDep, scope: ScopeDep, user: CurrentUser) -> RuleOut:
    """Checked before anything is stored: the parameters of the kind, the target, and that the equipment or
    meter is of the rule's site."""
    scope.get(session, Site, body.site_id)
    if body.kind is RuleKind.EDGE_ALARM:
        raise _unprocessable(["kind: edge alarms pass through from the edge's own rules and need no hub rule"])
    try:
        check_target(body.kind, equipment_id=body.equipment_id, equipment_type=body.equipment_type,
                     meter_id=body.meter_id, point=body.point)  # fmt: skip
        params = parse_params(body.kind, body.params)
    except RuleError as exc:
        raise _unprocessable(exc.errors) from None
    _check_assets(session, scope, body)
    now = datetime.now(UTC)
    rule = AlarmRule(**body.model_dump(exclude={"params"}), params=params.model_dump(exclude_unset=True),
                     created_at=now, updated_at=now)  # fmt: skip
    _save(session, rule)
    record(session, actor(user), [Change("create", "alarm_rule", rule.id, rule.name, None, _values(rule),
                                         rule.site_id)], now)  # fmt: skip
    return RuleOut.model_validate(rule)


def _check_assets(session: Session, scope: Scope, body: RuleIn) -> None:
    if body.equipment_id is not None and scope.get(session, Equipment, body.equipment_id).site_id != body.site_id:
        raise _unprocessable([f"equipment_id: equipment {body.equipment_id} is not in site {body.site_id}"])
    if body.meter_id is not None and scope.get(session, Meter, body.meter_id).site_id != body.site_id:
        raise _unprocessable([f"meter_id: meter {body.meter_id} is not in site {body.site_id}"])


def _save(session: Session, rule: AlarmRule) -> None:
    try:
        with session.begin_nested():
            session.add(rule)
            session.flush()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"site {rule.site_id} has a rule named {rule.name!r} "
                            "already; pick another name") from None  # fmt: skip


def _rule(rule_id: int, session: SessionDep, scope: ScopeDep) -> AlarmRule:
    return scope.get(session, AlarmRule, rule_id)


RuleDep = Annotated[AlarmRule, Depends(_rule)]


@router.get("/alarm-rules/{rule_id}", dependencies=EDITORS)
def get_rule(rule: RuleDep) -> RuleOut:
    return RuleOut.model_validate(rule)


@router.patch("/alarm-rules/{rule_id}", dependencies=EDITORS)
def update_rule(rule: RuleDep, body: RuleUpdate, session: SessionDep, user: CurrentUser) -> RuleOut:
    before = _values(rule)
    changes = body.model_dump(exclude_unset=True)
    if "params" in changes:
        try:
            changes["params"] = parse_params(rule.kind, changes["params"] or {}).model_dump(exclude_unset=True)
        except RuleError as exc:
            raise _unprocessable(exc.errors) from None
    for name, value in changes.items():
        if value is None:
            raise _unprocessable([f"{name}: may not be null; leave it out to keep it"])
        setattr(rule, name, value)
    now = datetime.now(UTC)
    rule.updated_at = now
    _save(session, rule)
    record(session, actor(user), [Change("update", "alarm_rule", rule.id, rule.name, before, _values(rule),
                                         rule.site_id)], now)  # fmt: skip
    return RuleOut.model_validate(rule)


@router.delete("/alarm-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=EDITORS)
def delete_rule(rule: RuleDep, session: SessionDep, user: CurrentUser) -> None:
    """Only a rule that never raised an alarm; one with history is disabled instead, so its alarms keep it."""
    if session.scalar(select(exists().where(Alarm.rule_id == rule.id))):
        raise HTTPException(status.HTTP_409_CONFLICT, f"rule {rule.id} has raised alarms; disable it instead "
                            "(PATCH enabled=false) so their history keeps its rule")  # fmt: skip
    record(session, actor(user), [Change("delete", "alarm_rule", rule.id, rule.name, _values(rule), None,
                                         rule.site_id)])  # fmt: skip
    session.delete(rule)


@router.get("/alarms", dependencies=VIEWERS)
def list_alarms(
    session: SessionDep, scope: ScopeDep, state: Annotated[list[AlarmState] | None, Query()] = None,
    site_id: int | None = None, equipment_id: int | None = None, meter_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlarmOut]:  # fmt: skip
    """Newest first; ``state`` may repeat (``?state=active&state=acknowledged``: the open ones)."""
    query = services.listing(states=state, site_id=site_id, equipment_id=equipment_id, meter_id=meter_id)
    return [AlarmOut.model_validate(a) for a in session.scalars(query.where(scope.where(Alarm)).limit(limit))]


def _alarm(alarm_id: int, session: SessionDep, scope: ScopeDep) -> Alarm:
    return scope.get(session, Alarm, alarm_id)


AlarmDep = Annotated[Alarm, Depends(_alarm)]


@router.get("/alarms/{alarm_id}", dependencies=VIEWERS)
def get_alarm(alarm: AlarmDep, session: SessionDep) -> AlarmDetail:
    steps = [TransitionOut.model_validate(t) for t in services.transitions(session, alarm.id)]
    return AlarmDetail(**AlarmOut.model_validate(alarm).model_dump(), transitions=steps)


@router.post("/alarms/{alarm_id}/ack", dependencies=VIEWERS)
def acknowledge(alarm: AlarmDep, session: SessionDep, user: CurrentUser, body: Note | None = None) -> AlarmOut:
    try:
        services.acknowledge(session, alarm, user, datetime.now(UTC), body.note if body else "")
    except services.AlarmError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return AlarmOut.model_validate(alarm)


@router.post("/alarms/{alarm_id}/clear", dependencies=EDITORS)
def clear(alarm: AlarmDep, session: SessionDep, user: CurrentUser, body: Note | None = None) -> AlarmOut:
    """By hand, e.g. an informational alarm dealt with; a fault still present is raised again by its rule."""
    now = datetime.now(UTC)
    try:
        services.clear(session, alarm, now, now, user=user, message=body.note if body else "")
    except services.AlarmError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return AlarmOut.model_validate(alarm)
