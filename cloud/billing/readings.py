"""Manual meter readings, meter replacements and audited corrections.

Readings typed in or imported for meters without communication are stored once and never updated: a
wrong value is fixed by a ``ReadingCorrection`` (who, when, old value, new value, reason), which is also
written to the audit log. The ORM refuses updates and deletes of these rows (see ``_refuse_change``), so
no code path can change a reading except by adding a correction.

An import file (CSV or XLSX) is all or nothing: every row is checked first, and a file with any error
changes nothing; the error report names the row, the column and what to fix.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import event, select
from sqlalchemy.orm import Mapper, Session

from cloud.audit.services import Actor, Change, record
from cloud.billing.models import MeterReading, MeterReplacement, ReadingCorrection, ReadingSource
from cloud.registry.models import Meter, Site
from cloud.timeseries.query import DEFAULT_TZ

COLUMNS = ("meter", "read_at", "value")
"""Columns of an import file, in its header row (any order; extra columns are ignored)."""
MAX_VALUE = Decimal("999999999999")
STEP = Decimal("0.0001")
"""Readings are stored to 0.0001 (``Numeric(16, 4)``)."""
MAX_ROWS = 100_000
FileFormat = Literal["csv", "xlsx"]


@dataclass(frozen=True)
class RowError:
    row: int
    """As the person sees it: the header is row 1, the first data row is row 2."""
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.message}"


class ReadingError(ValueError):
    """Readings refused; nothing was stored. ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[RowError], status: int = 422) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = list(errors)
        self.status = status


class ImmutableReading(RuntimeError):
    """A stored reading, correction or replacement was about to be changed in place."""


