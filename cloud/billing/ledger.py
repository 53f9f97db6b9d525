"""Adjustments, waivers (减免) and voids: ledger entries that change what a bill owes only once approved.

An issued bill is never edited. Finance creates an entry PENDING with a reason; it takes effect after the
number of approvals the site's rules require (``cloud.billing.rules``), each by a different person who is not
its creator. One rejection ends it. Every step is audited in the same transaction.

Amounts given here are what the person types: an adjustment is signed (positive charges more), a waiver is the
positive amount to forgive (stored negative), a void forgives whatever the bill still owes when it takes effect.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.audit.services import Actor, Change, record
from cloud.auth.models import User
from cloud.auth.services import UserError
from cloud.billing.balances import bill_balance
from cloud.billing.models import Approval, Bill, EntryKind, EntryState, LedgerEntry
from cloud.billing.rules import approvals_required

MANUAL_KINDS = (EntryKind.ADJUSTMENT, EntryKind.WAIVER, EntryKind.VOID)
MAX_ENTRY_FEN = 10_000_000_00
"""Ten million yuan: anything larger is a typing error, not an adjustment."""


def actor_of(user: User) -> Actor:
    return Actor(user.username, user.id)


def entry_snapshot(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "bill_id": entry.bill_id, "unit_id": entry.unit_id, "kind": entry.kind, "amount_fen": entry.amount_fen,
        "reason": entry.reason, "state": entry.state, "approvals_required": entry.approvals_required,
        "approvals": [
            {"level": a.level, "user_id": a.user_id, "approved": a.approved, "comment": a.comment}
            for a in entry.approvals
        ],
    }  # fmt: skip


def lock_bill(session: Session, bill_id: int) -> Bill:
    """The bill, row-locked until the transaction ends: approvals and payments on one bill take turns."""
    bill = session.scalar(select(Bill).where(Bill.id == bill_id).with_for_update())
    if bill is None:
        raise UserError(f"bill {bill_id} not found", 404)
    return bill


def _amount(session: Session, bill: Bill, kind: EntryKind, amount_fen: int | None) -> int:
    """The signed amount to store, checked against what the bill owes now."""
    outstanding = bill_balance(session, bill.id).outstanding_fen
    if kind is EntryKind.VOID:
        if amount_fen is not None:
            raise UserError("a void cancels whatever the bill still owes: leave the amount out")
        if outstanding <= 0:
            raise UserError(f"bill {bill.number} owes nothing: there is nothing to void", 409)
        return -outstanding
    if amount_fen is None or amount_fen == 0:
        raise UserError(f"an {kind.value} needs a non-zero amount in fen")
    if abs(amount_fen) > MAX_ENTRY_FEN:
        raise UserError(f"amount {amount_fen} fen is more than the largest allowed ({MAX_ENTRY_FEN} fen)")
    if kind is EntryKind.ADJUSTMENT:
        return amount_fen
    if amount_fen < 0:
        raise UserError("give the amount to waive as a positive number of fen")
    if amount_fen > outstanding:
        raise UserError(
            f"a waiver can forgive at most what bill {bill.number} still owes ({outstanding} fen), not {amount_fen}",
            409,
        )
    return -amount_fen


def create_entry(
    session: Session,
    user: User,
    bill_id: int,
    kind: EntryKind,
    reason: str,
    amount_fen: int | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """A pending adjustment, waiver or void of an issued bill; it changes nothing until approved."""
    now = now or datetime.now(UTC)
    if kind not in MANUAL_KINDS:
        raise UserError(f"entries of kind {kind.value} are made by the system, not by hand")
    if not reason.strip():
        raise UserError("give a reason: it is printed in the approval queue and kept in the audit log")
    bill = lock_bill(session, bill_id)
    amount = _amount(session, bill, kind, amount_fen)
    entry = LedgerEntry(
        site_id=bill.site_id, unit_id=bill.unit_id, bill_id=bill.id, kind=kind, amount_fen=amount,
        reason=reason.strip(), state=EntryState.PENDING,
        approvals_required=approvals_required(session, bill.site_id, kind, amount),
        created_by=user.id, created_at=now,
    )  # fmt: skip
    session.add(entry)
    session.flush()
    label = f"{kind.value} {amount} fen on bill {bill.number}"
    record(
        session, actor_of(user), [Change("create", "ledger_entry", entry.id, label, None, entry_snapshot(entry),
                                         bill.site_id)], now,
    )  # fmt: skip
    return entry


def _pending_entry(session: Session, user: User, entry_id: int) -> tuple[LedgerEntry, Bill]:
    entry = session.get(LedgerEntry, entry_id)
    if entry is None or entry.bill_id is None:
        raise UserError(f"ledger entry {entry_id} not found", 404)
    bill = lock_bill(session, entry.bill_id)
    session.refresh(entry, with_for_update=True)
    if entry.state is not EntryState.PENDING:
        raise UserError(f"ledger entry {entry_id} is {entry.state.value} already: it cannot be decided again", 409)
    if entry.created_by == user.id:
        raise UserError("you created this entry: someone else must approve or reject it", 403)
    if any(a.user_id == user.id for a in entry.approvals):
        raise UserError("you approved this entry already: the next level needs another person", 403)
    return entry, bill


def _decide(
    session: Session, user: User, entry: LedgerEntry, bill: Bill, approved: bool, comment: str, now: datetime
) -> LedgerEntry:
    before = entry_snapshot(entry)
    level = len(entry.approvals) + 1
    session.add(Approval(entry_id=entry.id, level=level, user_id=user.id, approved=approved, comment=comment, at=now))
    session.flush()
    session.refresh(entry, ["approvals"])
    if not approved:
        entry.state = EntryState.REJECTED
    elif level >= entry.approvals_required:
        if entry.kind is not EntryKind.ADJUSTMENT:
            entry.amount_fen = _amount(
                session, bill, entry.kind, None if entry.kind is EntryKind.VOID else -entry.amount_fen
            )
        entry.state = EntryState.EFFECTIVE
        entry.effective_at = now
    session.flush()
    verb = "approved" if approved else "rejected"
    label = f"{entry.kind.value} on bill {bill.number}: level {level} {verb}"
    record(session, actor_of(user), [Change("update", "ledger_entry", entry.id, label, before, entry_snapshot(entry),
                                            bill.site_id)], now)  # fmt: skip
    return entry


def approve(session: Session, user: User, entry_id: int, comment: str = "", now: datetime | None = None) -> LedgerEntry:
    """One level of approval; the last required level makes the entry effective (a waiver or void is checked
    again against what the bill owes at that moment, so two waivers cannot forgive more than was owed)."""
    entry, bill = _pending_entry(session, user, entry_id)
    return _decide(session, user, entry, bill, True, comment.strip(), now or datetime.now(UTC))


def reject(session: Session, user: User, entry_id: int, comment: str, now: datetime | None = None) -> LedgerEntry:
    if not comment.strip():
        raise UserError("say why the entry is rejected: the creator sees the comment")
    entry, bill = _pending_entry(session, user, entry_id)
    return _decide(session, user, entry, bill, False, comment.strip(), now or datetime.now(UTC))
