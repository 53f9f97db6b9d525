"""Payments, their allocation to bills, and online payment intents.

A payment is money received for a unit. Allocations say which bills it settled; whatever of a payment is not
allocated is the unit's prepaid credit, which later bills consume by new allocations from the same payment.
So credit is never a separate balance that could drift: it is ``sum(payments) - sum(allocations)``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloud.db import Base, Json, UnitOwned, UtcDateTime, string_enum

CURRENCY = "CNY"


class PaymentMethod(StrEnum):
    CASH = "cash"
    CARD = "card"
    TRANSFER = "transfer"
    ONLINE = "online"


class IntentState(StrEnum):
    PENDING = "pending"
    PAID = "paid"


class Payment(Base, UnitOwned):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("provider", "provider_txn_id"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[PaymentMethod] = mapped_column(string_enum(PaymentMethod, "payment_method"))
    receipt_no: Mapped[str] = mapped_column(String(100), unique=True)
    """Printed on the receipt: ``<site code>-<YYYYMMDD>-<id>``."""
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_txn_id: Mapped[str | None] = mapped_column(String(100))
    """The provider's transaction id: a webhook delivered twice finds the payment it made the first time."""
    intent_id: Mapped[int | None] = mapped_column(ForeignKey("payment_intents.id"), unique=True)
    received_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    """The cashier, for counter payments."""
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(Text, default="")

    allocations: Mapped[list[PaymentAllocation]] = relationship(order_by="PaymentAllocation.id", viewonly=True)


class PaymentAllocation(Base):
    """Part of a payment applied to one bill."""

    __tablename__ = "payment_allocations"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class PaymentIntent(Base, UnitOwned):
    """An online payment started for some of a unit's bills; paid when the provider's signed webhook arrives."""

    __tablename__ = "payment_intents"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    """Random and unguessable: it names the intent in the checkout URL and to the provider."""
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    bill_ids: Mapped[list[int]] = mapped_column(Json)
    """The bills it pays, oldest first."""
    return_url: Mapped[str] = mapped_column(String(500))
    state: Mapped[IntentState] = mapped_column(string_enum(IntentState, "intent_state"))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
