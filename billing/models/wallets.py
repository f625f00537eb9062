"""Wallets (prepaid credits) and their transactions (lago-api.md §16).

A credit is worth `rate_amount` of the wallet's currency. The balance is kept twice, as Lago
shows it: in credits (exact decimal) and in minor units of the currency; `balance_cents` is
what invoices consume, under a row lock on the wallet, and never goes below zero.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.errors import NotAllowed
from billing.ids import new_lago_id
from billing.models.customers import Customer
from billing.models.invoices import Invoice
from billing.models.types import ExactDecimal, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class WalletStatus(enum.StrEnum):
    ACTIVE = "active"
    TERMINATED = "terminated"


class TransactionType(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class TransactionStatus(enum.StrEnum):
    """Where the money of a transaction stands (Lago's `status`)."""

    PENDING = "pending"
    SETTLED = "settled"
    FAILED = "failed"


#: the only legal moves of a transaction's status
TRANSACTION_TRANSITIONS = {
    TransactionStatus.PENDING: {TransactionStatus.SETTLED, TransactionStatus.FAILED},
    # a payment that failed, then succeeded after all
    TransactionStatus.FAILED: {TransactionStatus.SETTLED},
}


class TransactionKind(enum.StrEnum):
    """What a transaction is (Lago's `transaction_status`)."""

    PURCHASED = "purchased"
    GRANTED = "granted"
    VOIDED = "voided"
    INVOICED = "invoiced"


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (
        # one active wallet per customer (Lago's rule)
        Index(
            "uq_wallets_customer_active",
            "customer_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_wallets_org_created", "organization_id", "created_at", "id"),
        Index("ix_wallets_status_expiration", "status", "expiration_at"),
        CheckConstraint("status IN ('active', 'terminated')", name="ck_wallets_status"),
        CheckConstraint(
            "balance_cents >= 0 AND consumed_amount_cents >= 0", name="ck_wallets_amounts"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    name: Mapped[str | None] = mapped_column(String(255))
    #: a WalletStatus value; change it only through `terminate`
    status: Mapped[str] = mapped_column(String(16), default=WalletStatus.ACTIVE)
    #: the customer's currency
    currency: Mapped[str] = mapped_column(String(3))
    #: major units of `currency` one credit is worth (> 0)
    rate_amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    #: credits left (settled inbound minus outbound)
    credits_balance: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    #: the same balance in minor units of `currency`: what invoices consume
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    #: credits invoices have consumed, and their value in minor units
    consumed_credits: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    consumed_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the expiration job terminates the wallet from this instant on
    expiration_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_consumed_credit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    customer: Mapped[Customer] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status == WalletStatus.ACTIVE

    def terminate(self, at: datetime) -> None:
        """Active → terminated; a terminated wallet cannot move."""
        if self.status != WalletStatus.ACTIVE:
            raise NotAllowed("wallet_is_terminated")
        self.status = WalletStatus.TERMINATED
        self.terminated_at = at
        self.updated_at = at


class WalletTransaction(Base):
    __tablename__ = "wallet_transactions"
    __table_args__ = (
        Index("ix_wallet_transactions_wallet_created", "wallet_id", "created_at", "id"),
        Index("ix_wallet_transactions_invoice", "invoice_id"),
        CheckConstraint(
            "transaction_type IN ('inbound', 'outbound')", name="ck_wallet_transactions_type"
        ),
        CheckConstraint(
            "status IN ('pending', 'settled', 'failed')", name="ck_wallet_transactions_status"
        ),
        CheckConstraint(
            "transaction_status IN ('purchased', 'granted', 'voided', 'invoiced')",
            name="ck_wallet_transactions_transaction_status",
        ),
        CheckConstraint("amount_cents >= 0", name="ck_wallet_transactions_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    #: a TransactionType value
    transaction_type: Mapped[str] = mapped_column(String(16))
    #: a TransactionStatus value; change it only through `transition`
    status: Mapped[str] = mapped_column(String(16))
    #: a TransactionKind value
    transaction_status: Mapped[str] = mapped_column(String(16))
    #: credits moved (exact decimal)
    credit_amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    #: their value in minor units of the wallet's currency
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    #: the credit invoice of purchased credits, or the invoice that consumed credits
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    wallet: Mapped[Wallet] = relationship()
    invoice: Mapped[Invoice | None] = relationship()

    def transition(self, to: TransactionStatus, at: datetime) -> None:
        """Pending → settled or failed (failed → settled), stamping the date; anything else
        raises NotAllowed."""
        if to not in TRANSACTION_TRANSITIONS.get(TransactionStatus(self.status), set()):
            raise NotAllowed("wallet_transaction_not_pending")
        self.status = to
        self.updated_at = at
        if to is TransactionStatus.SETTLED:
            self.settled_at = at
        else:
            self.failed_at = at
