"""Tariffs of a site, their dated versions (documents validated by the engine), and which meter uses which.

A version is never edited: a price change is a new version with its effective date, so a bill can always be
recomputed with the prices that were in force. Property-fee tariffs (per m2 of floor area per month) are not
meter tariffs: their document is ``PropertyFeeDocument``, and a site has at most one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cloud.audit.services import Action, Actor, Change, record
from cloud.auth.services import UserError
from cloud.billing.engine import TariffDocument, Utility, dump_tariff, parse_tariff
from cloud.billing.engine import TariffVersion as EngineVersion
from cloud.billing.engine.tariffs import Money
from cloud.billing.models import Tariff, TariffAssignment, TariffKind, TariffVersion
from cloud.registry.models import Meter, MeterKind, Site

METER_KIND_UTILITY = {MeterKind.ELECTRICITY: Utility.ELECTRICITY, MeterKind.WATER: Utility.WATER}


class PropertyFeeDocument(BaseModel):
    """物业费: yuan per m2 of registered floor area per month."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    per_m2_monthly: Money


def validation_message(exc: ValidationError) -> str:
    """The engine's messages, one per problem, each prefixed with the field it is about."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def validate_document(kind: TariffKind, document: Mapping[str, Any]) -> dict[str, Any]:
    """The document as it will be stored, or UserError(422) with the validation message."""
    try:
        if kind is TariffKind.PROPERTY_FEE:
            return PropertyFeeDocument.model_validate(document).model_dump(mode="json")
        parsed = parse_tariff(document)
    except ValidationError as exc:
        raise UserError(f"invalid tariff document: {validation_message(exc)}") from None
    if parsed.utility.value != kind.value:
        raise UserError(f"utility: this is a {kind.value} tariff; the document says {parsed.utility.value}")
    return dump_tariff(parsed)


def _snapshot(tariff: Tariff) -> dict[str, Any]:
    return {"code": tariff.code, "name": tariff.name, "kind": tariff.kind}


def create_tariff(
    session: Session,
    actor: Actor,
    site: Site,
    code: str,
    name: str,
    kind: TariffKind,
    effective_from: date,
    document: Mapping[str, Any],
    now: datetime | None = None,
) -> Tariff:
    """A new tariff with its first version."""
    now = now or datetime.now(UTC)
    stored = validate_document(kind, document)
    if session.scalar(select(Tariff.id).where(Tariff.site_id == site.id, Tariff.code == code)) is not None:
        raise UserError(f"tariff {code} exists in site {site.code}; add a version to it instead", 409)
    if kind is TariffKind.PROPERTY_FEE and property_fee_tariff(session, site.id) is not None:
        raise UserError(f"site {site.code} has a property-fee tariff already; add a version to it", 409)
    tariff = Tariff(site_id=site.id, code=code, name=name, kind=kind, created_at=now)
    session.add(tariff)
    session.flush()
    record(
        session,
        actor,
        [Change("create", "tariff", tariff.id, f"{site.code}/{code}", None, _snapshot(tariff), site.id)],
        at=now,
    )
    add_version(session, actor, tariff, effective_from, stored, now=now)
    return tariff


def add_version(
    session: Session,
    actor: Actor,
    tariff: Tariff,
    effective_from: date,
    document: Mapping[str, Any],
    now: datetime | None = None,
) -> TariffVersion:
    now = now or datetime.now(UTC)
    stored = validate_document(tariff.kind, document)
    taken = select(TariffVersion.id).where(
        TariffVersion.tariff_id == tariff.id, TariffVersion.effective_from == effective_from
    )
    if session.scalar(taken) is not None:
        raise UserError(
            f"tariff {tariff.code} has a version effective {effective_from} already; versions are "
            "never edited: pick another date",
            409,
        )
    version = TariffVersion(
        tariff_id=tariff.id, effective_from=effective_from, document=stored, created_by=actor.user_id, created_at=now
    )
    session.add(version)
    session.flush()
    record(
        session,
        actor,
        [
            Change(
                "create",
                "tariff_version",
                version.id,
                f"{tariff.code}@{effective_from}",
                None,
                {"effective_from": effective_from, "document": stored},
                tariff.site_id,
            )
        ],
        at=now,
    )
    return version


def assign(session: Session, actor: Actor, meter: Meter, tariff: Tariff | None) -> None:
    """Bill ``meter`` by ``tariff`` from the next run on (None: stop billing it)."""
    if tariff is not None:
        if tariff.site_id != meter.site_id:
            raise UserError(f"tariff {tariff.code} belongs to another site than meter {meter.code}")
        if tariff.kind is TariffKind.PROPERTY_FEE or tariff.kind.value != meter.kind.value:
            raise UserError(
                f"meter {meter.code} measures {meter.kind.value}; tariff {tariff.code} is for {tariff.kind.value}"
            )
    current = session.scalar(select(TariffAssignment).where(TariffAssignment.meter_id == meter.id))
    before = None if current is None else {"tariff_id": current.tariff_id}
    if current is not None:
        session.execute(delete(TariffAssignment).where(TariffAssignment.id == current.id))
    if tariff is not None:
        session.add(TariffAssignment(site_id=meter.site_id, meter_id=meter.id, tariff_id=tariff.id))
    after = None if tariff is None else {"tariff_id": tariff.id}
    action: Action = "create" if before is None else "delete" if after is None else "update"
    record(session, actor, [Change(action, "tariff_assignment", meter.id, meter.code, before, after, meter.site_id)])


def property_fee_tariff(session: Session, site_id: int) -> Tariff | None:
    return session.scalar(select(Tariff).where(Tariff.site_id == site_id, Tariff.kind == TariffKind.PROPERTY_FEE))


@dataclass(frozen=True)
class SiteTariffs:
    """Every tariff version of a site, parsed once for a run."""

    meter_versions: dict[int, list[EngineVersion]]
    """Tariff id -> its versions for the engine."""
    property_fee: list[tuple[date, PropertyFeeDocument, int]]
    """(effective from, document, version id), oldest first."""
    codes: dict[int, str]


def load_site_tariffs(session: Session, site_id: int) -> SiteTariffs:
    rows: Any = session.execute(
        select(
            Tariff.id, Tariff.code, Tariff.kind, TariffVersion.id, TariffVersion.effective_from, TariffVersion.document
        )
        .join(TariffVersion, TariffVersion.tariff_id == Tariff.id)
        .where(Tariff.site_id == site_id)
        .order_by(TariffVersion.effective_from)
    )
    meter_versions: dict[int, list[EngineVersion]] = {}
    property_fee: list[tuple[date, PropertyFeeDocument, int]] = []
    codes: dict[int, str] = {}
    for tariff_id, code, kind, version_id, effective_from, document in rows:
        codes[tariff_id] = code
        if kind is TariffKind.PROPERTY_FEE:
            property_fee.append((effective_from, PropertyFeeDocument.model_validate(document), version_id))
        else:
            parsed: TariffDocument = parse_tariff(document)
            meter_versions.setdefault(tariff_id, []).append(EngineVersion(effective_from, parsed, version_id))
    return SiteTariffs(meter_versions, property_fee, codes)


def property_fee_in_force(tariffs: SiteTariffs, first_day: date) -> tuple[PropertyFeeDocument, int] | None:
    """The property-fee version in force on the first day of the month billed (it is charged per whole month)."""
    found = None
    for effective_from, document, version_id in tariffs.property_fee:
        if effective_from <= first_day:
            found = (document, version_id)
    return found


def property_fee_fen(document: PropertyFeeDocument, area_m2: Decimal) -> int:
    """Area x monthly price, rounded half-up to the fen."""
    return int((area_m2 * document.per_m2_monthly * 100).quantize(Decimal(1), ROUND_HALF_UP))
