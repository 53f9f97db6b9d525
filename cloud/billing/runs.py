"""Bill runs: preview, then issue, a site's bills for a calendar month (Asia/Shanghai).

A preview computes every unit's bill and writes none; its summary holds each unit's total and lines and the
difference from bills already issued for the period. An issue writes each unit's bill once (``bills`` is unique
per unit and period). Re-running an issued period compares fingerprints: unchanged bills are left alone; a
bill whose lines changed (a late reading, an audited correction, an approved pool) gets a CORRECTION ledger
entry, effective at once, whose lines are the differences, never a second bill (``bill_revisions`` is unique
per bill and revision, so two runs cannot both correct one bill).

Several hub processes: on PostgreSQL an issue holds an advisory lock for its site and period, so a second
run waits and then finds nothing to do; SQLite has one writer at a time, and the unique constraints make a
racing run fail rather than double-issue. Work is written in batches, each its own transaction that also
advances ``units_done`` for the finance page polling it; a run that fails part-way leaves whole batches,
and running it again completes it.
"""

from __future__ import annotations

import gc
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from cloud.audit.services import Actor
from cloud.auth.services import UserError
from cloud.billing.compute import ConfigError, Line, PeriodBiller, UnitBill, month_instant
from cloud.billing.models import (
    Bill,
    BillLine,
    BillRevision,
    BillRun,
    EntryKind,
    EntryState,
    LedgerEntry,
    RunState,
)
from cloud.db import Base, is_postgres, transaction
from cloud.registry.models import Site
from cloud.timeseries.rollup import refresh_rollups

PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
BATCH = 2_000
"""Units per transaction of an issue, and between two progress updates."""
DUE_DAY = 15
"""Bills fall due on this day of the month after the period, unless the run names a due date."""
LOCK_NAMESPACE = 0x4252
"""High bits of the PostgreSQL advisory lock key of a run ("BR")."""
PREVIEW_LINES = ("label", "quantity", "amount_fen")

log = logging.getLogger(__name__)


def parse_period(period: str) -> tuple[int, int]:
    found = PERIOD.match(period)
    if found is None:
        raise UserError(f"period {period!r} is not a month; write it as YYYY-MM, e.g. 2026-10")
    return int(found.group(1)), int(found.group(2))


def default_due_date(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, DUE_DAY)


