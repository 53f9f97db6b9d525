"""Each unit's bill lines for one period, computed without writing anything (a bill run writes them).

A unit's lines, in print order: each of its own meters priced with the meter's tariff (tiers, time of use,
components, fixed charges, split at tariff changes), its share of every pool it belongs to (common and loss
pools each their own line), and the property fee by floor area if the site has one. Every usage line's detail
holds the readings used (value, time, source, estimated flag), so ``end - start`` can be checked by hand.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.engine import (
    ChargeLine,
    Segment,
    Usage,
    loss_pool,
    price_month,
    split_month,
    tier_year_start,
)
from cloud.billing.models import PoolApproval, PoolKind, SharedPool, TariffAssignment
from cloud.billing.pools import KIND_LABEL, method_label, pool_units, split_pool
from cloud.billing.tariffs import SiteTariffs, load_site_tariffs, property_fee_fen, property_fee_in_force
from cloud.billing.usage import MeterUsage, SiteUsage, change_clocks
from cloud.registry.models import Meter, MeterRole, Unit
from cloud.timeseries.query import DEFAULT_TZ

MAX_WARNINGS = 500
"""Warnings listed in full on a run; beyond that only counted (a broken gateway can flag thousands)."""


@dataclass(frozen=True)
class Line:
    kind: str
    label: str
    meter_id: int | None
    quantity: Decimal | None
    unit_price: Decimal | None
    amount_fen: int
    detail: dict[str, Any]
    encoded: str | None = field(default=None, compare=False, repr=False)
    """The detail's canonical JSON when the biller encoded it (see ``JsonParts``)."""

    def key(self) -> tuple[str, str, int | None]:
        """What a correction compares: the same charge on the old and the new bill."""
        return (self.kind, self.label, self.meter_id)

    @cached_property
    def detail_json(self) -> str:
        """The detail as canonical JSON, encoded once: the fingerprint hashes it and an issue writes it."""
        return self.encoded if self.encoded is not None else _dumps(self.detail)

    def fingerprint_json(self) -> str:
        """The line as the fingerprint hashes it: ``[kind, label, meter, quantity, price, amount, detail]``."""
        head = _dumps([self.kind, self.label, self.meter_id, _text(self.quantity), _text(self.unit_price)])
        return f"{head[:-1]},{self.amount_fen},{self.detail_json}]"


@dataclass(frozen=True)
class UnitBill:
    unit_id: int
    unit_code: str
    lines: list[Line]

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.lines)


def fingerprint(lines: Iterable[Line]) -> str:
    payload = "[" + ",".join(line.fingerprint_json() for line in lines) + "]"
    return hashlib.sha256(payload.encode()).hexdigest()


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
"""One encoder for every line (``json.dumps`` with options builds a new one per call)."""


def _dumps(value: Any) -> str:
    return _CANONICAL.encode(value)


class JsonParts:
    """Canonical JSON of line details whose big parts are shared: a meter's readings appear on each of its tier
    and period lines, a pool's readings on each of its thousand shares. Each shared value (by identity; kept
    referenced here, so an id is never reused) is encoded once per run and spliced in."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Any, str]] = {}

    def encode(self, detail: dict[str, Any], shared: tuple[str, ...]) -> str:
        items = []
        for key in sorted(detail):
            value = detail[key]
            if key in shared:
                found = self._memo.get(id(value))
                if found is None:
                    found = self._memo[id(value)] = (value, _dumps(value))
                text = found[1]
            else:
                text = _dumps(value)
            items.append(f"{_dumps(key)}:{text}")
        return "{" + ",".join(items) + "}"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass
class Warnings:
    """What a person should look at after a run: counted by kind, the first ``MAX_WARNINGS`` listed."""

    items: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, kind: str, message: str, **where: Any) -> None:
        self.counts[kind] += 1
        if len(self.items) < MAX_WARNINGS:
            self.items.append({"kind": kind, "message": message, **where})

    def as_json(self) -> dict[str, Any]:
        return {"warnings": self.items, "warning_counts": dict(self.counts)}


class ConfigError(ValueError):
    """The site's billing setup cannot bill this period (a tariff without a version in force, ...)."""


