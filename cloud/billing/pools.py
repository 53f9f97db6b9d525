"""Shared-cost pools (公摊): configuration, approval of a period's pooled quantity, and the split of a priced pool
over its units.

A common pool is a common meter's usage, shared over the units the meter serves (registry ``meter_serves``).
A loss pool is a master meter's usage minus the sum of its child meters' (common use plus line loss), shared
over the units of its sub-meters and shown on the bill as its own line. The pooled quantity is priced with the
pool's tariff, and the amount in fen is divided by the engine (largest remainder: the shares add up exactly to
the pool, none negative). A pool that requires approval is allocated only once someone approved exactly the
quantity the run finds; until then the run reports it as waiting, and a later run (after the approval)
corrects the bills.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cloud.audit.services import Actor, Change, record
from cloud.auth.services import UserError
from cloud.billing.engine import METHOD_LABEL, AllocationMethod, allocate, allocate_quantity
from cloud.billing.models import PoolApproval, PoolKind, SharedPool, Tariff, TariffKind
from cloud.registry.models import Meter, MeterRole, Unit, meter_serves

KIND_LABEL = {PoolKind.COMMON: ("公摊", "Shared"), PoolKind.LOSS: ("损耗分摊", "Loss share")}


def pool_units(session: Session, kind: PoolKind, meter_id: int) -> list[int]:
    """The units a pool is shared over: those a common meter serves, or those of a master's sub-meters."""
    query: Select[Any] = (
        select(meter_serves.c.unit_id).where(meter_serves.c.meter_id == meter_id)
        if kind is PoolKind.COMMON
        else select(Meter.unit_id).where(Meter.parent_id == meter_id, Meter.role == MeterRole.SUB)
    )
    return sorted({u for u in session.scalars(query) if u is not None})


def _weights(session: Session, site_id: int, units: list[int], raw: Mapping[str, Any]) -> dict[str, str]:
    codes = dict(session.execute(select(Unit.code, Unit.id).where(Unit.site_id == site_id)).all())
    out: dict[str, str] = {}
    for code, value in raw.items():
        if codes.get(code) not in units:
            raise UserError(f"weights.{code}: not a unit this pool is shared over")
        try:
            weight = Decimal(str(value)) if not isinstance(value, float) else None
        except InvalidOperation:
            weight = None
        if weight is None or not weight.is_finite() or weight < 0:
            raise UserError(f'weights.{code}: {value!r} is not a weight; write a number >= 0 as a string, e.g. "1.5"')
        out[code] = str(weight)
    missing = [c for c, i in codes.items() if i in units and c not in out]
    if missing:
        raise UserError(f"weights: give every unit of the pool a weight (0 exempts it); missing {', '.join(missing)}")
    if all(Decimal(w) == 0 for w in out.values()):
        raise UserError("weights: all are 0, so nobody would pay; give at least one unit a weight above 0")
    return out


def create_pool(
    session: Session,
    actor: Actor,
    meter: Meter,
    *,
    code: str,
    name: str,
    kind: PoolKind,
    tariff: Tariff,
    method: AllocationMethod,
    weights: Mapping[str, Any] | None = None,
    requires_approval: bool = False,
) -> SharedPool:
    """Checked against the registry: the right kind of meter, a tariff for what it measures, the units to share
    over, and a weight for each of them when the method is ``weights``."""
    if kind is PoolKind.COMMON and meter.role is not MeterRole.COMMON:
        raise UserError(f"meter {meter.code} is a {meter.role.value} meter; a common pool needs a common meter")
    if kind is PoolKind.LOSS and meter.role is not MeterRole.MASTER:
        raise UserError(f"meter {meter.code} is a {meter.role.value} meter; a loss pool needs a master meter")
    if tariff.site_id != meter.site_id:
        raise UserError(f"tariff {tariff.code} belongs to another site")
    if tariff.kind is TariffKind.PROPERTY_FEE or tariff.kind.value != meter.kind.value:
        raise UserError(f"meter {meter.code} measures {meter.kind.value}; tariff {tariff.code} is {tariff.kind.value}")
    units = pool_units(session, kind, meter.id)
    if not units:
        where = "serves no unit (set its serves list)" if kind is PoolKind.COMMON else "has no sub-meters"
        raise UserError(f"meter {meter.code} {where}: there is nobody to share the cost with")
    if session.scalar(select(SharedPool.id).where(SharedPool.site_id == meter.site_id, SharedPool.code == code)):
        raise UserError(f"pool {code} exists", 409)
    if session.scalar(select(SharedPool.id).where(SharedPool.meter_id == meter.id, SharedPool.kind == kind)):
        raise UserError(f"meter {meter.code} has a {kind.value} pool already", 409)
    stored = _weights(session, meter.site_id, units, weights or {}) if method is AllocationMethod.WEIGHTS else {}
    if weights and method is not AllocationMethod.WEIGHTS:
        raise UserError(f"weights: only the weights method uses them; this pool divides {method.value}")
    pool = SharedPool(
        site_id=meter.site_id,
        code=code,
        name=name,
        kind=kind,
        meter_id=meter.id,
        tariff_id=tariff.id,
        method=method,
        weights=stored,
        requires_approval=requires_approval,
    )
    session.add(pool)
    session.flush()
    record(session, actor, [Change("create", "shared_pool", pool.id, code, None, pool_snapshot(pool), pool.site_id)])
    return pool


