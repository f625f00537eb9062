"""Credit notes, their items (what they credit of each fee) and the credits they give later
invoices (lago-api.md §14, §10.1 `credits`)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.ids import new_lago_id
from billing.models.customers import Customer
from billing.models.invoices import Fee, Invoice
from billing.models.types import JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class CreditNoteReason(enum.StrEnum):
    DUPLICATED_CHARGE = "duplicated_charge"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory"
    ORDER_CHANGE = "order_change"
    ORDER_CANCELLATION = "order_cancellation"
    FRAUDULENT_CHARGE = "fraudulent_charge"
    OTHER = "other"


class CreditStatus(enum.StrEnum):
    #: the credit (balance) can still be consumed by the customer's next invoices
    AVAILABLE = "available"
    #: the balance is spent
    CONSUMED = "consumed"
    #: the remaining balance was voided
    VOIDED = "voided"


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CreditNote(Base):
    __tablename__ = "credit_notes"
    __table_args__ = (
        # the per-invoice counter behind `number`
        UniqueConstraint("invoice_id", "sequential_id", name="uq_credit_notes_invoice_sequence"),
        Index("ix_credit_notes_org_created", "organization_id", "created_at", "id"),
        # what an invoice's finalization reads: the customer's credit left, oldest first
        Index("ix_credit_notes_customer_available", "customer_id", "credit_status", "currency"),
        CheckConstraint(
            "total_amount_cents = sub_total_excluding_taxes_amount_cents + taxes_amount_cents",
            name="ck_credit_notes_total",
        ),
        CheckConstraint(
            "total_amount_cents = credit_amount_cents + refund_amount_cents + offset_amount_cents",
            name="ck_credit_notes_split",
        ),
        CheckConstraint(
            "balance_amount_cents >= 0 AND balance_amount_cents <= credit_amount_cents"
            " AND credit_amount_cents >= 0 AND refund_amount_cents >= 0"
            " AND offset_amount_cents >= 0 AND taxes_amount_cents >= 0",
            name="ck_credit_notes_amounts",
        ),
        CheckConstraint(
            "credit_status IN ('available', 'consumed', 'voided')",
            name="ck_credit_notes_credit_status",
        ),
        CheckConstraint(
            "refund_status IS NULL OR refund_status IN ('pending', 'succeeded', 'failed')",
            name="ck_credit_notes_refund_status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    #: per-invoice counter (1, 2, …), taken under a row lock on the invoice
    sequential_id: Mapped[int]
    #: `<invoice number>-CN<sequential_id on 3+ digits>`
    number: Mapped[str] = mapped_column(String(80))
    #: local date (customer's zone) of the creation
    issuing_date: Mapped[date] = mapped_column(Date)
    #: a CreditNoteReason value
    reason: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    #: a CreditStatus value
    credit_status: Mapped[str] = mapped_column(String(16), default=CreditStatus.AVAILABLE)
    #: a RefundStatus value; null when nothing is refunded
    refund_status: Mapped[str | None] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    #: amounts in minor units of `currency`: items total (taxes excluded), its taxes, and how
    #: the total is split between a credit for later invoices, a refund and an offset
    sub_total_excluding_taxes_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    taxes_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    offset_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    #: what is left of the credit for later invoices
    balance_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Lago's credit note metadata: {key: value or null}
    metadata_: Mapped[dict[str, str | None]] = mapped_column("metadata", JSONType, default=dict)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    customer: Mapped[Customer] = relationship()
    invoice: Mapped[Invoice] = relationship()
    items: Mapped[list[CreditNoteItem]] = relationship(
        back_populates="credit_note", order_by="CreditNoteItem.id", cascade="all, delete-orphan"
    )

    @property
    def voidable(self) -> bool:
        """Lago's CreditNote#voidable?: some balance is left and it is not voided."""
        return self.credit_status != CreditStatus.VOIDED and self.balance_amount_cents > 0


class CreditNoteItem(Base):
    """The part of one fee a credit note credits (taxes excluded)."""

    __tablename__ = "credit_note_items"
    __table_args__ = (
        Index("ix_credit_note_items_credit_note", "credit_note_id"),
        Index("ix_credit_note_items_fee", "fee_id"),
        CheckConstraint("amount_cents >= 0", name="ck_credit_note_items_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    credit_note_id: Mapped[int] = mapped_column(ForeignKey("credit_notes.id", ondelete="CASCADE"))
    fee_id: Mapped[int] = mapped_column(ForeignKey("fees.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    credit_note: Mapped[CreditNote] = relationship(back_populates="items")
    fee: Mapped[Fee] = relationship()


class InvoiceCredit(Base):
    """Credit of a credit note consumed by a later invoice (Lago's `credits` on an invoice)."""

    __tablename__ = "invoice_credits"
    __table_args__ = (
        Index("ix_invoice_credits_invoice", "invoice_id"),
        Index("ix_invoice_credits_credit_note", "credit_note_id"),
        CheckConstraint("amount_cents > 0", name="ck_invoice_credits_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    credit_note_id: Mapped[int] = mapped_column(ForeignKey("credit_notes.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    invoice: Mapped[Invoice] = relationship()
    credit_note: Mapped[CreditNote] = relationship()
