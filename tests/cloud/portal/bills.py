"""Issued bills written directly as rows, for the page tests (bill runs are tested on their own; the browser
test issues its bills with the real bill-run service). The lines are what an owner checks by hand: readings
whose difference is the usage, and amounts that are usage x unit price rounded to the fen."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.billing.models import Bill, BillLine, BillRun, RunState
from cloud.registry.models import Meter, Site, Unit

ISSUED_AT = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
START = "2026-02-28T16:00:00+00:00"
END = "2026-03-31T16:00:00+00:00"


def fen(quantity: str, price: str) -> int:
    return int((Decimal(quantity) * Decimal(price) * 100).quantize(Decimal(1), ROUND_HALF_UP))


def reading(value: str, time: str, estimated: bool = False) -> dict[str, Any]:
    return {"time": time, "value": value, "source": "interpolated" if estimated else "sample", "estimated": estimated}


def issue_bill(session: Session, unit_id: int, period: str, due: date, *, estimated_end: bool = False) -> Bill:
    """A March bill of a unit: tiered time-of-use electricity, water, a lift share, a loss share and a fixed
    charge; the electricity meter's end reading may be estimated."""
    unit = session.get(Unit, unit_id)
    assert unit is not None
    site = session.get(Site, unit.site_id)
    assert site is not None
    meter = session.scalars(select(Meter).where(Meter.unit_id == unit.id, Meter.kind == "electricity")).first()
    run = session.scalar(select(BillRun).where(BillRun.site_id == site.id, BillRun.period == period))
    if run is None:
        run = BillRun(site_id=site.id, period=period, issue=True, state=RunState.ISSUED, units_total=1, units_done=1,
                      summary={}, started_at=ISSUED_AT, finished_at=ISSUED_AT)  # fmt: skip
        session.add(run)
        session.flush()
    readings = {"start": reading("1200.5", START), "end": reading("1480.25", END, estimated_end), "flags": [],
                "tou": {"by_clock": False, "decreases": 0, "usage": {"peak": "190.25", "valley": "89.5"}}}  # fmt: skip
    energy = {"usage": "279.75", "tier": 1, "tier_from": "0", "tier_to": "2760", "tier_period": "yearly",
              "accumulated_before": "512", "meter": meter.code if meter else None, "readings": readings}  # fmt: skip
    lift = {"method": "area", "basis": "89.50", "total_basis": "2148.00", "pool_quantity": "296.28",
            "pool_amount_fen": 15940, "pool": "lift", "readings": [readings]}  # fmt: skip
    loss = {"method": "usage", "basis": "279.75", "total_basis": "11250.00", "pool_quantity": "128.7",
            "pool_amount_fen": 6924, "pool": "loss-b1",
            "segments": [{"master_usage": "11378.7", "sub_meters_usage": "11250", "sub_meters": 24, "loss": "128.7"}]}  # fmt: skip
    lines = [
        ("energy", "电费 第一档 峰", meter.id if meter else None, "190.25", "0.568", energy | {"period": "peak"}),
        ("energy", "电费 第一档 谷", meter.id if meter else None, "89.5", "0.288", energy | {"period": "valley"}),
        ("shared", "公摊 电梯用电（按面积）", None, "12.3456", "0.538", lift),
        ("loss", "损耗 1号楼总表（按用量）", None, "3.2", "0.538", loss),
    ]
    rows = [(kind, label, m, q, p, fen(q, p), d) for kind, label, m, q, p, d in lines]
    rows.append(("fixed", "垃圾处理费", None, None, "10.00", 1000, {"code": "waste"}))
    bill = Bill(number=f"{site.code}-{period.replace('-', '')}-{unit.code}", site_id=site.id, unit_id=unit.id,
                period=period, run_id=run.id, total_fen=sum(r[5] for r in rows), issued_at=ISSUED_AT, due_date=due,
                fingerprint="f" * 64)  # fmt: skip
    session.add(bill)
    session.flush()
    for position, (kind, label, meter_id, quantity, price, amount, detail) in enumerate(rows, start=1):
        session.add(BillLine(bill_id=bill.id, position=position, kind=kind, label=label, meter_id=meter_id,
                             quantity=None if quantity is None else Decimal(quantity), unit_price=Decimal(price),
                             amount_fen=amount, detail=detail))  # fmt: skip
    session.flush()
    return bill
