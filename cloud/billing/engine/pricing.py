"""Pricing one segment of usage with one tariff version: charge lines an owner can check by hand.

Rules (stated on the bill's help page as well):

* Quantities are exact to 0.0001 of the unit; usage with more decimals is refused, not rounded.
* Tiers: the segment's usage occupies [accumulated, accumulated + usage] on the tier axis, where
  ``accumulated`` is the usage earlier in the tier year (yearly tiers) or 0 (monthly tiers). The part of it
  inside each tier is billed at that tier's price. A tier's upper bound is inclusive (Beijing: "<= 240 kWh").
* Large households: every bound rises by ``extra_per_person`` for each person beyond ``base_persons``.
* Seasons (monthly tiers): the bounds of the season containing the segment's month replace the tier bounds.
* Proration: a segment covering d of a month's D days (a tariff change inside the month) uses monthly
  bounds of ``bound * d / D``, rounded half-up to 0.0001, and fixed charges of ``monthly * d / D``, rounded
  half-up to the fen. Yearly bounds are not prorated: the accumulated usage already places the segment.
* Time of use with tiers (Shanghai practice): the total decides the tiers; the quantity of each tier is
  split over the periods in proportion to the period usage not yet assigned to a lower tier, to 0.0001 by
  largest remainder (ties to the earlier period: sharp, peak, flat, valley). The highest tier reached
  therefore takes exactly what is left of each period, so per-period and per-tier sums are exact, and no
  quantity is negative.
* Components: each component of a tier is its own line with the full tier quantity and its own price.
* Amounts: each line is quantity x unit price, rounded half-up to the fen on its own; the segment total is
  the sum of its lines. Lines with zero quantity are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cloud.billing.engine.rounding import UNIT, largest_remainder
from cloud.billing.engine.segments import WHOLE_MONTH, Proration, Segment
from cloud.billing.engine.tariffs import (
    TOU_LABEL,
    UTILITY_KIND,
    UTILITY_LABEL,
    TariffDocument,
    TouPeriod,
)

PRICE_UNIT = 1_000_000
"""Prices are handled as integers of 0.000001 yuan."""
_FEN_DIVISOR = UNIT * PRICE_UNIT // 100
TIER_NAMES = ("第一档", "第二档", "第三档", "第四档", "第五档", "第六档")

Usage = Decimal | Mapping[TouPeriod, Decimal]
"""A segment's usage: one quantity, or one per time-of-use period when the tariff has time of use."""


@dataclass(frozen=True, slots=True)
class ChargeLine:
    """One bill line: ``amount_fen`` = ``quantity`` x ``unit_price`` rounded half-up to the fen."""

    kind: str
    """``BillLine.kind``: energy, water, gas, fixed."""
    label: str
    """As printed, Simplified Chinese: ``电费 第二档 峰``."""
    label_en: str
    quantity: Decimal | None
    unit_price: Decimal | None
    """Yuan per unit (or per month for a fixed charge)."""
    amount_fen: int
    detail: dict[str, Any]
    """JSON-safe: tier number and bounds, period, component, accumulated usage, proration."""


@dataclass(frozen=True, slots=True)
class _Column:
    """One price column of a tier: a time-of-use period, a component, or the plain price."""

    period: TouPeriod | None
    component: str | None
    label: str
    label_en: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    kind: str
    label: tuple[str, str]
    tier_period: str
    bounds: tuple[int, ...]
    """Upper bounds of tiers 1..n-1 in units."""
    season_bounds: dict[int, tuple[int, ...]]
    household: tuple[int, int] | None
    """(base persons, extra units per person)."""
    periods: tuple[TouPeriod, ...]
    columns: tuple[_Column, ...]
    prices: tuple[tuple[Decimal, ...], ...]
    """[tier][column] in yuan."""
    micro: tuple[tuple[int, ...], ...]
    """[tier][column] in 0.000001 yuan."""
    fixed: tuple[tuple[str, str, str, Decimal, int], ...]
    """(code, label, label_en, monthly yuan, monthly fen)."""


