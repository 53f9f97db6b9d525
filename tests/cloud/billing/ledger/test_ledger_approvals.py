"""Adjustments, waivers and voids change what a bill owes only after a second person approves them."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from cloud.audit.models import AuditEntry
from cloud.auth.services import UserError
from cloud.billing.balances import bill_balance
from cloud.billing.ledger import approve, create_entry, reject
from cloud.billing.models import EntryKind, EntryState
from cloud.billing.rules import ApprovalRule
from cloud.payments.models import PaymentMethod
from cloud.payments.services import counter_payment
from cloud.registry.models import Unit
from tests.cloud.billing.ledger.bill_factory import Books

DUE = date(2026, 3, 20)


def outstanding(site: Books, bill_id: int) -> int:
    with site.session() as session:
        return bill_balance(session, bill_id).outstanding_fen


def test_a_waiver_without_approval_changes_nothing_and_takes_effect_once_approved(site: Books) -> None:
    bill = site.bill("2026-02", 12_000, DUE)
    with site.session() as session, session.begin():
        entry = create_entry(session, site.clerk, bill, EntryKind.WAIVER, "水管爆裂，减免部分水费", 2_000)
        entry_id = entry.id
        assert (entry.state, entry.amount_fen, entry.approvals_required) == (EntryState.PENDING, -2_000, 1)
    assert outstanding(site, bill) == 12_000

    with site.session() as session, session.begin():
        assert approve(session, site.approver, entry_id, "同意").state is EntryState.EFFECTIVE
    assert outstanding(site, bill) == 10_000


def test_the_creator_cannot_approve_their_own_entry(site: Books) -> None:
    bill = site.bill("2026-02", 12_000, DUE)
    with site.session() as session, session.begin():
        entry_id = create_entry(session, site.clerk, bill, EntryKind.VOID, "重复开单").id
    with site.session() as session, session.begin(), pytest.raises(UserError) as refused:
        approve(session, site.clerk, entry_id)
    assert refused.value.status == 403
    assert "someone else must approve" in str(refused.value)
    assert outstanding(site, bill) == 12_000


def test_with_two_levels_configured_one_approval_is_not_enough(site: Books) -> None:
    bill = site.bill("2026-02", 80_000, DUE)
    with site.session() as session, session.begin():
        session.add(ApprovalRule(site_id=site.site_id, kind=EntryKind.WAIVER, min_amount_fen=50_000, levels=2))
    with site.session() as session, session.begin():
        entry_id = create_entry(session, site.clerk, bill, EntryKind.WAIVER, "困难户减免", 60_000).id
    with site.session() as session, session.begin():
        assert approve(session, site.approver, entry_id).state is EntryState.PENDING
    assert outstanding(site, bill) == 80_000
    with site.session() as session, session.begin(), pytest.raises(UserError, match="next level needs another"):
        approve(session, site.approver, entry_id)
    with site.session() as session, session.begin():
        assert approve(session, site.second_approver, entry_id).state is EntryState.EFFECTIVE
    assert outstanding(site, bill) == 20_000


def test_a_small_waiver_below_the_threshold_needs_one_level(site: Books) -> None:
    bill = site.bill("2026-02", 80_000, DUE)
    with site.session() as session, session.begin():
        session.add(ApprovalRule(site_id=site.site_id, kind=EntryKind.WAIVER, min_amount_fen=50_000, levels=2))
        assert create_entry(session, site.clerk, bill, EntryKind.WAIVER, "小额减免", 49_999).approvals_required == 1


def test_a_rejection_ends_the_entry(site: Books) -> None:
    bill = site.bill("2026-02", 12_000, DUE)
    with site.session() as session, session.begin():
        entry_id = create_entry(session, site.clerk, bill, EntryKind.ADJUSTMENT, "补收维修费", 3_000).id
    with site.session() as session, session.begin():
        assert reject(session, site.approver, entry_id, "无维修单").state is EntryState.REJECTED
    with site.session() as session, session.begin(), pytest.raises(UserError, match="rejected already") as late:
        approve(session, site.second_approver, entry_id)
    assert late.value.status == 409
    assert outstanding(site, bill) == 12_000


def test_a_void_cancels_what_is_left_when_it_takes_effect(site: Books) -> None:
    bill = site.bill("2026-02", 12_000, DUE)
    with site.session() as session, session.begin():
        entry_id = create_entry(session, site.clerk, bill, EntryKind.VOID, "开错户").id
    with site.session() as session, session.begin():
        unit = session.get(Unit, site.unit_id)
        assert unit is not None
        counter_payment(session, site.clerk, unit, 5_000, PaymentMethod.CASH)
    with site.session() as session, session.begin():
        entry = approve(session, site.approver, entry_id)
        assert entry.amount_fen == -7_000
    assert outstanding(site, bill) == 0


def test_a_waiver_larger_than_what_is_owed_is_refused(site: Books) -> None:
    bill = site.bill("2026-02", 12_000, DUE)
    with site.session() as session, session.begin(), pytest.raises(UserError) as refused:
        create_entry(session, site.clerk, bill, EntryKind.WAIVER, "全免", 12_001)
    assert str(refused.value) == (
        f"a waiver can forgive at most what bill {site.site_code}-202602-1-0101 still owes (12000 fen), not 12001"
    )


def test_two_waivers_cannot_together_forgive_more_than_was_owed(site: Books) -> None:
    bill = site.bill("2026-02", 10_000, DUE)
    with site.session() as session, session.begin():
        first = create_entry(session, site.clerk, bill, EntryKind.WAIVER, "减免一", 6_000).id
        second = create_entry(session, site.clerk, bill, EntryKind.WAIVER, "减免二", 6_000).id
    with site.session() as session, session.begin():
        approve(session, site.approver, first)
    with site.session() as session, session.begin(), pytest.raises(UserError, match="at most what"):
        approve(session, site.approver, second)
    assert outstanding(site, bill) == 4_000


def test_bad_entries_are_refused_with_what_to_fix(site: Books) -> None:
    bill = site.bill("2026-02", 10_000, DUE)
    cases = [
        (EntryKind.WAIVER, 100, "  ", "give a reason"),
        (EntryKind.WAIVER, -100, "减免", "positive number of fen"),
        (EntryKind.ADJUSTMENT, 0, "调整", "non-zero amount"),
        (EntryKind.VOID, 100, "作废", "leave the amount out"),
        (EntryKind.LATE_FEE, 100, "滞纳金", "made by the system"),
    ]
    for kind, amount, reason, message in cases:
        with site.session() as session, session.begin(), pytest.raises(UserError, match=message):
            create_entry(session, site.clerk, bill, kind, reason, amount)
    assert outstanding(site, bill) == 10_000


def test_the_audit_log_shows_who_did_what(site: Books) -> None:
    bill = site.bill("2026-02", 12_000, DUE)
    with site.session() as session, session.begin():
        entry_id = create_entry(session, site.clerk, bill, EntryKind.WAIVER, "减免", 1_000).id
    with site.session() as session, session.begin():
        approve(session, site.approver, entry_id, "核实无误")
    with site.session() as session:
        log = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "ledger_entry", AuditEntry.entity_id == entry_id)
            .order_by(AuditEntry.id)
        ).all()
    assert [(e.actor, e.action) for e in log] == [(site.clerk.username, "create"), (site.approver.username, "update")]
    assert log[0].after is not None and log[0].after["state"] == "pending"
    assert log[1].before is not None and log[1].before["state"] == "pending"
    assert log[1].after is not None and log[1].after["state"] == "effective"
    assert log[1].after["approvals"] == [
        {"level": 1, "user_id": site.approver.id, "approved": True, "comment": "核实无误"}
    ]
