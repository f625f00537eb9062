"""Taxes (lago-api.md §17), the links that apply them (customers, plans, charges, add-ons) and
the taxes applied to fees and invoices.

An applied tax is a snapshot: code, name, rate and description are copied when the invoice is
computed, so a finalized invoice never changes when a tax is edited or deleted later.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from billing.ids import new_lago_id
from billing.models.types import ExactDecimal, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class Tax(Base):
    __tablename__ = "taxes"
    __table_args__ = (
        UniqueConstraint("organization_id", "code", name="uq_taxes_code"),
        Index("ix_taxes_org_created", "organization_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))
    #: percent, exact (20 means 20 %); 0 to 100 (services.taxes checks it)
    rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    description: Mapped[str | None] = mapped_column(Text)
    #: one of the organization's default taxes (applied when nothing more specific is)
    applied_to_organization: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


def _link_table(name: str, owner: str) -> Table:
    """An association table: one row per (owner, tax); both sides' deletions remove it."""
    return Table(
        f"{name}_taxes",
        Base.metadata,
        Column(
            f"{owner}_id",
            ForeignKey(f"{name}s.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column(
            "tax_id",
            ForeignKey("taxes.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
    )


#: a customer's own taxes (its `tax_codes`)
customer_taxes = _link_table("customer", "customer")
#: a plan's taxes: its base fee and its charges without taxes of their own
plan_taxes = _link_table("plan", "plan")
#: a charge's taxes
charge_taxes = _link_table("charge", "charge")
#: an add-on's taxes: its one-off fees without `tax_codes` of their own
add_on_taxes = _link_table("add_on", "add_on")


class _TaxSnapshot:
    """What an applied tax copies of its tax when computed, and its amount."""

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    #: the lago_id of the tax it came from (that tax may have changed or gone since)
    lago_tax_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    tax_code: Mapped[str] = mapped_column(String(255))
    tax_name: Mapped[str] = mapped_column(String(255))
    #: percent, as the tax had it when computed
    tax_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    tax_description: Mapped[str | None] = mapped_column(Text)
    #: the exact tax rounded half up to a minor unit of `currency`
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class FeeAppliedTax(_TaxSnapshot, Base):
    """A tax on one fee, as computed: Lago's fee `applied_taxes[]` item."""

    __tablename__ = "fee_applied_taxes"
    __table_args__ = (
        Index("ix_fee_applied_taxes_fee", "fee_id"),
        CheckConstraint("amount_cents >= 0", name="ck_fee_applied_taxes_amount"),
    )

    fee_id: Mapped[int] = mapped_column(ForeignKey("fees.id", ondelete="CASCADE"))
    #: the fee's taxable amount, in minor units (see services.taxes.fee_taxable_amount)
    base_amount_cents: Mapped[Decimal] = mapped_column(ExactDecimal)
    #: exact tax in minor units (taxable × rate / 100), before any rounding
    precise_amount_cents: Mapped[Decimal] = mapped_column(ExactDecimal)


class InvoiceAppliedTax(_TaxSnapshot, Base):
    """A tax on an invoice: the sum over its fees (Lago's invoice `applied_taxes[]` item);
    `amount_cents` is the sum of the fees' exact taxes, rounded once."""

    __tablename__ = "invoice_applied_taxes"
    __table_args__ = (
        UniqueConstraint("invoice_id", "tax_code", name="uq_invoice_applied_taxes_code"),
        CheckConstraint(
            "amount_cents >= 0 AND fees_amount_cents >= 0", name="ck_invoice_applied_taxes_amount"
        ),
    )

    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    #: what the tax was computed on: the taxable amounts of the fees it applies to (minor units)
    fees_amount_cents: Mapped[int] = mapped_column(BigInteger)