def price_segment(
    tariff: TariffDocument,
    usage: Usage,
    *,
    accumulated: Decimal = Decimal(0),
    household_size: int | None = None,
    proration: Proration = WHOLE_MONTH,
    month: int | None = None,
) -> list[ChargeLine]:
    """Charge lines for one segment: usage lines (tier x period or tier x component) then fixed charges.

    ``usage`` is a Decimal, or with time of use a mapping period -> Decimal (missing periods count as 0).
    ``accumulated``: usage earlier in the tier year for yearly tiers (see ``segments.tier_year_start``);
    must be 0 for monthly tiers. ``household_size``: persons registered, for a large-household allowance
    (None: no allowance).
    ``proration``: the share of the month the segment covers. ``month`` (1-12) is needed when the tariff
    has seasons. Raises ValueError naming what is wrong with the input.
    """
    plan = _compile(tariff)
    per_period = _usage_units(plan, usage)
    total = sum(per_period)
    acc = _units(accumulated, "accumulated")
    if acc and plan.tier_period == "monthly":
        raise ValueError("accumulated usage applies to yearly tiers only; pass 0 for a monthly tariff")
    bounds = _bounds(plan, household_size, proration, month)
    tiers = _tier_quantities(bounds, acc, total)
    lines: list[ChargeLine] = []
    remaining = list(per_period)
    left = total
    last_used = max((i for i, q in enumerate(tiers) if q), default=-1)
    for tier, quantity in enumerate(tiers):
        if not quantity:
            continue
        if len(remaining) == 1:
            split = [quantity]
        elif tier == last_used:
            split = remaining
        else:
            split = largest_remainder(quantity, remaining, left)
        remaining = [r - s for r, s in zip(remaining, split, strict=True)]
        left -= quantity
        lines.extend(_usage_lines(plan, tier, bounds, split, acc, total, household_size, proration))
    lines.extend(_fixed_lines(plan, proration))
    return lines


def price_month(
    parts: Sequence[tuple[Segment, Usage]],
    *,
    accumulated: Decimal = Decimal(0),
    household_size: int | None = None,
) -> list[ChargeLine]:
    """Charge lines for a month cut into segments at tariff changes (``segments.split_month``).

    Yearly tiers accumulate across the segments: each starts where the previous left off. When there is more
    than one segment, each line's label says which days it covers and its detail holds the segment dates.
    """
    lines: list[ChargeLine] = []
    acc = accumulated
    split = len(parts) > 1
    for segment, usage in parts:
        document = segment.version.document
        segment_lines = price_segment(
            document,
            usage,
            accumulated=acc if document.tier_period == "yearly" else Decimal(0),
            household_size=household_size,
            proration=segment.proration,
            month=segment.month,
        )
        if document.tier_period == "yearly":
            acc += usage if isinstance(usage, Decimal) else sum(usage.values(), Decimal(0))
        if split:
            segment_lines = [_mark_segment(line, segment) for line in segment_lines]
        lines.extend(segment_lines)
    return lines


def _compile(tariff: TariffDocument) -> _Compiled:
    """The document as integer tables, built once per document object (pricing 100,000 units reuses it)."""
    cached = tariff._compiled
    if isinstance(cached, _Compiled):
        return cached
    periods = tariff.tou_periods()
    if periods:
        columns = tuple(_Column(p, None, TOU_LABEL[p][0], TOU_LABEL[p][1]) for p in periods)
        table = [[(t.tou or {})[p] for p in periods] for t in tariff.tiers]
    elif tariff.components:
        columns = tuple(_Column(None, c.code, c.label, c.label_en) for c in tariff.components)
        table = [[(t.components or {})[c.code] for c in tariff.components] for t in tariff.tiers]
    else:
        columns = (_Column(None, None, "", ""),)
        table = [[t.price if t.price is not None else Decimal(0)] for t in tariff.tiers]
    household = tariff.household
    compiled = _Compiled(
        kind=UTILITY_KIND[tariff.utility],
        label=UTILITY_LABEL[tariff.utility],
        tier_period=tariff.tier_period,
        bounds=tuple(_to_units(t.up_to) for t in tariff.tiers[:-1] if t.up_to is not None),
        season_bounds={m: tuple(_to_units(b) for b in s.up_to) for s in tariff.seasons for m in s.months},
        household=(household.base_persons, _to_units(household.extra_per_person)) if household else None,
        periods=periods,
        columns=columns,
        prices=tuple(tuple(row) for row in table),
        micro=tuple(tuple(int(p * PRICE_UNIT) for p in row) for row in table),
        fixed=tuple((f.code, f.label, f.label_en, f.monthly, int(f.monthly * 100)) for f in tariff.fixed_charges),
    )
    tariff._compiled = compiled
    return compiled


def _to_units(value: Decimal) -> int:
    return int(value * UNIT)


def _units(value: Decimal, what: str) -> int:
    if not isinstance(value, Decimal):
        raise ValueError(f"{what} must be a Decimal, got {type(value).__name__} {value!r}")
    scaled = value * UNIT
    whole = int(scaled)
    if whole != scaled:
        raise ValueError(f"{what} {value} has more than 4 decimal places; quantities are exact to 0.0001")
    if whole < 0:
        raise ValueError(f"{what} must not be negative (got {value})")
    return whole


def _usage_units(plan: _Compiled, usage: Usage) -> list[int]:
    if not plan.periods:
        if not isinstance(usage, Decimal):
            raise ValueError("this tariff has no time of use: pass the usage as one Decimal, not per period")
        return [_units(usage, "usage")]
    if isinstance(usage, Decimal):
        raise ValueError(
            f"this tariff has time of use: pass the usage per period ({', '.join(p.value for p in plan.periods)})"
        )
    unknown = [str(p) for p in usage if p not in plan.periods]
    if unknown:
        raise ValueError(
            f"usage for {', '.join(unknown)}: the tariff's periods are {', '.join(p.value for p in plan.periods)}"
        )
    return [_units(usage.get(p, Decimal(0)), f"usage in {p.value}") for p in plan.periods]


