"""Tariff documents: a tariff version is data (stored as JSON), validated here once, priced by ``pricing``.

One schema covers every shape in use: flat (one tier without a bound), tiered with monthly or yearly tier
periods (optionally seasonal thresholds and a large-household allowance), time of use with 2-4 periods
(尖/峰/平/谷, prices per tier x period), component lines (price per tier x component, e.g. water = supply +
resource fee + sewage) and fixed monthly charges. Prices are yuan per unit as Decimal with at most 6 decimal
places; thresholds are quantities with at most 4. Prices and quantities are given as strings or integers in
JSON ("0.4883"), never as binary floats, so what the finance team typed is what is billed.

Validation messages name the field and say what to change: a tariff is typed by people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from cloud.billing.engine.rounding import decimal_places

PRICE_PLACES = 6
QUANTITY_PLACES = 4
SLOTS_PER_DAY = 48
"""Time-of-use windows start and end on the hour or half hour: the day is 48 half-hour slots."""
MAX_TIERS = 6


class Utility(StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"
    GAS = "gas"


UTILITY_KIND: dict[Utility, str] = {Utility.ELECTRICITY: "energy", Utility.WATER: "water", Utility.GAS: "gas"}
"""The bill line kind (``BillLine.kind``) of each utility's usage lines."""
UTILITY_LABEL: dict[Utility, tuple[str, str]] = {
    Utility.ELECTRICITY: ("电费", "Electricity"),
    Utility.WATER: ("水费", "Water"),
    Utility.GAS: ("燃气费", "Gas"),
}


class TouPeriod(StrEnum):
    """Time-of-use periods, in the order lines are printed and ties are broken."""

    SHARP = "sharp"
    PEAK = "peak"
    FLAT = "flat"
    VALLEY = "valley"


TOU_ORDER: tuple[TouPeriod, ...] = tuple(TouPeriod)
TOU_LABEL: dict[TouPeriod, tuple[str, str]] = {
    TouPeriod.SHARP: ("尖", "sharp"),
    TouPeriod.PEAK: ("峰", "peak"),
    TouPeriod.FLAT: ("平", "flat"),
    TouPeriod.VALLEY: ("谷", "valley"),
}


def _exact_decimal(value: Any) -> Any:
    """Strings and integers become Decimal; a float is refused because it already lost its exact value."""
    if isinstance(value, bool):
        raise ValueError(f'expected a number written as a string such as "0.4883", got {value!r}')
    if isinstance(value, float):
        raise ValueError(f'write {value!r} as a string ("{value!r}"): floats lose exact decimal values')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f'"{value}" is not a number; write it like "0.4883"') from None
        if not parsed.is_finite():
            raise ValueError(f'"{value}" is not a finite number')
        return parsed
    return value


def _price(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"a price must not be negative (got {value}); use 0 for a free tier or period")
    if decimal_places(value.normalize()) > PRICE_PLACES:
        raise ValueError(f"price {value} has more than {PRICE_PLACES} decimal places")
    return value


