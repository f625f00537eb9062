"""Invoices, the billing periods they invoice, their fees and their metadata (lago-api.md §10)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.errors import NotAllowed
from billing.ids import new_lago_id
from billing.models.add_ons import AddOn
from billing.models.customers import Customer
from billing.models.plans import Charge, ChargeFilter
from billing.models.subscriptions import Subscription
from billing.models.types import ExactDecimal, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base

if TYPE_CHECKING:
    from billing.models.coupons import InvoiceCoupon
    from billing.models.taxes import FeeAppliedTax, InvoiceAppliedTax


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    FINALIZED = "finalized"
    VOIDED = "voided"
    #: a zero-amount invoice left unfinalized (`finalize_zero_amount_invoice` skip): not
    #: numbered, not sent, not counted
    CLOSED = "closed"


#: the only legal status moves
INVOICE_TRANSITIONS = {
    InvoiceStatus.DRAFT: {InvoiceStatus.FINALIZED, InvoiceStatus.CLOSED},
    InvoiceStatus.FINALIZED: {InvoiceStatus.VOIDED},
}


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class InvoicingReason(enum.StrEnum):
    SUBSCRIPTION_STARTING = "subscription_starting"
    SUBSCRIPTION_PERIODIC = "subscription_periodic"
    SUBSCRIPTION_TERMINATING = "subscription_terminating"


class FeeType(enum.StrEnum):
    SUBSCRIPTION = "subscription"
    CHARGE = "charge"
    ADD_ON = "add_on"
    CREDIT = "credit"


#: Lago's invoice object version
INVOICE_VERSION = 4
#: the predicate of ix_invoices_overdue_customer (the overdue finalized invoices), by database
OVERDUE_PREDICATE = {
    "postgresql": "payment_overdue AND status = 'finalized'",
    "sqlite": "payment_overdue = 1 AND status = 'finalized'",
}


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        # the per-customer number; null while draft
        UniqueConstraint("customer_id", "sequential_id", name="uq_invoices_customer_sequence"),
        Index("ix_invoices_org_created", "organization_id", "created_at", "id"),
        Index("ix_invoices_customer_created", "customer_id", "created_at"),
        Index("ix_invoices_status_grace", "status", "grace_period_ends_at"),
        Index("ix_invoices_overdue_scan", "payment_status", "payment_overdue", "payment_due_date"),
        # the overdue invoices by customer: the customer list's overdue badge and filter
        Index(
            "ix_invoices_overdue_customer",
            "customer_id",
            postgresql_where=text(OVERDUE_PREDICATE["postgresql"]),
            sqlite_where=text(OVERDUE_PREDICATE["sqlite"]),
        ),
        # Lago's amount relations (§10.1), so no code path can store an inconsistent invoice
        CheckConstraint(
            "sub_total_excluding_taxes_amount_cents = fees_amount_cents - coupons_amount_cents"
            " - progressive_billing_credit_amount_cents",
            name="ck_invoices_sub_total_excluding_taxes",
        ),
        CheckConstraint(
            "sub_total_including_taxes_amount_cents = sub_total_excluding_taxes_amount_cents"
            " + taxes_amount_cents",
            name="ck_invoices_sub_total_including_taxes",
        ),
        CheckConstraint(
            "total_amount_cents = sub_total_including_taxes_amount_cents"
            " - credit_notes_amount_cents - prepaid_credit_amount_cents",
            name="ck_invoices_total",
        ),
        CheckConstraint(
            "fees_amount_cents >= 0 AND coupons_amount_cents >= 0 AND taxes_amount_cents >= 0"
            " AND credit_notes_amount_cents >= 0 AND prepaid_credit_amount_cents >= 0"
            " AND total_paid_amount_cents >= 0 AND total_amount_cents >= 0",
            name="ck_invoices_amounts_not_negative",
        ),
        CheckConstraint(
            "status IN ('draft', 'finalized', 'voided', 'closed')", name="ck_invoices_status"
        ),
        CheckConstraint(
            "payment_status IN ('pending', 'succeeded', 'failed')",
            name="ck_invoices_payment_status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    #: `<customer slug>-DRAFT` while draft, `<customer slug>-<sequential_id on 3+ digits>` after
    number: Mapped[str] = mapped_column(String(64))
    #: per-customer counter given at finalization (under a row lock on the customer)
    sequential_id: Mapped[int | None]
    #: subscription or one_off (others later: add_on, credit)
    invoice_type: Mapped[str] = mapped_column(String(32), default="subscription")
    #: an InvoiceStatus value; change it only through `transition`
    status: Mapped[str] = mapped_column(String(16), default=InvoiceStatus.DRAFT)
    #: a PaymentStatus value
    payment_status: Mapped[str] = mapped_column(String(16), default=PaymentStatus.PENDING)
    payment_overdue: Mapped[bool] = mapped_column(default=False)
    #: local date (customer's zone): of the period close while draft, of finalization after
    issuing_date: Mapped[date] = mapped_column(Date)
    payment_due_date: Mapped[date] = mapped_column(Date)
    #: days from issuing date to due date (customer's, else the organization's, at creation)
    net_payment_term: Mapped[int] = mapped_column(default=0)
    #: a draft is finalized by the job from this instant on (end of the grace period)
    grace_period_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    #: amounts in minor units of `currency`; their relations are check constraints
    fees_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    coupons_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    taxes_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_notes_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    prepaid_credit_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    progressive_billing_credit_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    sub_total_excluding_taxes_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    sub_total_including_taxes_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_paid_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    #: what its credit notes' offsets took off the amount due (Lago's
    #: `total_offsetted_credit_note_amount_cents`); billing.services.credit_notes keeps it
    offset_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    version_number: Mapped[int] = mapped_column(default=INVOICE_VERSION)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    customer: Mapped[Customer] = relationship()
    fees: Mapped[list[Fee]] = relationship(
        back_populates="invoice", order_by="Fee.id", cascade="all, delete-orphan"
    )
    invoice_subscriptions: Mapped[list[InvoiceSubscription]] = relationship(
        back_populates="invoice", order_by="InvoiceSubscription.id"
    )
    metadata_items: Mapped[list[InvoiceMetadata]] = relationship(
        back_populates="invoice", order_by="InvoiceMetadata.id", cascade="all, delete-orphan"
    )
    #: per tax, the sum over the fees (services.taxes computes it)
    applied_taxes: Mapped[list[InvoiceAppliedTax]] = relationship(
        order_by="InvoiceAppliedTax.tax_code", cascade="all, delete-orphan", passive_deletes=True
    )
    #: what each applied coupon took off it (billing.services.coupons)
    coupon_credits: Mapped[list[InvoiceCoupon]] = relationship(
        back_populates="invoice", order_by="InvoiceCoupon.id", cascade="all, delete-orphan"
    )

    @property
    def total_due_amount_cents(self) -> int:
        """What the customer still owes: the total less what was paid and what credit notes
        offset (`DUE_AMOUNT` is the same in SQL)."""
        return max(
            0,
            self.total_amount_cents
            - self.total_paid_amount_cents
            - (self.offset_amount_cents or 0),  # None on an invoice not inserted yet
        )

    def transition(self, to: InvoiceStatus, at: datetime | None = None) -> None:
        """Move to `to`, stamping the matching date; an illegal move raises NotAllowed."""
        current = InvoiceStatus(self.status)
        if to not in INVOICE_TRANSITIONS.get(current, set()):
            raise NotAllowed("not_voidable" if to is InvoiceStatus.VOIDED else "invoice_not_draft")
        at = at or now_utc()
        self.status = to
        self.updated_at = at
        if to is InvoiceStatus.FINALIZED:
            self.finalized_at = at
        elif to is InvoiceStatus.VOIDED:
            self.voided_at = at


class InvoiceSubscription(Base):
    """One billing period of a subscription on an invoice. Its unique key is what makes a
    second close (another jobs process, a rerun after a crash) unable to bill a period twice."""

    __tablename__ = "invoice_subscriptions"
    __table_args__ = (
        UniqueConstraint(
            "subscription_id",
            "invoicing_reason",
            "charges_from_datetime",
            "charges_to_datetime",
            "from_datetime",
            "to_datetime",
            name="uq_invoice_subscriptions_period",
        ),
        Index("ix_invoice_subscriptions_invoice", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    #: an InvoicingReason value
    invoicing_reason: Mapped[str] = mapped_column(String(32))
    #: the period the base fee covers ([from, to), UTC)
    from_datetime: Mapped[datetime] = mapped_column(UTCDateTime)
    to_datetime: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the period whose usage is billed ([from, to), UTC)
    charges_from_datetime: Mapped[datetime] = mapped_column(UTCDateTime)
    charges_to_datetime: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    invoice: Mapped[Invoice] = relationship(back_populates="invoice_subscriptions")
    subscription: Mapped[Subscription] = relationship()


class Fee(Base):
    """One line of an invoice: a base fee, a charge's usage (per charge filter), an add-on."""

    __tablename__ = "fees"
    __table_args__ = (
        Index("ix_fees_invoice", "invoice_id"),
        Index("ix_fees_subscription", "subscription_id", "fee_type"),
        CheckConstraint("amount_cents >= 0", name="ck_fees_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    charge_id: Mapped[int | None] = mapped_column(ForeignKey("charges.id"))
    charge_filter_id: Mapped[int | None] = mapped_column(ForeignKey("charge_filters.id"))
    #: the add-on an add_on fee bills (one-off invoices)
    add_on_id: Mapped[int | None] = mapped_column(ForeignKey("add_ons.id"))
    #: a FeeType value
    fee_type: Mapped[str] = mapped_column(String(16))
    #: minor units of `currency`, rounded once (money.py)
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the exact amount before rounding, in major units
    precise_amount: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    taxes_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the sum of the rates of the taxes applied to the fee, in percent
    taxes_rate: Mapped[Decimal] = mapped_column(
        ExactDecimal, default=Decimal(0), server_default="0"
    )
    #: this fee's share of the invoice's coupons, exact (minor units, not rounded): what
    #: taxes are computed on is `amount_cents - precise_coupons_amount_cents`
    precise_coupons_amount_cents: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    units: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    total_aggregated_units: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    events_count: Mapped[int] = mapped_column(BigInteger, default=0)
    #: price of one unit in major units (amount / units; the base fee's is the plan amount)
    precise_unit_amount: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    invoice_display_name: Mapped[str | None] = mapped_column(String(255))
    #: the line's description (one-off fees: given, else the add-on's)
    description: Mapped[str | None] = mapped_column(Text)
    from_datetime: Mapped[datetime | None] = mapped_column(UTCDateTime)
    to_datetime: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pay_in_advance: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    invoice: Mapped[Invoice] = relationship(back_populates="fees")
    subscription: Mapped[Subscription | None] = relationship()
    charge: Mapped[Charge | None] = relationship()
    charge_filter: Mapped[ChargeFilter | None] = relationship()
    add_on: Mapped[AddOn | None] = relationship()
    applied_taxes: Mapped[list[FeeAppliedTax]] = relationship(
        order_by="FeeAppliedTax.tax_code", cascade="all, delete-orphan", passive_deletes=True
    )


class InvoiceMetadata(Base):
    """Lago's invoice metadata: [{lago_id, key, value, created_at}], editable once finalized."""

    __tablename__ = "invoice_metadata"
    __table_args__ = (UniqueConstraint("invoice_id", "key", name="uq_invoice_metadata_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    invoice: Mapped[Invoice] = relationship(back_populates="metadata_items")