def _bounds(plan: _Compiled, household_size: int | None, proration: Proration, month: int | None) -> list[int]:
    bounds = plan.bounds
    if plan.season_bounds:
        if month is None:
            raise ValueError("this tariff has seasonal thresholds: pass the month (1-12) being billed")
        bounds = plan.season_bounds.get(month, bounds)
    result = list(bounds)
    if plan.household is not None and household_size is not None:
        base, extra = plan.household
        if household_size < 1:
            raise ValueError(f"household size must be at least 1, got {household_size}")
        if household_size > base:
            result = [b + extra * (household_size - base) for b in result]
    if plan.tier_period == "monthly" and not proration.whole:
        days, month_days = proration.days, proration.month_days
        result = [(2 * b * days + month_days) // (2 * month_days) for b in result]
    return result


def _tier_quantities(bounds: list[int], acc: int, total: int) -> list[int]:
    """The part of [acc, acc + total] inside each tier."""
    quantities: list[int] = []
    low = 0
    end = acc + total
    for high in bounds:
        quantities.append(max(0, min(high, end) - max(low, acc)))
        low = high
    quantities.append(max(0, end - max(low, acc)))
    return quantities


def _usage_lines(
    plan: _Compiled,
    tier: int,
    bounds: list[int],
    split: list[int],
    acc: int,
    total: int,
    household_size: int | None,
    proration: Proration,
) -> list[ChargeLine]:
    zh, en = plan.label
    tiered = len(plan.prices) > 1
    tier_zh = f" {TIER_NAMES[tier]}" if tiered else ""
    tier_en = f" tier {tier + 1}" if tiered else ""
    base_detail: dict[str, Any] = {"usage": _text(total)}
    if tiered:
        base_detail |= {
            "tier": tier + 1,
            "tier_from": _text(bounds[tier - 1]) if tier else "0",
            "tier_to": _text(bounds[tier]) if tier < len(bounds) else None,
            "tier_period": plan.tier_period,
        }
        if plan.tier_period == "yearly":
            base_detail["accumulated_before"] = _text(acc)
        if plan.household is not None and household_size is not None:
            base_detail["household_size"] = household_size
    if not proration.whole:
        base_detail |= {"days": proration.days, "month_days": proration.month_days}
    lines: list[ChargeLine] = []
    micro_row = plan.micro[tier]
    price_row = plan.prices[tier]
    for c, column in enumerate(plan.columns):
        quantity = split[0] if column.period is None else split[c]
        if not quantity:
            continue
        detail = dict(base_detail)
        if column.period is not None:
            detail["period"] = column.period.value
        if column.component is not None:
            detail["component"] = column.component
        label = f"{zh}{tier_zh} {column.label}" if column.label else f"{zh}{tier_zh}"
        label_en = f"{en}{tier_en} {column.label_en}" if column.label_en else f"{en}{tier_en}"
        lines.append(
            ChargeLine(
                kind=plan.kind,
                label=label,
                label_en=label_en,
                quantity=Decimal(quantity).scaleb(-4),
                unit_price=price_row[c],
                amount_fen=(quantity * micro_row[c] + _FEN_DIVISOR // 2) // _FEN_DIVISOR,
                detail=detail,
            )
        )
    return lines


def _fixed_lines(plan: _Compiled, proration: Proration) -> list[ChargeLine]:
    lines: list[ChargeLine] = []
    for code, label, label_en, monthly, fen in plan.fixed:
        detail: dict[str, Any] = {"code": code}
        if not proration.whole:
            days, month_days = proration.days, proration.month_days
            fen = (2 * fen * days + month_days) // (2 * month_days)
            detail |= {"days": days, "month_days": month_days}
        lines.append(ChargeLine("fixed", label, label_en, None, monthly, fen, detail))
    return lines


def _mark_segment(line: ChargeLine, segment: Segment) -> ChargeLine:
    first, last = segment.first_day, segment.last_day
    return ChargeLine(
        kind=line.kind,
        label=f"{line.label}（{first.month}月{first.day}日-{last.month}月{last.day}日）",
        label_en=f"{line.label_en} ({first.isoformat()} to {last.isoformat()})",
        quantity=line.quantity,
        unit_price=line.unit_price,
        amount_fen=line.amount_fen,
        detail=line.detail
        | {"segment_from": first.isoformat(), "segment_to": last.isoformat(), "tariff_version": segment.version.id},
    )


def _text(units: int) -> str:
    return f"{Decimal(units).scaleb(-4).normalize():f}"