@event.listens_for(MeterReading, "before_update")
@event.listens_for(MeterReading, "before_delete")
@event.listens_for(ReadingCorrection, "before_update")
@event.listens_for(ReadingCorrection, "before_delete")
@event.listens_for(MeterReplacement, "before_update")
@event.listens_for(MeterReplacement, "before_delete")
def _refuse_change(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    raise ImmutableReading(
        f"{type(target).__name__} {target.id} cannot be changed: readings change only through correct_reading()"
    )


@dataclass(frozen=True)
class NewReading:
    meter_code: str
    read_at: datetime
    value: Decimal


def parse_file(data: bytes, fmt: FileFormat) -> list[tuple[int, dict[str, str]]]:
    """(row number, cells by lower-case header) for every non-empty data row of a CSV or XLSX file."""
    if fmt == "csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ReadingError([RowError(1, "-", "the file is not UTF-8 text; save it as CSV UTF-8")]) from None
        table: list[list[str]] = list(csv.reader(io.StringIO(text)))
    else:
        table = _xlsx_rows(data)
    if not table:
        raise ReadingError([RowError(1, "-", f"the file is empty; the first row must name the columns {COLUMNS}")])
    header = [h.strip().lower() for h in table[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ReadingError(
            [RowError(1, c, f"missing column {c!r}; the header row needs {', '.join(COLUMNS)}") for c in missing]
        )
    if len(table) - 1 > MAX_ROWS:
        raise ReadingError([RowError(1, "-", f"{len(table) - 1} rows; split the file into parts of {MAX_ROWS}")])
    out = []
    for n, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        out.append((n, {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}))
    return out


def _xlsx_rows(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds (zip, xml, key errors) for a file that is not XLSX
        raise ReadingError([RowError(1, "-", "the file is not a readable XLSX workbook")]) from None
    sheet = book.worksheets[0]
    rows = [[_cell_text(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    book.close()
    return rows


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return str(value)


def parse_instant(text: str, tz: str = DEFAULT_TZ) -> datetime:
    """``2026-10-01 08:00`` (Beijing time unless an offset is given) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("/", "-"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(UTC)


def parse_value(text: str) -> Decimal:
    value = Decimal(text.replace(",", ""))
    if not value.is_finite() or value < 0 or value > MAX_VALUE:
        raise InvalidOperation
    if value.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValueError("more than 4 decimal places")
    return value


def check_rows(rows: Iterable[tuple[int, dict[str, str]]]) -> tuple[list[tuple[int, NewReading]], list[RowError]]:
    """Field-level checks of parsed rows (no database): readings, and every error found."""
    good: list[tuple[int, NewReading]] = []
    errors: list[RowError] = []
    for n, cells in rows:
        row_errors = []
        code = cells.get("meter", "")
        if not code:
            row_errors.append(RowError(n, "meter", "empty; give the meter code, e.g. WM-B1-U01"))
        try:
            read_at = parse_instant(cells.get("read_at", ""))
        except ValueError:
            row_errors.append(RowError(n, "read_at", f"{cells.get('read_at')!r} is not a time; write 2026-10-01 08:00"))
        try:
            value = parse_value(cells.get("value", ""))
        except (InvalidOperation, ValueError) as exc:
            why = str(exc) if isinstance(exc, ValueError) and str(exc) else f"a number from 0 to {MAX_VALUE}"
            row_errors.append(RowError(n, "value", f"{cells.get('value')!r} is not a meter reading: use {why}"))
        if row_errors:
            errors += row_errors
        else:
            good.append((n, NewReading(code, read_at, value)))
    return good, errors


def import_readings(
    session: Session,
    actor: Actor,
    site: Site,
    rows: Sequence[tuple[int, NewReading]],
    *,
    errors: Sequence[RowError] = (),
    source: ReadingSource = ReadingSource.IMPORT,
    now: datetime | None = None,
    label: str = "request",
) -> int:
    """Store the readings, all or none: raises ReadingError (listing ``errors`` and every problem found here)
    unless every row is acceptable. Returns how many readings were stored."""
    now = now or datetime.now(UTC)
    problems = list(errors)
    meters = {m.code: m for m in session.scalars(select(Meter).where(Meter.site_id == site.id))}
    wanted: dict[int, list[tuple[int, NewReading]]] = defaultdict(list)
    seen: dict[tuple[str, datetime], int] = {}
    for n, r in rows:
        meter = meters.get(r.meter_code)
        if meter is None:
            problems.append(RowError(n, "meter", f"no meter {r.meter_code!r} in site {site.code}"))
            continue
        if r.read_at > now:
            problems.append(RowError(n, "read_at", f"{r.read_at.isoformat()} is in the future"))
            continue
        if (first := seen.setdefault((r.meter_code, r.read_at), n)) != n:
            problems.append(RowError(n, "read_at", f"same meter and time as row {first}; keep one of them"))
            continue
        wanted[meter.id].append((n, r))
    existing = _stored(session, list(wanted))
    for meter_id, items in wanted.items():
        known = existing.get(meter_id, {})
        for n, r in items:
            if r.read_at in known:
                problems.append(
                    RowError(
                        n,
                        "read_at",
                        f"meter {r.meter_code} already has a reading at this time "
                        f"({known[r.read_at]}); fix it with a correction",
                    )
                )
        problems += _decreasing(items, known)
    if problems:
        raise ReadingError(
            sorted(problems, key=lambda e: (e.row, COLUMNS.index(e.column) if e.column in COLUMNS else -1))
        )
    new = [
        MeterReading(
            site_id=site.id,
            meter_id=meters[r.meter_code].id,
            read_at=r.read_at,
            value=r.value,
            source=source,
            entered_by=actor.user_id,
            entered_at=now,
        )
        for items in wanted.values()
        for _, r in items
    ]
    session.add_all(new)
    session.flush()
    record(
        session,
        actor,
        [
            Change(
                "create",
                "meter_readings",
                None,
                f"{site.code}/{label}",
                None,
                {"readings": len(new), "source": source},
                site.id,
            )
        ],
        at=now,
    )
    return len(new)


def _stored(session: Session, meter_ids: list[int]) -> dict[int, dict[datetime, Decimal]]:
    """Effective stored readings (corrections applied) of some meters."""
    out: dict[int, dict[datetime, Decimal]] = defaultdict(dict)
    for meter_id, at, value in session.execute(
        select(MeterReading.meter_id, MeterReading.read_at, MeterReading.value).where(
            MeterReading.meter_id.in_(meter_ids)
        )
    ):
        out[meter_id][at] = value
    for meter_id, at, value in session.execute(
        select(ReadingCorrection.meter_id, ReadingCorrection.read_at, ReadingCorrection.new_value)
        .where(ReadingCorrection.meter_id.in_(meter_ids))
        .order_by(ReadingCorrection.id)
    ):
        out[meter_id][at] = value
    return out


def _decreasing(items: list[tuple[int, NewReading]], known: dict[datetime, Decimal]) -> list[RowError]:
    """A reading lower than the one before it (stored or in the file) is a typing error or a replacement."""
    timeline = sorted([(at, v, 0) for at, v in known.items()] + [(r.read_at, r.value, n) for n, r in items])
    errors = []
    for (at0, v0, n0), (_, v1, n1) in zip(timeline, timeline[1:], strict=False):
        if n1 and v1 < v0:
            before = f"row {n0}" if n0 else f"the stored reading of {at0.isoformat()}"
            errors.append(
                RowError(
                    n1,
                    "value",
                    f"{v1} is lower than {before} ({v0}); check the value, or record a meter replacement first",
                )
            )
    return errors


def correct_reading(
    session: Session,
    actor: Actor,
    meter: Meter,
    read_at: datetime,
    new_value: Decimal,
    reason: str,
    old_value: Decimal | None,
    *,
    now: datetime | None = None,
) -> ReadingCorrection:
    """Set the meter's register at ``read_at`` to ``new_value``; ``old_value`` is what was used until now (the
    stored reading or the telemetry there, None if nothing). Audited; a reason is required."""
    now = now or datetime.now(UTC)
    reason = reason.strip()
    if len(reason) < 4:
        raise ReadingError([RowError(1, "reason", "say why the reading is corrected (at least 4 characters)")])
    try:
        new_value = parse_value(str(new_value)).quantize(STEP)
    except (InvalidOperation, ValueError):
        raise ReadingError(
            [RowError(1, "value", f"{new_value} is not a meter reading (0 to {MAX_VALUE}, at most 4 decimals)")]
        ) from None
    if read_at > now:
        raise ReadingError([RowError(1, "read_at", f"{read_at.isoformat()} is in the future")])
    if old_value is not None and old_value == new_value:
        raise ReadingError([RowError(1, "value", f"the reading is {old_value} already; nothing to correct")])
    correction = ReadingCorrection(
        site_id=meter.site_id,
        meter_id=meter.id,
        read_at=read_at,
        old_value=old_value,
        new_value=new_value,
        reason=reason,
        corrected_by=actor.user_id,
        corrected_at=now,
    )
    session.add(correction)
    session.flush()
    record(
        session,
        actor,
        [
            Change(
                "update",
                "meter_reading",
                correction.id,
                f"{meter.code}@{read_at.isoformat()}",
                {"meter_id": meter.id, "read_at": read_at, "value": old_value},
                {"meter_id": meter.id, "read_at": read_at, "value": new_value, "reason": reason},
                meter.site_id,
            )
        ],
        at=now,
    )
    return correction


def record_replacement(
    session: Session,
    actor: Actor,
    meter: Meter,
    replaced_at: datetime,
    old_final: Decimal,
    new_initial: Decimal,
    *,
    now: datetime | None = None,
) -> MeterReplacement:
    """A meter was swapped: billing counts the old meter up to ``old_final`` and the new one from ``new_initial``."""
    now = now or datetime.now(UTC)
    errors = []
    for column, value in (("old_final", old_final), ("new_initial", new_initial)):
        try:
            parse_value(str(value))
        except (InvalidOperation, ValueError):
            errors.append(RowError(1, column, f"{value} is not a meter reading (0 to {MAX_VALUE})"))
    if replaced_at > now:
        errors.append(RowError(1, "replaced_at", f"{replaced_at.isoformat()} is in the future"))
    taken = session.scalar(
        select(MeterReplacement.id).where(
            MeterReplacement.meter_id == meter.id, MeterReplacement.replaced_at == replaced_at
        )
    )
    if taken is not None:
        errors.append(RowError(1, "replaced_at", f"meter {meter.code} already has a replacement at this time"))
    if errors:
        raise ReadingError(errors)
    replacement = MeterReplacement(
        site_id=meter.site_id,
        meter_id=meter.id,
        replaced_at=replaced_at,
        old_final=old_final,
        new_initial=new_initial,
        recorded_by=actor.user_id,
        recorded_at=now,
    )
    session.add(replacement)
    session.flush()
    record(
        session,
        actor,
        [
            Change(
                "create",
                "meter_replacement",
                replacement.id,
                f"{meter.code}@{replaced_at.isoformat()}",
                None,
                {"old_final": old_final, "new_initial": new_initial},
                meter.site_id,
            )
        ],
        at=now,
    )
    return replacement
