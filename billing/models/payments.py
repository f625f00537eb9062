"""Payments received against invoices (manual ones recorded by agents or the API, provider
ones from Stripe's webhook) and the payment-provider events Ledgerline has seen."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.ids import new_lago_id
from billing.models.customers import Customer
from billing.models.invoices import Invoice
from billing.models.types import UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class PaymentType(enum.StrEnum):
    MANUAL = "manual"
    PROVIDER = "provider"


class PaymentRecordStatus(enum.StrEnum):
    """A payment's own status (Lago's `payable_payment_status`), not its invoice's."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: paid back in full by the provider (a partial refund keeps `succeeded`)
    REFUNDED = "refunded"


#: how the money came in (Ledgerline's addition to Lago's object; `stripe` for provider ones)
PAYMENT_METHODS = ("bank_transfer", "card", "cash", "check", "direct_debit", "other", "stripe")


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        # one record per provider payment (a Stripe payment intent): retries of its events,
        # or a failure then a success of the same intent, update it
        UniqueConstraint(
            "organization_id", "provider", "provider_payment_id", name="uq_payments_provider_id"
        ),
        Index("ix_payments_invoice", "invoice_id"),
        Index("ix_payments_org_created", "organization_id", "created_at", "id"),
        Index("ix_payments_customer", "customer_id"),
        CheckConstraint("amount_cents > 0", name="ck_payments_amount_positive"),
        CheckConstraint(
            "refunded_amount_cents >= 0 AND refunded_amount_cents <= amount_cents",
            name="ck_payments_refunded",
        ),
        CheckConstraint("payment_type IN ('manual', 'provider')", name="ck_payments_type"),
        CheckConstraint("status IN ('succeeded', 'failed', 'refunded')", name="ck_payments_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    #: minor units of `currency` (the invoice's), always > 0
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: what the provider paid back of it (minor units); counts against the invoice's paid total
    refunded_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: a PaymentType value
    payment_type: Mapped[str] = mapped_column(String(16), default=PaymentType.MANUAL)
    #: a PaymentRecordStatus value
    status: Mapped[str] = mapped_column(String(16), default=PaymentRecordStatus.SUCCEEDED)
    #: one of PAYMENT_METHODS, or null when not told
    method: Mapped[str | None] = mapped_column(String(32))
    #: the agent's or client's reference (bank transfer id, cheque number…), ≤ 40 characters
    reference: Mapped[str | None] = mapped_column(String(40))
    #: when the money was received (given, else the time of recording)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    #: `stripe` for provider payments
    provider: Mapped[str | None] = mapped_column(String(32))
    #: the provider's id of the payment (Stripe's payment intent id), Lago's external_payment_id
    provider_payment_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    invoice: Mapped[Invoice] = relationship()
    customer: Mapped[Customer] = relationship()

    @property
    def net_amount_cents(self) -> int:
        """What this payment counts for on its invoice: nothing when it failed."""
        if self.status == PaymentRecordStatus.FAILED:
            return 0
        return self.amount_cents - self.refunded_amount_cents


class ProviderEventOutcome(enum.StrEnum):
    #: a payment was recorded or updated
    RECORDED = "recorded"
    #: a handled type whose invoice or payment could not be found (or cannot take it)
    UNMATCHED = "unmatched"
    #: a type Ledgerline does not handle
    IGNORED = "ignored"


class ProviderEvent(Base):
    """One payment-provider event received and verified: the unique key makes a repeat of
    the same event id a no-op, and the row is the log agents read in the settings."""

    __tablename__ = "provider_events"
    __table_args__ = (
        UniqueConstraint(
            "organization_id", "provider", "event_id", name="uq_provider_events_event_id"
        ),
        Index("ix_provider_events_org_time", "organization_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    provider: Mapped[str] = mapped_column(String(32))
    #: the provider's event id (Stripe's `evt_…`)
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    #: a ProviderEventOutcome value
    outcome: Mapped[str] = mapped_column(String(16))
    #: why it was unmatched or ignored, for the agent reading the log
    detail: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    payment: Mapped[Payment | None] = relationship()