def _quantity(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError(f"must be greater than 0 (got {value})")
    if decimal_places(value.normalize()) > QUANTITY_PLACES:
        raise ValueError(f"{value} has more than {QUANTITY_PLACES} decimal places")
    return value


def _money(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"an amount must not be negative (got {value})")
    if decimal_places(value.normalize()) > 2:
        raise ValueError(f"amount {value} is in yuan and has more than 2 decimal places (fen)")
    return value


Price = Annotated[Decimal, BeforeValidator(_exact_decimal), AfterValidator(_price)]
"""Yuan per unit (kWh, m3), at most 6 decimal places, not negative."""
Quantity = Annotated[Decimal, BeforeValidator(_exact_decimal), AfterValidator(_quantity)]
"""A positive quantity of the tariff's unit, at most 4 decimal places."""
Money = Annotated[Decimal, BeforeValidator(_exact_decimal), AfterValidator(_money)]
"""Yuan with at most 2 decimal places (whole fen)."""
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class _Doc(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


def _clock(text: str) -> int:
    """'HH:MM' on the hour or half hour -> half-hour slot 0..47 ('24:00' is not accepted: use '00:00')."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f'"{text}" is not a clock time; write it as HH:MM, e.g. "06:00"')
    hour, minute = int(parts[0]), int(parts[1])
    if hour > 23 or minute not in (0, 30):
        raise ValueError(f'"{text}" must be between 00:00 and 23:30 and on the hour or half hour')
    return hour * 2 + minute // 30


def _slot_text(slot: int) -> str:
    return f"{slot // 2:02d}:{(slot % 2) * 30:02d}"


class TouWindow(_Doc):
    """A daily clock window [start, end) in local time; an end at or before the start crosses midnight."""

    start: str
    end: str

    @model_validator(mode="after")
    def _check(self) -> Self:
        if _clock(self.start) == _clock(self.end):
            raise ValueError(f"window {self.start}-{self.end} is empty: start and end must differ")
        return self

    def slots(self) -> list[int]:
        first, end = _clock(self.start), _clock(self.end)
        count = (end - first) % SLOTS_PER_DAY
        return [(first + i) % SLOTS_PER_DAY for i in range(count)]


class TouPeriodSpec(_Doc):
    period: TouPeriod
    windows: list[TouWindow] = Field(min_length=1)


class Component(_Doc):
    """A part of each tier price shown as its own line (供水, 水资源费, 污水处理费)."""

    code: Code
    label: str = Field(min_length=1, max_length=40)
    label_en: str = Field(min_length=1, max_length=60)


class Tier(_Doc):
    """One tier. ``up_to`` is the tier's upper bound in usage per tier period (monthly or yearly), inclusive;
    the last tier has none. Exactly one way of pricing, matching the document: ``price`` (plain),
    ``tou`` (price per time-of-use period) or ``components`` (price per component; their sum is the tier price).
    """

    up_to: Quantity | None = None
    price: Price | None = None
    tou: dict[TouPeriod, Price] | None = None
    components: dict[str, Price] | None = None


class Season(_Doc):
    """Monthly tiers only: other thresholds in some months (e.g. Guangzhou summer May-October)."""

    months: list[int] = Field(min_length=1)
    up_to: list[Quantity]
    """Upper bounds of tiers 1..n-1 in those months."""


class HouseholdAllowance(_Doc):
    """Large households: every tier bound rises by ``extra_per_person`` for each person beyond
    ``base_persons`` (Beijing water: +30 m3 per tier per person beyond 5)."""

    base_persons: int = Field(ge=1)
    extra_per_person: Quantity


class FixedCharge(_Doc):
    """A fixed monthly charge, prorated by days when a tariff version covers part of a month."""

    code: Code
    label: str = Field(min_length=1, max_length=40)
    label_en: str = Field(min_length=1, max_length=60)
    monthly: Money


class TariffDocument(_Doc):
    """One tariff version's content. Its effective date lives beside it (``TariffVersion``)."""

    utility: Utility
    name: str = Field(min_length=1, max_length=100)
    unit: Literal["kWh", "m3"]
    tier_period: Literal["monthly", "yearly"] = "monthly"
    year_start_month: int = Field(default=1, ge=1, le=12)
    """Yearly tiers: the month the tier year starts (accumulation restarts at 0)."""
    tiers: list[Tier] = Field(min_length=1, max_length=MAX_TIERS)
    seasons: list[Season] = Field(default_factory=list)
    household: HouseholdAllowance | None = None
    tou: list[TouPeriodSpec] | None = Field(default=None, min_length=2, max_length=4)
    components: list[Component] | None = Field(default=None, min_length=1, max_length=6)
    fixed_charges: list[FixedCharge] = Field(default_factory=list, max_length=6)
    _compiled: object = PrivateAttr(default=None)
    """The integer price tables ``pricing`` builds on first use, so a bill run compiles each version once."""
    _slots: tuple[TouPeriod, ...] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_tiers()
        self._check_seasons()
        self._check_tou()
        self._check_prices()
        codes = [c.code for c in self.fixed_charges]
        if len(set(codes)) != len(codes):
            raise ValueError(f"fixed_charges: codes must be unique, got {codes}")
        return self

    def _check_tiers(self) -> None:
        last = len(self.tiers) - 1
        for i, tier in enumerate(self.tiers):
            if i == last and tier.up_to is not None:
                raise ValueError(
                    f"tiers[{i}].up_to: the last tier has no upper bound; remove up_to "
                    f"(or add a tier above {tier.up_to} {self.unit})"
                )
            if i < last and tier.up_to is None:
                raise ValueError(f"tiers[{i}].up_to is missing: only the last tier may be open-ended")
        _check_increasing([t.up_to for t in self.tiers[:-1]], "tiers", self.unit)

    def _check_seasons(self) -> None:
        if self.seasons and self.tier_period != "monthly":
            raise ValueError("seasons: seasonal thresholds apply to monthly tiers only; set tier_period to monthly")
        seen: dict[int, int] = {}
        for s, season in enumerate(self.seasons):
            if len(season.up_to) != len(self.tiers) - 1:
                raise ValueError(
                    f"seasons[{s}].up_to: give {len(self.tiers) - 1} bounds (one per tier except the last), "
                    f"got {len(season.up_to)}"
                )
            _check_increasing(list(season.up_to), f"seasons[{s}].up_to", self.unit)
            for month in season.months:
                if not 1 <= month <= 12:
                    raise ValueError(f"seasons[{s}].months: {month} is not a month (1-12)")
                if month in seen:
                    raise ValueError(f"seasons[{s}].months: month {month} is already in seasons[{seen[month]}]")
                seen[month] = s

    def _check_tou(self) -> None:
        if self.tou is None:
            return
        periods = [p.period for p in self.tou]
        if len(set(periods)) != len(periods):
            raise ValueError(f"tou: each period may appear once; got {', '.join(periods)}")
        owner: list[tuple[TouPeriod, TouWindow] | None] = [None] * SLOTS_PER_DAY
        for spec in self.tou:
            for window in spec.windows:
                for slot in window.slots():
                    taken = owner[slot]
                    if taken is not None:
                        other, other_window = taken
                        raise ValueError(
                            f"tou: windows overlap: {other.value} {other_window.start}-{other_window.end} and "
                            f"{spec.period.value} {window.start}-{window.end} both cover "
                            f"{_slot_text(slot)}-{_slot_text((slot + 1) % SLOTS_PER_DAY)}; "
                            "each time of day must belong to exactly one period"
                        )
                    owner[slot] = (spec.period, window)
        gaps = _runs([i for i, o in enumerate(owner) if o is None])
        if gaps:
            text = ", ".join(f"{_slot_text(a)}-{_slot_text(b % SLOTS_PER_DAY)}" for a, b in gaps)
            raise ValueError(f"tou: {text} not covered by any period; the windows must cover the whole day (24 hours)")

    def _check_prices(self) -> None:
        codes = [c.code for c in self.components or []]
        if len(set(codes)) != len(codes):
            raise ValueError(f"components: codes must be unique, got {codes}")
        if self.tou is not None and self.components is not None:
            raise ValueError("components: a tariff cannot have both time of use and components; choose one")
        periods = [p.period for p in self.tou or []]
        for i, tier in enumerate(self.tiers):
            if self.tou is not None:
                _expect_only(tier, i, "tou")
                prices = tier.tou or {}
                names = {p.value: TOU_LABEL[p][0] for p in periods}
                _expect_keys(i, "tou", [p.value for p in prices], list(names), names)
            elif self.components is not None:
                _expect_only(tier, i, "components")
                names = {c.code: c.label for c in self.components}
                _expect_keys(i, "components", list(tier.components or {}), codes, names)
            else:
                _expect_only(tier, i, "price")

    def period_slots(self) -> tuple[TouPeriod, ...]:
        """The time-of-use period of each of the day's 48 half-hour slots (local time)."""
        if self._slots is not None:
            return self._slots
        if self.tou is None:
            raise ValueError(f"tariff {self.name!r} has no time of use")
        slots: list[TouPeriod] = [TouPeriod.FLAT] * SLOTS_PER_DAY
        for spec in self.tou:
            for window in spec.windows:
                for slot in window.slots():
                    slots[slot] = spec.period
        self._slots = tuple(slots)
        return self._slots

    def tou_periods(self) -> tuple[TouPeriod, ...]:
        """The tariff's time-of-use periods in print order (sharp, peak, flat, valley); empty without TOU."""
        defined = {p.period for p in self.tou or []}
        return tuple(p for p in TOU_ORDER if p in defined)


def _check_increasing(bounds: list[Decimal | None], where: str, unit: str) -> None:
    for i in range(1, len(bounds)):
        low, high = bounds[i - 1], bounds[i]
        if low is not None and high is not None and high <= low:
            raise ValueError(
                f"{where}: tier thresholds must increase: tier {i + 1} ends at {high} {unit} but tier {i} "
                f"already ends at {low} {unit}; give each tier a larger upper bound than the one below"
            )


def _expect_only(tier: Tier, index: int, field: str) -> None:
    given = [name for name in ("price", "tou", "components") if getattr(tier, name) is not None]
    if given == [field]:
        return
    need = {
        "price": "a single price in price",
        "tou": "a price per time-of-use period in tou",
        "components": "a price per component in components",
    }[field]
    if not given:
        raise ValueError(f"tiers[{index}]: no price; this tariff needs {need}")
    wrong = [g for g in given if g != field]
    raise ValueError(f"tiers[{index}]: remove {', '.join(wrong)}; this tariff needs {need}")


def _expect_keys(index: int, field: str, given: list[str], wanted: list[str], names: Mapping[str, str]) -> None:
    for key in wanted:
        if key not in given:
            raise ValueError(
                f"tiers[{index}].{field}: no price for {key} ({names[key]}) in tier {index + 1}; "
                f"add tiers[{index}].{field}.{key}"
            )
    for key in given:
        if key not in wanted:
            raise ValueError(
                f"tiers[{index}].{field}.{key}: the tariff does not define {key}; remove it or declare it "
                f"in {field if field == 'components' else 'tou'}"
            )


def _runs(slots: list[int]) -> list[tuple[int, int]]:
    """Consecutive slot numbers as [start, end) runs."""
    runs: list[tuple[int, int]] = []
    for slot in slots:
        if runs and runs[-1][1] == slot:
            runs[-1] = (runs[-1][0], slot + 1)
        else:
            runs.append((slot, slot + 1))
    return runs


def parse_tariff(data: str | bytes | Mapping[str, Any]) -> TariffDocument:
    """Validate a stored or uploaded tariff document (JSON text or the dict a JSON column returns).

    A dict goes through JSON so that enum values arrive as the strings a stored document holds (strict
    validation of Python objects would demand enum instances); Decimals in it become strings.
    Raises pydantic.ValidationError whose messages name the field and what to fix.
    """
    if isinstance(data, str | bytes):
        return TariffDocument.model_validate_json(data)
    return TariffDocument.model_validate_json(json.dumps(data, default=str))


def dump_tariff(document: TariffDocument) -> dict[str, Any]:
    """The JSON-safe dict to store (prices and quantities as strings, exact)."""
    return document.model_dump(mode="json", exclude_none=True)