def pool_snapshot(pool: SharedPool) -> dict[str, Any]:
    return {
        "code": pool.code,
        "name": pool.name,
        "kind": pool.kind,
        "meter_id": pool.meter_id,
        "tariff_id": pool.tariff_id,
        "method": pool.method,
        "weights": pool.weights,
        "requires_approval": pool.requires_approval,
    }


def approve(
    session: Session, actor: Actor, pool: SharedPool, period: str, quantity: Decimal, now: datetime | None = None
) -> PoolApproval:
    """Release a period's pooled quantity (as reviewed in a preview) for allocation; once per pool and period."""
    now = now or datetime.now(UTC)
    if actor.user_id is None:
        raise UserError("an approval needs a signed-in user")
    if not pool.requires_approval:
        raise UserError(f"pool {pool.code} does not require approval")
    if quantity < 0:
        raise UserError(f"quantity {quantity} is negative; a pool is never negative")
    taken = select(PoolApproval.id).where(PoolApproval.pool_id == pool.id, PoolApproval.period == period)
    if session.scalar(taken) is not None:
        raise UserError(f"pool {pool.code} is approved for {period} already", 409)
    approval = PoolApproval(
        site_id=pool.site_id,
        pool_id=pool.id,
        period=period,
        quantity=quantity,
        approved_by=actor.user_id,
        approved_at=now,
    )
    session.add(approval)
    session.flush()
    record(
        session,
        actor,
        [
            Change(
                "create",
                "pool_approval",
                approval.id,
                f"{pool.code}@{period}",
                None,
                {"period": period, "quantity": quantity},
                pool.site_id,
            )
        ],
        at=now,
    )
    return approval


@dataclass(frozen=True)
class PoolShare:
    unit_id: int
    amount_fen: int
    quantity: Decimal
    basis: Decimal


@dataclass(frozen=True)
class PoolSplit:
    """A priced pool divided over its units."""

    shares: list[PoolShare]
    method: AllocationMethod
    fell_back: bool
    total_basis: Decimal


def split_pool(
    pool: SharedPool,
    amount_fen: int,
    quantity: Decimal,
    units: list[int],
    *,
    areas: Mapping[int, Decimal],
    usage: Mapping[int, Decimal],
    unit_codes: Mapping[int, str],
) -> PoolSplit:
    """Divide a pool's amount (and, for the bill's detail, its quantity) over its units by the pool's method."""
    method = pool.method
    if method is AllocationMethod.AREA:
        bases: dict[int, Decimal] = {u: areas[u] for u in units}
    elif method is AllocationMethod.USAGE:
        bases = {u: usage.get(u, Decimal(0)) for u in units}
    elif method is AllocationMethod.WEIGHTS:
        bases = {u: Decimal(pool.weights.get(unit_codes[u], "0")) for u in units}
    else:
        bases = dict.fromkeys(units, Decimal(1))
    money = allocate(amount_fen, bases, method)
    quantities = allocate_quantity(quantity, bases, money.method)
    shares = [
        PoolShare(u, money.shares[u], quantities[u], bases[u] if not money.fell_back else Decimal(1))
        for u in sorted(units)
    ]
    return PoolSplit(shares, money.method, money.fell_back, money.total_basis)


def method_label(method: AllocationMethod) -> tuple[str, str]:
    return METHOD_LABEL[method]