def month_instant(year: int, month: int, tz: str = DEFAULT_TZ) -> datetime:
    """00:00 local on the first of the month, as aware UTC."""
    return datetime.combine(date(year, month, 1), time(), ZoneInfo(tz)).astimezone(UTC)


def ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


@dataclass
class _UnitInfo:
    id: int
    code: str
    area: Decimal
    household_size: int | None
    meters: list[tuple[int, int]] = field(default_factory=list)
    """(meter id, tariff id) of its own billed meters."""


@dataclass
class _PoolResult:
    shares: dict[int, Line]
    """Unit id -> its line."""
    quantity: Decimal
    amount_fen: int
    status: str


class PeriodBiller:
    """Everything a run needs for one site and month, loaded in bulk; ``bill(unit_id)`` gives a unit's lines."""

    def __init__(self, session: Session, site_id: int, year: int, month: int) -> None:
        self.site_id, self.year, self.month = site_id, year, month
        self.period = f"{year}-{month:02d}"
        self.start = month_instant(year, month)
        self.end = month_instant(year + month // 12, month % 12 + 1)
        self.warnings = Warnings()
        self.json = JsonParts()
        self.tariffs: SiteTariffs = load_site_tariffs(session, site_id)
        self.segments = self._segments()
        self.meters = {m.id: m for m in session.scalars(select(Meter).where(Meter.site_id == site_id))}
        self.units: dict[int, _UnitInfo] = {
            uid: _UnitInfo(uid, code, area, size)
            for uid, code, area, size in session.execute(
                select(Unit.id, Unit.code, Unit.floor_area_m2, Unit.household_size)
                .where(Unit.site_id == site_id)
                .order_by(Unit.code)
            )
        }
        self.assignment = dict(
            session.execute(
                select(TariffAssignment.meter_id, TariffAssignment.tariff_id).where(TariffAssignment.site_id == site_id)
            ).all()
        )
        for meter_id, tariff_id in sorted(self.assignment.items()):
            meter = self.meters[meter_id]
            if meter.role is MeterRole.SUB and meter.unit_id in self.units:
                self.units[meter.unit_id].meters.append((meter_id, tariff_id))
        self.pools = list(
            session.scalars(select(SharedPool).where(SharedPool.site_id == site_id).order_by(SharedPool.code))
        )
        self.approvals = {
            a.pool_id: a
            for a in session.scalars(
                select(PoolApproval).where(PoolApproval.site_id == site_id, PoolApproval.period == self.period)
            )
        }
        self.pool_units = {p.id: pool_units(session, p.kind, p.meter_id) for p in self.pools}
        self.children = defaultdict(list)
        for meter in self.meters.values():
            if meter.parent_id is not None:
                self.children[meter.parent_id].append(meter.id)
        self.usage = self._load_usage(session)
        self._usage_cache: dict[tuple[int, int, int], MeterUsage | None] = {}
        self._usage_by_kind: dict[str, dict[int, Decimal]] = {}
        self.pool_results = [self._pool(p) for p in self.pools]
        self.property_fee = property_fee_in_force(self.tariffs, date(year, month, 1))

    def _segments(self) -> dict[int, list[Segment]]:
        out = {}
        for tariff_id, versions in self.tariffs.meter_versions.items():
            try:
                out[tariff_id] = split_month(self.year, self.month, versions)
            except ValueError as exc:
                raise ConfigError(f"tariff {self.tariffs.codes[tariff_id]}: {exc}") from None
        return out

    def _tariff_segments(self, tariff_id: int) -> list[Segment]:
        if tariff_id not in self.segments:
            raise ConfigError(f"tariff {self.tariffs.codes.get(tariff_id, tariff_id)} has no version; add one")
        return self.segments[tariff_id]

    def _load_usage(self, session: Session) -> SiteUsage:
        billed = {m for u in self.units.values() for m, _ in u.meters}
        for pool in self.pools:
            billed.add(pool.meter_id)
            if pool.kind is PoolKind.LOSS:
                billed.update(self.children[pool.meter_id])
        instants = {ms(self.start), ms(self.end)}
        cuts = {ms(self.start), ms(self.end)}
        for segments in self.segments.values():
            for segment in segments:
                instants |= {ms(segment.start), ms(segment.end)}
                cuts |= {ms(segment.start), ms(segment.end)}
                document = segment.version.document
                if document.tier_period == "yearly":
                    instants.add(ms(month_instant(*tier_year_start(document, self.year, self.month))))
        tou_tariffs = {t for t, segs in self.segments.items() if any(s.version.document.tou for s in segs)}
        tou_meters = [m for m, t in self.assignment.items() if t in tou_tariffs]
        tou_meters += [p.meter_id for p in self.pools if p.tariff_id in tou_tariffs]
        clocks = {
            c
            for t in tou_tariffs
            for s in self.segments[t]
            if s.version.document.tou
            for c in change_clocks(s.version.document)
        }
        return SiteUsage.load(
            session, self.site_id, billed, instants, tou_meters=tou_meters, tou_clocks=clocks, cuts=sorted(cuts)
        )

    def meter_usage(self, meter_id: int, start: datetime, end: datetime) -> MeterUsage | None:
        key = (meter_id, ms(start), ms(end))
        if key not in self._usage_cache:
            self._usage_cache[key] = self.usage.usage(meter_id, ms(start), ms(end))
        return self._usage_cache[key]

    def _segment_usage(self, meter_id: int, segments: list[Segment], where: dict[str, Any]) -> list[MeterUsage] | None:
        """The meter's usage per segment, with warnings for what a person should check; None if unknown."""
        code = self.meters[meter_id].code
        out = []
        for segment in segments:
            used = self.meter_usage(meter_id, segment.start, segment.end)
            if used is None:
                self.warnings.add(
                    "missing_reading",
                    f"meter {code}: no reading at {segment.start.isoformat()} or {segment.end.isoformat()}; not billed",
                    meter=code,
                    **where,
                )
                return None
            if not used.metered.billable:
                self.warnings.add(
                    "negative_delta",
                    f"meter {code} went down ({used.metered.detail.get('negative_delta')}); not billed",
                    meter=code,
                    **where,
                )
            elif used.start.reading.estimated or used.end.reading.estimated:
                self.warnings.add("estimated", f"meter {code}: estimated boundary reading", meter=code, **where)
            if self.usage.replacements_inside(meter_id, ms(segment.start), ms(segment.end)) > 1:
                self.warnings.add(
                    "replacements",
                    f"meter {code} was replaced more than once in {self.period}; only "
                    "the first replacement is taken into account",
                    meter=code,
                    **where,
                )
            out.append(used)
        return out

    def _accumulated(self, meter_id: int, segments: list[Segment], where: dict[str, Any]) -> Decimal:
        """Yearly tiers: usage from the start of the tier year to the start of this month."""
        document = segments[0].version.document
        if document.tier_period != "yearly":
            return Decimal(0)
        year_start = month_instant(*tier_year_start(document, self.year, self.month))
        if year_start >= self.start:
            return Decimal(0)
        used = self.meter_usage(meter_id, year_start, self.start)
        if used is None or not used.metered.billable:
            code = self.meters[meter_id].code
            self.warnings.add(
                "tier_year",
                f"meter {code}: no usage known since {year_start.date()}; yearly tiers counted from 0",
                meter=code,
                **where,
            )
            return Decimal(0)
        return used.metered.quantity

    def priced_lines(
        self,
        meter_id: int,
        tariff_id: int,
        household_size: int | None,
        where: dict[str, Any],
        quantities: list[Decimal] | None = None,
    ) -> tuple[list[Line], Decimal] | None:
        """A meter's charge lines under a tariff (``quantities`` per segment replace its own usage: a loss pool)."""
        segments = self._tariff_segments(tariff_id)
        used = self._segment_usage(meter_id, segments, where) if quantities is None else None
        if quantities is None and used is None:
            return None
        parts: list[tuple[Segment, Usage]] = []
        readings: list[dict[str, Any]] = []
        total = Decimal(0)
        for i, segment in enumerate(segments):
            document = segment.version.document
            extra: dict[str, Any] = {}
            if used is not None:
                quantity = used[i].metered.quantity
                extra = used[i].detail()
            else:
                assert quantities is not None
                quantity = quantities[i]
            total += quantity
            usage: Usage = quantity
            if document.tou:
                if quantities is not None:
                    raise ConfigError(
                        f"tariff {self.tariffs.codes[tariff_id]} has time of use; a loss pool has no "
                        "hourly usage: price it with a tariff without time of use"
                    )
                split = self.usage.tou(meter_id, document, ms(segment.start), ms(segment.end), quantity)
                usage = split.usage
                extra["tou"] = {
                    "by_clock": split.by_clock,
                    "decreases": split.decreases,
                    "usage": {p.value: str(q) for p, q in split.usage.items()},
                }
            parts.append((segment, usage))
            readings.append(extra)
        accumulated = self._accumulated(meter_id, segments, where) if quantities is None else Decimal(0)
        charges = price_month(parts, accumulated=accumulated, household_size=household_size)
        code = self.meters[meter_id].code
        lines = [self._line(c, meter_id, code, segments, readings) for c in charges]
        return lines, total

    def _line(
        self, charge: ChargeLine, meter_id: int, code: str, segments: list[Segment], readings: list[dict[str, Any]]
    ) -> Line:
        index = 0
        if len(segments) > 1:
            first = charge.detail.get("segment_from")
            index = next((i for i, s in enumerate(segments) if s.first_day.isoformat() == first), 0)
        detail = charge.detail | {"label_en": charge.label_en, "meter": code}
        if charge.kind != "fixed":
            detail |= {"readings": readings[index]}
        encoded = self.json.encode(detail, ("readings",))
        return Line(
            charge.kind, charge.label, meter_id, charge.quantity, charge.unit_price, charge.amount_fen, detail, encoded
        )

    def _pool(self, pool: SharedPool) -> _PoolResult:
        where = {"pool": pool.code}
        segments = self._tariff_segments(pool.tariff_id)
        pool_detail: dict[str, Any]
        if pool.kind is PoolKind.COMMON:
            priced = self.priced_lines(pool.meter_id, pool.tariff_id, None, where)
            if priced is None:
                return _PoolResult({}, Decimal(0), 0, "missing_reading")
            used = [self.meter_usage(pool.meter_id, s.start, s.end) for s in segments]
            pool_detail = {"readings": [u.detail() for u in used if u is not None]}
        else:
            quantities = []
            pool_detail = {"segments": []}
            for segment in segments:
                master = self.meter_usage(pool.meter_id, segment.start, segment.end)
                children = {c: self.meter_usage(c, segment.start, segment.end) for c in self.children[pool.meter_id]}
                known = [u for u in children.values() if u is not None and u.metered.billable]
                if master is None or not master.metered.billable or len(known) != len(children):
                    self.warnings.add(
                        "pool_readings",
                        f"pool {pool.code}: the master or a sub-meter has no usable reading; loss not allocated",
                        **where,
                    )
                    return _PoolResult({}, Decimal(0), 0, "missing_reading")
                loss = loss_pool(master.metered.quantity, [u.metered.quantity for u in known])
                if loss.negative:
                    self.warnings.add(
                        "negative_loss",
                        f"pool {pool.code}: sub-meters add up to more than the master "
                        f"({loss.difference}); not allocated",
                        **where,
                    )
                    return _PoolResult({}, Decimal(0), 0, "negative_loss")
                quantities.append(loss.quantity)
                pool_detail["segments"].append(
                    {
                        "master": master.detail(),
                        "master_usage": str(master.metered.quantity),
                        "sub_meters_usage": str(sum((u.metered.quantity for u in known), Decimal(0))),
                        "sub_meters": len(known),
                        "loss": str(loss.quantity),
                    }
                )
            priced = self.priced_lines(pool.meter_id, pool.tariff_id, None, where, quantities)
            assert priced is not None
        lines, quantity = priced
        amount = sum(line.amount_fen for line in lines)
        approval = self.approvals.get(pool.id)
        if pool.requires_approval and (approval is None or approval.quantity != quantity):
            approved = None if approval is None else str(approval.quantity)
            self.warnings.add(
                "pool_awaiting_approval",
                f"pool {pool.code}: {quantity} awaits approval (approved: {approved}); not allocated",
                quantity=str(quantity),
                **where,
            )
            return _PoolResult({}, quantity, amount, "awaiting_approval")
        units = [u for u in self.pool_units[pool.id] if u in self.units]
        usage = self._unit_usage(self.meters[pool.meter_id].kind.value) if pool.method.value == "usage" else {}
        split = split_pool(
            pool,
            amount,
            quantity,
            units,
            areas={u: self.units[u].area for u in units},
            usage=usage,
            unit_codes={u: self.units[u].code for u in units},
        )
        if split.fell_back:
            self.warnings.add(
                "pool_equal", f"pool {pool.code}: the {pool.method.value} basis sums to 0; shared equally", **where
            )
        zh, en = KIND_LABEL[pool.kind]
        method_zh, method_en = method_label(split.method)
        shares = {}
        pool_lines = [[p.label, _text(p.quantity), _text(p.unit_price), p.amount_fen] for p in lines]
        for share in split.shares:
            detail = {
                "label_en": f"{en}: {pool.name} ({method_en})",
                "pool": pool.code,
                "pool_name": pool.name,
                "meter": self.meters[pool.meter_id].code,
                "pool_quantity": str(quantity),
                "pool_amount_fen": amount,
                "method": split.method.value,
                "basis": str(share.basis),
                "total_basis": str(split.total_basis),
                "pool_lines": pool_lines,
                **pool_detail,
            }
            if approval is not None and pool.requires_approval:
                detail["approved_by"] = approval.approved_by
            shares[share.unit_id] = Line(
                pool.kind.value if pool.kind is PoolKind.LOSS else "shared",
                f"{zh} {pool.name}（{method_zh}）",
                pool.meter_id,
                share.quantity,
                None,
                share.amount_fen,
                detail,
                self.json.encode(detail, ("pool_lines", "readings", "segments")),
            )
        return _PoolResult(shares, quantity, amount, "allocated")

    def _unit_usage(self, kind: str) -> dict[int, Decimal]:
        """Each unit's own usage this month on meters of ``kind`` (the basis of a pool by usage)."""
        if kind in self._usage_by_kind:
            return self._usage_by_kind[kind]
        out: dict[int, Decimal] = defaultdict(Decimal)
        self._usage_by_kind[kind] = out
        for unit in self.units.values():
            for meter_id, _ in unit.meters:
                if self.meters[meter_id].kind.value == kind:
                    used = self.meter_usage(meter_id, self.start, self.end)
                    if used is not None and used.metered.billable:
                        out[unit.id] += used.metered.quantity
        return out

    def bill(self, unit_id: int) -> UnitBill:
        unit = self.units[unit_id]
        where = {"unit": unit.code}
        lines: list[Line] = []
        for meter_id, tariff_id in unit.meters:
            priced = self.priced_lines(meter_id, tariff_id, unit.household_size, where)
            if priced is not None:
                lines += priced[0]
        for result in self.pool_results:
            if unit_id in result.shares:
                lines.append(result.shares[unit_id])
        if self.property_fee is not None:
            document, version_id = self.property_fee
            lines.append(
                Line(
                    "property_fee",
                    "物业费",
                    None,
                    unit.area,
                    document.per_m2_monthly,
                    property_fee_fen(document, unit.area),
                    {"label_en": "Property fee", "area_m2": str(unit.area), "tariff_version": version_id},
                )
            )
        return UnitBill(unit_id, unit.code, lines)

    def pools_summary(self) -> list[dict[str, Any]]:
        return [
            {
                "pool": p.code,
                "kind": p.kind.value,
                "status": r.status,
                "quantity": str(r.quantity),
                "amount_fen": r.amount_fen,
            }
            for p, r in zip(self.pools, self.pool_results, strict=True)
        ]
