"""Bill runs on the hand-computed site of billing_site.py: lines, idempotence, corrections, preview, races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cloud.audit.services import Actor
from cloud.billing.models import (
    Bill,
    BillLine,
    BillRun,
    EntryKind,
    EntryState,
    LedgerEntry,
    MeterReading,
    PoolApproval,
    RunState,
)
from cloud.billing.pools import approve
from cloud.billing.readings import correct_reading
from cloud.billing.runs import execute_run, start_run
from cloud.db import session_factory
from cloud.registry.models import Meter, Site
from tests.cloud.billing.billing_site import (
    AFTER_OCTOBER,
    OCT_START,
    BillSite,
    build_site,
    deliver_late_tail,
)

PERIOD = "2026-10"


def run(
    engine: Engine, site_id: int, *, issue: bool = True, now: datetime = AFTER_OCTOBER, batch: int = 100
) -> BillRun:
    with session_factory(engine).begin() as session:
        site = session.get(Site, site_id)
        assert site is not None
        run_id = start_run(session, Actor("finance-test"), site, PERIOD, issue=issue, now=now).id
    done = execute_run(engine, run_id, now=now, batch=batch)
    assert done.state is (RunState.ISSUED if issue else RunState.PREVIEWED), done.error
    return done


def bill_lines(engine: Engine, site: BillSite, unit: str) -> dict[str, tuple[str | None, int]]:
    """label -> (quantity, amount) of the unit's issued bill (entries' lines excluded)."""
    with session_factory(engine)() as session:
        bill = session.scalars(select(Bill).where(Bill.unit_id == site.units[unit], Bill.period == PERIOD)).one()
        return {
            line.label: (None if line.quantity is None else format(line.quantity.normalize(), "f"), line.amount_fen)
            for line in bill.lines
        }


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_factory(engine)() as session:
        return (
            session.scalar(select(func.count()).select_from(Bill)) or 0,
            session.scalar(select(func.count()).select_from(BillLine)) or 0,
            session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        )


@pytest.fixture
def site(engine: Engine) -> BillSite:
    return build_site(engine)


def test_lines_match_the_hand_computed_bill_and_a_second_run_changes_nothing(engine: Engine, site: BillSite) -> None:
    first = run(engine, site.site_id, batch=1)
    assert (first.units_done, first.units_total) == (3, 3)  # progress, batch by batch
    assert bill_lines(engine, site, "1-0101") == {
        # 372 kWh: 248 peak, 124 valley; tier 1 (200) split 133.3333 / 66.6667 by largest remainder.
        "电费 第一档 峰": ("133.3333", 8000),
        "电费 第一档 谷": ("66.6667", 2000),
        "电费 第二档 峰": ("114.6667", 9173),
        "电费 第二档 谷": ("57.3333", 2293),
        "电表维护费": (None, 200),
        # 7.44 m3, all in tier 1, one line per component.
        "水费 第一档 水费": ("7.44", 1540),
        "水费 第一档 水资源费": ("7.44", 1168),
        "水费 第一档 污水处理费": ("7.44", 1012),
        # 300 kWh x 0.5 = 150.00 by area 80 : 100 : 120.
        "公摊 公共区域（按面积）": ("80", 4000),
        # 50 kWh loss x 0.5 = 25.00 by usage 372 : 620 : 74.4 -> 872 / 1454 / 174 fen (and 17.4418 kWh of 50).
        "损耗分摊 总表损耗（按用量）": ("17.4418", 872),
        "物业费": ("80", 16000),
    }
    u2 = bill_lines(engine, site, "1-0102")
    assert u2["电费 第一档 峰"] == ("40", 2400) and u2["电费 第一档 谷"] == ("160", 4800)
    assert u2["电费 第二档 峰"] == ("84", 6720) and u2["电费 第二档 谷"] == ("336", 13440)
    assert u2["水费 第一档 水费"] == ("10", 2070) and u2["水费 第二档 水费"] == ("4.88", 1986)
    assert u2["水费 第二档 水资源费"] == ("4.88", 766) and u2["水费 第二档 污水处理费"] == ("4.88", 664)
    u3 = bill_lines(engine, site, "1-0103")
    assert u3["公摊 公共区域（按面积）"] == ("120", 6000)
    assert u3["损耗分摊 总表损耗（按用量）"][1] == 174
    with session_factory(engine)() as session:
        totals = dict(session.execute(select(Bill.unit_id, Bill.total_fen)).all())
    assert totals[site.units["1-0101"]] == 46258
    assert totals[site.units["1-0102"]] == 62430
    assert totals[site.units["1-0103"]] == 39094
    assert_pool_shares_sum_to_the_pool(engine)
    assert_lines_show_the_readings_used(engine, site)
    before = counts(engine)
    second = run(engine, site.site_id)
    assert counts(engine) == before and before[2] == 0
    assert first.summary["bills_issued"] == 3
    assert second.summary["bills_issued"] == 0 and second.summary["unchanged"] == 3
    assert second.summary["corrections"] == 0


def assert_pool_shares_sum_to_the_pool(engine: Engine) -> None:
    with session_factory(engine)() as session:
        shared = session.scalars(select(BillLine).where(BillLine.kind.in_(["shared", "loss"]))).all()
    by_pool: dict[str, list[BillLine]] = {}
    for line in shared:
        by_pool.setdefault(line.detail["pool"], []).append(line)
    assert sum(line.amount_fen for line in by_pool["pub"]) == 15000 == by_pool["pub"][0].detail["pool_amount_fen"]
    assert sum(line.amount_fen for line in by_pool["loss"]) == 2500
    assert sum(line.quantity for line in by_pool["loss"]) == Decimal("50")
    assert by_pool["loss"][0].detail["segments"][0]["loss"] == "50.0000"


def assert_lines_show_the_readings_used(engine: Engine, site: BillSite) -> None:
    with session_factory(engine)() as session:
        meter = session.get(Meter, site.meters["WM-U3"])
        assert meter is not None
        line = session.scalars(select(BillLine).where(BillLine.meter_id == meter.id)).first()
        assert line is not None
    readings = line.detail["readings"]
    assert readings["start"] == {
        "time": OCT_START.isoformat(),
        "value": "302.0000",
        "source": "manual",
        "estimated": True,
    }
    assert readings["end"]["value"] == "312.0000" and readings["end"]["source"] == "manual"
    assert not readings["end"]["estimated"]


def test_preview_then_issue_then_a_late_reading_gives_corrections_not_second_bills(engine: Engine) -> None:
    site = build_site(engine, late_tail=True)
    preview = run(engine, site.site_id, issue=False)
    assert counts(engine) == (0, 0, 0)  # a preview writes no bill
    assert {b["unit"] for b in preview.summary["bills"]} == {"1-0101", "1-0102", "1-0103"}
    assert preview.summary["diff"] == []
    first = run(engine, site.site_id)
    estimated = {w["meter"] for w in first.summary["warnings"] if w["kind"] == "estimated"}
    assert estimated == {"EM-U3", "WM-U3"}  # end held from 20:00 on 31 Oct; start interpolated over 15 days
    held = bill_lines(engine, site, "1-0103")
    assert sum(Decimal(q) for label, (q, _) in held.items() if label.startswith("电费") and q) == Decimal("74")
    deliver_late_tail(engine)
    again = run(engine, site.site_id, issue=False)
    assert counts(engine)[2] == 0
    diff = {d["unit"]: d["delta_fen"] for d in again.summary["diff"]}
    totals = {b["unit"]: b["total_fen"] for b in again.summary["bills"]}
    assert totals == {"1-0101": 46258, "1-0102": 62430, "1-0103": 39094}  # as with complete data
    assert set(diff) == {"1-0101", "1-0102", "1-0103"}
    assert sum(diff.values()) == sum(totals.values()) - first.summary["total_fen"]
    rerun = run(engine, site.site_id)
    assert rerun.summary["bills_issued"] == 0 and rerun.summary["corrections"] == 3  # the loss shares moved too
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Bill)) == 3
        entry = session.scalars(select(LedgerEntry).where(LedgerEntry.unit_id == site.units["1-0103"])).one()
        lines = session.scalars(select(BillLine).where(BillLine.entry_id == entry.id)).all()
    assert entry.kind is EntryKind.CORRECTION and entry.state is EntryState.EFFECTIVE
    assert entry.amount_fen == sum(line.amount_fen for line in lines)
    energy = [line for line in lines if line.kind == "energy"]
    assert sum(line.quantity for line in energy if line.quantity is not None) == Decimal("0.4")  # 74 -> 74.4 kWh
    # after the correction the bill stands at the hand-computed figures: 49.6 kWh peak, 24.8 valley
    assert {line.label: line.detail["now"]["quantity"] for line in energy} == {
        "电费 第一档 峰": "49.6000",
        "电费 第一档 谷": "24.8000",
    }
    assert bill_lines(engine, site, "1-0103") == held  # the issued bill itself never changes
    third = run(engine, site.site_id)
    assert third.summary["corrections"] == 0 and third.summary["unchanged"] == 3


def test_an_audited_correction_then_a_rerun_gives_a_correction_entry(engine: Engine, site: BillSite) -> None:
    run(engine, site.site_id)
    nov_first = datetime(2026, 10, 31, 16, tzinfo=UTC)
    with session_factory(engine).begin() as session:
        meter = session.get(Meter, site.meters["EM-PUB"])
        assert meter is not None
        correct_reading(
            session,
            Actor("finance-test"),
            meter,
            nov_first,
            Decimal("5330"),
            "misread 3 as 0",
            Decimal("5300"),
            now=AFTER_OCTOBER,
        )
    rerun = run(engine, site.site_id)
    assert rerun.summary["corrections"] == 3
    with session_factory(engine)() as session:
        entries = session.scalars(select(LedgerEntry).order_by(LedgerEntry.unit_id)).all()
    # common pool: 30 kWh x 0.5 = 15.00 more, by area: +400 / +500 / +600 fen; the loss shrinks by as much
    # (50 -> 20 kWh, 25.00 -> 10.00 by usage: 872/1454/174 -> 349/581/70 fen)
    assert [e.amount_fen for e in entries] == [400 - 523, 500 - 873, 600 - 104]


def test_a_pool_awaiting_approval_is_not_allocated_until_approved(engine: Engine) -> None:
    site = build_site(engine, loss_approval=True)
    first = run(engine, site.site_id)
    assert {p["pool"]: p["status"] for p in first.summary["pools"]}["loss"] == "awaiting_approval"
    assert "损耗分摊 总表损耗（按用量）" not in bill_lines(engine, site, "1-0101")
    with session_factory(engine).begin() as session:
        from cloud.billing.models import SharedPool

        pool = session.scalars(select(SharedPool).where(SharedPool.code == "loss")).one()
        approver = Actor("chief", user_id=None)
        with pytest.raises(Exception, match="signed-in user"):
            approve(session, approver, pool, PERIOD, Decimal("50"))
    _approve_loss(engine, Decimal("50"))
    second = run(engine, site.site_id)
    assert second.summary["corrections"] == 3
    assert {p["pool"]: p["status"] for p in second.summary["pools"]}["loss"] == "allocated"


def _approve_loss(engine: Engine, quantity: Decimal) -> None:
    from cloud.auth.models import Role
    from tests.cloud.api.hub_app import add_user

    with session_factory(engine).begin() as session:
        from cloud.billing.models import SharedPool

        pool = session.scalars(select(SharedPool).where(SharedPool.code == "loss")).one()
        chief = add_user(session, "chief", Role.FINANCE, sites=[pool.site_id])
        approve(session, Actor(chief.username, chief.id), pool, PERIOD, quantity, now=AFTER_OCTOBER)
        assert session.scalar(select(func.count()).select_from(PoolApproval)) == 1


def test_issuing_a_month_not_over_is_refused(sqlite_engine: Engine) -> None:
    from cloud.auth.services import UserError

    engine, site = sqlite_engine, build_site(sqlite_engine)
    with session_factory(engine).begin() as session:
        s = session.get(Site, site.site_id)
        assert s is not None
        with pytest.raises(UserError, match="after it ended"):
            start_run(session, Actor("x"), s, PERIOD, issue=True, now=datetime(2026, 10, 20, tzinfo=UTC))
        with pytest.raises(UserError, match="YYYY-MM"):
            start_run(session, Actor("x"), s, "2026-13", issue=False)


def test_negative_delta_is_flagged_and_not_billed(sqlite_engine: Engine) -> None:
    engine, site = sqlite_engine, build_site(sqlite_engine)
    with session_factory(engine).begin() as session:
        meter = session.get(Meter, site.meters["EM-U1"])
        assert meter is not None
        correct_reading(
            session,
            Actor("finance-test"),
            meter,
            datetime(2026, 10, 31, 16, tzinfo=UTC),
            Decimal("900"),
            "register read after a swap nobody recorded",
            Decimal("1372"),
            now=AFTER_OCTOBER,
        )
    done = run(engine, site.site_id)
    assert done.summary["warning_counts"]["negative_delta"] >= 1
    lines = bill_lines(engine, site, "1-0101")
    assert not any(label.startswith("电费") for label in lines)
    assert lines["电表维护费"] == (None, 200)


def test_two_concurrent_issues_on_postgresql_write_one_bill_per_unit(pg_engine: Engine) -> None:
    engine, site = pg_engine, build_site(pg_engine)
    with session_factory(engine).begin() as session:
        s = session.get(Site, site.site_id)
        assert s is not None
        ids = [start_run(session, Actor("f"), s, PERIOD, issue=True, now=AFTER_OCTOBER).id for _ in range(2)]
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def go(run_id: int) -> None:
        barrier.wait()
        results.append(execute_run(engine, run_id, now=AFTER_OCTOBER))

    threads = [threading.Thread(target=go, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.state for r in results] == [RunState.ISSUED, RunState.ISSUED], [r.error for r in results]
    assert sorted(r.summary["bills_issued"] for r in results) == [0, 3]
    assert counts(engine)[0] == 3 and counts(engine)[2] == 0


def test_manual_readings_are_never_updated_in_place(sqlite_engine: Engine) -> None:
    from cloud.billing.readings import ImmutableReading

    engine = sqlite_engine
    build_site(engine)
    with session_factory(engine)() as session:
        reading = session.scalars(select(MeterReading)).first()
        assert reading is not None
        reading.value = Decimal("1")
        with pytest.raises(ImmutableReading):
            session.flush()


def test_a_replaced_manual_meter_bills_the_old_part_and_the_new_part(sqlite_engine: Engine) -> None:
    from cloud.billing.readings import record_replacement

    engine, site = sqlite_engine, build_site(sqlite_engine)
    with session_factory(engine).begin() as session:
        meter = session.get(Meter, site.meters["WM-U3"])
        assert meter is not None
        # swapped on 20 October 00:00 local: the old meter ended at 308, the new one started at 0 (312 on 1 Nov)
        record_replacement(
            session,
            Actor("finance-test"),
            meter,
            datetime(2026, 10, 19, 16, tzinfo=UTC),
            Decimal("308"),
            Decimal("0"),
            now=AFTER_OCTOBER,
        )
    run(engine, site.site_id)
    with session_factory(engine)() as session:
        lines = session.scalars(select(BillLine).where(BillLine.meter_id == site.meters["WM-U3"])).all()
    supply = [line for line in lines if line.label.endswith(" 水费")]
    assert sum(line.quantity for line in supply if line.quantity is not None) == Decimal("318")  # (308-302)+(312-0)
    replacement = supply[0].detail["readings"]["replacement"]
    assert (replacement["old_part"], replacement["new_part"]) == ("6.0000", "312.0000")


def test_bulk_boundary_readings_agree_with_the_time_series_query(sqlite_engine: Engine) -> None:
    """The run reads boundary readings in bulk from rollups; cloud.timeseries.query reads one series from
    samples: both must see the same readings (here for EM-U1 and EM-U2, with rollups refreshed by the run)."""
    from cloud.timeseries.query import consumption

    engine, site = sqlite_engine, build_site(sqlite_engine)
    run(engine, site.site_id)
    end_ms = int(datetime(2026, 10, 31, 16, tzinfo=UTC).timestamp() * 1000)
    with session_factory(engine)() as session:
        for device, meter in (("u1-elec", "EM-U1"), ("u2-elec", "EM-U2")):
            line = session.scalars(
                select(BillLine).where(BillLine.meter_id == site.meters[meter], BillLine.kind == "energy")
            ).first()
            assert line is not None
            expected = consumption(session.connection(), site.series[device], int(OCT_START.timestamp() * 1000), end_ms)
            readings = line.detail["readings"]
            assert Decimal(readings["start"]["value"]) == Decimal(repr(expected.start_value))
            assert Decimal(readings["end"]["value"]) == Decimal(repr(expected.end_value))
            assert Decimal(line.detail["usage"]) == Decimal(repr(expected.value))
