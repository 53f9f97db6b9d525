"""Shared cost (公摊): a pool of fen (or of quantity) divided over units, and the loss pool of a master meter.

Largest remainder: each unit first gets the floor of its exact share, then the fen left over go one each to
the largest remainders, ties to the smaller unit id. Shares are never negative and always add up exactly to
the pool. A basis of 0 (a ground-floor flat for a lift, a weight of 0) means no share.

Zero total basis: by area, usage or weights with nothing to divide by, there is no fair proportion. For area
and usage the rule is to fall back to equal shares (e.g. no unit used water this month, the pump still ran)
and say so in the result; for weights it is an error, because all-zero weights means the
finance team exempted everyone and must decide who pays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from cloud.billing.engine.rounding import UNIT, decimal_places, largest_remainder


class AllocationMethod(StrEnum):
    AREA = "area"
    """By registered floor area (m2)."""
    USAGE = "usage"
    """By each unit's own metered usage in the period."""
    EQUAL = "equal"
    """The same share per unit."""
    WEIGHTS = "weights"
    """By configured weights (per floor, custom formula); 0 exempts a unit."""


METHOD_LABEL: dict[AllocationMethod, tuple[str, str]] = {
    AllocationMethod.AREA: ("按面积", "by floor area"),
    AllocationMethod.USAGE: ("按用量", "by usage"),
    AllocationMethod.EQUAL: ("按户均摊", "equally per unit"),
    AllocationMethod.WEIGHTS: ("按权重", "by weight"),
}


@dataclass(frozen=True, slots=True)
class Allocation:
    shares: dict[int, int]
    """Unit id -> share, in the pool's integer unit (fen, or 0.0001 of a quantity)."""
    method: AllocationMethod
    """The method actually applied: EQUAL when the requested basis summed to 0 (``fell_back``)."""
    fell_back: bool
    total_basis: Decimal
    """Sum of the bases used, for the line detail ("89.35 of 12,000.00 m2")."""


@dataclass(frozen=True, slots=True)
class LossPool:
    """Master minus the sum of its sub-meters: common use plus line loss."""

    quantity: Decimal
    """What may be allocated: the difference, or 0 when it is negative."""
    difference: Decimal
    negative: bool
    """The sub-meters add up to more than the master: flagged for review (a meter fault), not allocated."""


def allocate(pool: int, bases: Mapping[int, Decimal | int], method: AllocationMethod) -> Allocation:
    """Divide ``pool`` (integer, >= 0) over units by their bases (unit id -> floor area, usage or weight;
    ignored for EQUAL). Raises ValueError for a negative pool or basis, no units, or all-zero weights."""
    if pool < 0:
        raise ValueError(f"the pool to share must not be negative (got {pool}); a credit is not allocated")
    if not bases:
        if pool:
            raise ValueError(f"no units to share {pool} among; assign the common meter to the units it serves")
        return Allocation({}, method, False, Decimal(0))
    units = sorted(bases)
    if method is AllocationMethod.EQUAL:
        return Allocation(
            _equal(pool, units),
            method,
            False,
            Decimal(len(units)),
        )
    values = [Decimal(bases[u]) for u in units]
    for unit, value in zip(units, values, strict=True):
        if value < 0 or not value.is_finite():
            raise ValueError(f"unit {unit}: basis {value} must be a number >= 0 ({method.value})")
    total = sum(values, Decimal(0))
    if total == 0:
        if method is AllocationMethod.WEIGHTS:
            raise ValueError("all weights are 0: every unit is exempt, so nobody can be charged; set a weight > 0")
        return Allocation(
            _equal(pool, units),
            AllocationMethod.EQUAL,
            True,
            total,
        )
    scale = max(decimal_places(v) for v in values)
    weights = [int(v.scaleb(scale)) for v in values]
    shares = largest_remainder(pool, weights, sum(weights))
    return Allocation(dict(zip(units, shares, strict=True)), method, False, total)


def allocate_quantity(
    pool: Decimal, bases: Mapping[int, Decimal | int], method: AllocationMethod
) -> dict[int, Decimal]:
    """Divide a quantity (kWh, m3; exact to 0.0001) like ``allocate``: the parts add up exactly to ``pool``."""
    scaled = pool * UNIT
    if int(scaled) != scaled:
        raise ValueError(f"pool {pool} has more than 4 decimal places")
    shares = allocate(int(scaled), bases, method).shares
    return {unit: Decimal(share).scaleb(-4) for unit, share in shares.items()}


def loss_pool(master: Decimal, sub_meters: Sequence[Decimal]) -> LossPool:
    """The master meter's usage minus the sum of its sub-meters'; never negative."""
    difference = master - sum(sub_meters, Decimal(0))
    if difference < 0:
        return LossPool(Decimal(0), difference, True)
    return LossPool(difference, difference, False)


def _equal(pool: int, units: list[int]) -> dict[int, int]:
    return dict(zip(units, largest_remainder(pool, [1] * len(units), len(units)), strict=True))