def start_run(
    session: Session, actor: Actor, site: Site, period: str, *, issue: bool, now: datetime | None = None
) -> BillRun:
    """Record a run (state running); ``execute_run`` does the work. Refuses to issue a month not yet over."""
    now = now or datetime.now(UTC)
    year, month = parse_period(period)
    end = month_instant(year + month // 12, month % 12 + 1)
    if issue and end > now:
        raise UserError(
            f"period {period} ends {end.isoformat()}; bills can be issued after it ended (a preview is possible now)"
        )
    run = BillRun(
        site_id=site.id,
        period=period,
        issue=issue,
        state=RunState.RUNNING,
        units_total=0,
        units_done=0,
        summary={},
        started_by=actor.user_id,
        started_at=now,
    )
    session.add(run)
    session.flush()
    return run


@dataclass(frozen=True)
class _Current:
    """An issued bill as it stands now (after corrections)."""

    bill_id: int
    revision: int
    fingerprint: str
    total_fen: int


def execute_run(
    engine: Engine, run_id: int, *, now: datetime | None = None, due_date: date | None = None, batch: int = BATCH
) -> BillRun:
    """Compute (and, for an issue, write) the run's bills; a failure is recorded on the run, not raised.

    ``now`` (tests pass a fixed clock) stamps the bills and the end of the run; by default the wall clock."""
    factory = sessionmaker(engine, expire_on_commit=False)
    clock = now
    now = now or datetime.now(UTC)
    with factory() as session:
        run = session.get(BillRun, run_id)
        if run is None:
            raise ValueError(f"bill run {run_id} not found")
        site = session.get(Site, run.site_id)
        assert site is not None
    year, month = parse_period(run.period)
    phases: dict[str, float] = defaultdict(float)
    try:
        with _run_lock(engine, run) if run.issue else _no_lock():
            with _timed(phases, "refresh"):
                _refresh_rollups(factory)
            with _collector_paused():
                with _timed(phases, "load"), factory() as session:
                    biller = PeriodBiller(session, site.id, year, month)
                due = due_date or default_due_date(year, month)
                summary = _run(factory, run, site, biller, now, due, batch, phases)
        log.info(
            "bill run %s: %s",
            run_id,
            ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()),
            extra={"phases": dict(phases)},
        )
        state = RunState.ISSUED if run.issue else RunState.PREVIEWED
        error = None
    except (ConfigError, UserError) as exc:
        state, error, summary = RunState.FAILED, str(exc), {}
    except Exception as exc:  # recorded for the finance page; the log has the traceback
        log.exception("bill run %s failed", run_id)
        state, error, summary = RunState.FAILED, f"{type(exc).__name__}: {exc}", {}
    with transaction(factory) as session:
        session.execute(
            update(BillRun)
            .where(BillRun.id == run_id)
            .values(
                state=state,
                error=error,
                finished_at=datetime.now(UTC) if clock is None else clock,
                **({"summary": summary} if summary else {}),
            )
        )
    with factory() as session:
        done = session.get(BillRun, run_id)
        assert done is not None
        return done


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during a run: its millions of long-lived, acyclic objects (readings, usage,
    lines) were traversed again by every full collection, a sixth of a run's time. A run makes little cyclic
    garbage; what there is (and other threads') is collected once it is over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _timed(phases: dict[str, float], phase: str) -> Iterator[None]:
    """Adds the block's wall time to ``phases[phase]``: a run logs where its time went (refresh, load, compute,
    write), the figure to look at when a site's run gets slow."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[phase] += time.perf_counter() - started


@contextmanager
def _run_lock(engine: Engine, run: BillRun) -> Iterator[None]:
    """PostgreSQL: one issue per site and period at a time, across hub processes (a session advisory lock on
    its own connection, held for the whole run)."""
    if not is_postgres(engine):
        yield
        return
    year, month = parse_period(run.period)
    key = (LOCK_NAMESPACE << 48) | (run.site_id << 20) | (year * 12 + month - 1) % (1 << 20)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()


def _refresh_rollups(factory: sessionmaker[Session]) -> None:
    """Recompute dirty hours first: the run reads rollups only, and late readings must count."""
    while True:
        with transaction(factory) as session:
            if not refresh_rollups(session.connection()):
                return


def _run(
    factory: sessionmaker[Session],
    run: BillRun,
    site: Site,
    biller: PeriodBiller,
    now: datetime,
    due: date,
    batch: int,
    phases: dict[str, float],
) -> dict[str, Any]:
    units = list(biller.units)
    with transaction(factory) as session:
        session.execute(update(BillRun).where(BillRun.id == run.id).values(units_total=len(units)))
    totals: dict[str, Any] = defaultdict(int)
    bills: list[dict[str, Any]] = []
    diff: list[dict[str, Any]] = []
    corrections: list[dict[str, Any]] = []

    def write(computed: list[UnitBill], done: int) -> None:
        with transaction(factory) as session:
            current = _current(session, run.period, [b.unit_id for b in computed])
            for unit_bill in computed:
                now_fen = unit_bill.total_fen
                was = current.get(unit_bill.unit_id)
                if not unit_bill.lines:
                    totals["units_without_charges"] += 1
                    continue
                totals["total_fen"] += now_fen
                if was is not None and was.fingerprint == unit_bill.fingerprint:
                    totals["unchanged"] += 1
                elif was is not None:
                    diff.append(
                        {
                            "unit": unit_bill.unit_code,
                            "unit_id": unit_bill.unit_id,
                            "issued_fen": was.total_fen,
                            "now_fen": now_fen,
                            "delta_fen": now_fen - was.total_fen,
                        }
                    )
                if not run.issue:
                    bills.append(
                        {
                            "unit": unit_bill.unit_code,
                            "unit_id": unit_bill.unit_id,
                            "total_fen": now_fen,
                            "lines": [[ln.label, _text(ln.quantity), ln.amount_fen] for ln in unit_bill.lines],
                        }
                    )
            if run.issue:
                fresh = [b for b in computed if b.lines and b.unit_id not in current]
                totals["bills_issued"] += _issue(session, run, site, biller.period, fresh, now, due)
                for unit_bill in computed:
                    was = current.get(unit_bill.unit_id)
                    if unit_bill.lines and was is not None and was.fingerprint != unit_bill.fingerprint:
                        corrections.append(_correct(session, run, biller.period, was, unit_bill, now))
                        totals["corrections"] += 1
            session.execute(update(BillRun).where(BillRun.id == run.id).values(units_done=done))

    _pipelined(factory, units, batch, biller.bill, write, phases)
    summary: dict[str, Any] = {
        "period": biller.period,
        "units": len(units),
        **{k: totals[k] for k in ("total_fen", "bills_issued", "unchanged", "corrections", "units_without_charges")},
        "pools": biller.pools_summary(),
        "diff": diff,
        **biller.warnings.as_json(),
    }
    if run.issue:
        summary["correction_entries"] = corrections
    else:
        summary["bills"] = bills
        summary["line_fields"] = list(PREVIEW_LINES)
    return summary


def _pipelined(
    factory: sessionmaker[Session],
    units: list[int],
    batch: int,
    compute: Callable[[int], UnitBill],
    write: Callable[[list[UnitBill], int], None],
    phases: dict[str, float],
) -> None:
    """Batches computed here and written in order, each in its own transaction. On PostgreSQL one batch is written
    on a second thread while the next is computed, so the database's work (COPY, JSONB, indexes) overlaps Python's;
    ``phases["write"]`` is then the time spent waiting for it."""
    batches = [units[i : i + batch] for i in range(0, len(units), batch)]
    if not is_postgres(factory.kw["bind"]):
        for n, chunk in enumerate(batches):
            with _timed(phases, "compute"):
                computed = [compute(u) for u in chunk]
            with _timed(phases, "write"):
                write(computed, min((n + 1) * batch, len(units)))
        return
    with ThreadPoolExecutor(1) as writer:
        pending: Future[None] | None = None
        for n, chunk in enumerate(batches):
            with _timed(phases, "compute"):
                computed = [compute(u) for u in chunk]
            if pending is not None:
                with _timed(phases, "write"):
                    pending.result()
            pending = writer.submit(write, computed, min((n + 1) * batch, len(units)))
        if pending is not None:
            with _timed(phases, "write"):
                pending.result()


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _current(session: Session, period: str, unit_ids: list[int]) -> dict[int, _Current]:
    """Unit id -> its issued bill for the period at its latest revision."""
    latest = (
        select(BillRevision.bill_id, func.max(BillRevision.revision).label("revision"))
        .join(Bill, Bill.id == BillRevision.bill_id)
        .where(Bill.period == period, Bill.unit_id.in_(unit_ids))
        .group_by(BillRevision.bill_id)
        .subquery()
    )
    query = (
        select(Bill.unit_id, Bill.id, BillRevision.revision, BillRevision.fingerprint, BillRevision.total_fen)
        .join(latest, latest.c.bill_id == Bill.id)
        .join(BillRevision, (BillRevision.bill_id == Bill.id) & (BillRevision.revision == latest.c.revision))
    )
    return {unit: _Current(bill, rev, fp, total) for unit, bill, rev, fp, total in session.execute(query)}


def bill_number(site: Site, period: str, unit_code: str, unit_id: int) -> str:
    """``<site code>-<YYYYMM>-<unit code>``; ids instead of codes when that would not fit the column."""
    number = f"{site.code}-{period.replace('-', '')}-{unit_code}"
    return number if len(number) <= 40 else f"S{site.id}-{period.replace('-', '')}-U{unit_id}"


def _issue(
    session: Session, run: BillRun, site: Site, period: str, bills: list[UnitBill], now: datetime, due: date
) -> int:
    if not bills:
        return 0
    rows = [
        (
            bill_number(site, period, b.unit_code, b.unit_id),
            site.id,
            b.unit_id,
            period,
            run.id,
            b.total_fen,
            now,
            due,
            b.fingerprint,
        )
        for b in bills
    ]
    ids = _write_bills(session, rows)
    _write_lines(session, [(bill_id, None, b.lines) for bill_id, b in zip(ids, bills, strict=True)])
    revisions = [(bill_id, 0, b.fingerprint, b.total_fen, None, run.id) for bill_id, b in zip(ids, bills, strict=True)]
    _write(session, "bill_revisions", REVISION_COLUMNS, revisions)
    return len(bills)


def _write_bills(session: Session, rows: list[tuple[Any, ...]]) -> list[int]:
    """The bills' ids, in order: taken from the sequence and written by COPY on PostgreSQL; inserted with
    RETURNING on SQLite."""
    conn = session.connection()
    if is_postgres(conn.engine):
        query = text("SELECT nextval(pg_get_serial_sequence('bills', 'id')) FROM generate_series(1, :n)")
        ids: list[int] = list(map(int, conn.execute(query, {"n": len(rows)}).scalars()))
        _write(session, "bills", ("id", *BILL_COLUMNS), [(i, *row) for i, row in zip(ids, rows, strict=True)])
        return ids
    statement = insert(Bill).returning(Bill.id, sort_by_parameter_order=True)
    params = [dict(zip(BILL_COLUMNS, row, strict=True)) for row in rows]
    return list(map(int, session.execute(statement, params).scalars()))


BILL_COLUMNS = (
    "number",
    "site_id",
    "unit_id",
    "period",
    "run_id",
    "total_fen",
    "issued_at",
    "due_date",
    "fingerprint",
)
LINE_COLUMNS = (
    "bill_id",
    "entry_id",
    "position",
    "kind",
    "label",
    "meter_id",
    "quantity",
    "unit_price",
    "amount_fen",
    "detail",
)
REVISION_COLUMNS = ("bill_id", "revision", "fingerprint", "total_fen", "entry_id", "run_id")


def _write(session: Session, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert in the session's transaction: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    conn = session.connection()
    if not is_postgres(conn.engine):
        conn.execute(Base.metadata.tables[table].insert(), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([Jsonb(v) if isinstance(v, dict) else v for v in row])


def _write_lines(session: Session, groups: list[tuple[int, int | None, list[Line]]]) -> None:
    """PostgreSQL is sent each detail as the JSON text the fingerprint already encoded (COPY parses it)."""
    encoded = is_postgres(session.connection().engine)
    rows = [
        (
            bill_id,
            entry_id,
            n,
            line.kind,
            line.label,
            line.meter_id,
            line.quantity,
            line.unit_price,
            line.amount_fen,
            line.detail_json if encoded else line.detail,
        )
        for bill_id, entry_id, lines in groups
        for n, line in enumerate(lines)
    ]
    _write(session, "bill_lines", LINE_COLUMNS, rows)


def _stored_lines(session: Session, bill_id: int) -> dict[tuple[str, str, int | None], Line]:
    """The bill's lines as they stand: issued lines plus every correction's difference lines, per charge."""
    out: dict[tuple[str, str, int | None], Line] = {}
    for line in session.scalars(select(BillLine).where(BillLine.bill_id == bill_id).order_by(BillLine.id)):
        key = (line.kind, line.label, line.meter_id)
        before = out.get(key)
        quantity = line.quantity if before is None else _add(before.quantity, line.quantity)
        amount = line.amount_fen + (0 if before is None else before.amount_fen)
        detail = {k: v for k, v in line.detail.items() if k not in ("was", "now")}
        out[key] = Line(line.kind, line.label, line.meter_id, quantity, line.unit_price, amount, detail)
    return out


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None and b is None else (a or Decimal(0)) + (b or Decimal(0))


def _difference(old: dict[tuple[str, str, int | None], Line], new: list[Line]) -> list[Line]:
    """One line per charge that changed: the quantity and amount to add; its detail is the charge's detail now
    (readings used) with what it was and is (``was``/``now``: quantity and amount)."""
    out = []
    seen = set()
    for line in new:
        key = line.key()
        seen.add(key)
        was = old.get(key)
        dq = _add(line.quantity, None if was is None or was.quantity is None else -was.quantity)
        da = line.amount_fen - (0 if was is None else was.amount_fen)
        if was is None or da or (dq is not None and dq != 0) or was.detail != line.detail:
            detail = line.detail | {
                "now": {"quantity": _text(line.quantity), "amount_fen": line.amount_fen},
                "was": None if was is None else {"quantity": _text(was.quantity), "amount_fen": was.amount_fen},
            }
            out.append(Line(line.kind, line.label, line.meter_id, dq, line.unit_price, da, detail))
    for key, was in old.items():
        if key not in seen and (was.amount_fen or was.quantity):
            detail = was.detail | {
                "now": None,
                "was": {"quantity": _text(was.quantity), "amount_fen": was.amount_fen},
            }
            negated = None if was.quantity is None else -was.quantity
            out.append(Line(was.kind, was.label, was.meter_id, negated, was.unit_price, -was.amount_fen, detail))
    return out


def _fen_text(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _correct(
    session: Session, run: BillRun, period: str, was: _Current, unit_bill: UnitBill, now: datetime
) -> dict[str, Any]:
    """A correction entry (effective at once) with the difference lines, and the bill's next revision."""
    bill = session.get(Bill, was.bill_id)
    assert bill is not None
    lines = _difference(_stored_lines(session, was.bill_id), unit_bill.lines)
    delta = unit_bill.total_fen - was.total_fen
    revision = was.revision + 1
    entry = LedgerEntry(
        site_id=bill.site_id,
        unit_id=bill.unit_id,
        bill_id=bill.id,
        kind=EntryKind.CORRECTION,
        amount_fen=delta,
        reason=f"{period} 账单重算更正（读数或分摊有变化），差额 {_fen_text(delta)} 元",
        state=EntryState.EFFECTIVE,
        approvals_required=0,
        dedupe_key=f"correction:{bill.id}:{revision}",
        created_by=run.started_by,
        created_at=now,
        effective_at=now,
    )
    session.add(entry)
    session.flush()
    _write_lines(session, [(bill.id, entry.id, lines)])
    session.add(
        BillRevision(
            bill_id=bill.id,
            revision=revision,
            fingerprint=unit_bill.fingerprint,
            total_fen=unit_bill.total_fen,
            entry_id=entry.id,
            run_id=run.id,
        )
    )
    session.flush()
    return {"unit": unit_bill.unit_code, "bill_id": bill.id, "entry_id": entry.id, "delta_fen": delta}
