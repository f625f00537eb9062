"""E-mails: every message Ledgerline sends (invoices, reminders, agent links), queued in the
transaction that causes it and delivered by the jobs process."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.ids import new_lago_id
from billing.models.customers import Customer
from billing.models.invoices import Invoice
from billing.models.types import JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class EmailKind:
    INVOICE = "invoice"  # an invoice finalized
    INVOICE_RESENT = "invoice_resent"  # the same, sent again by hand
    REMINDER = "payment_reminder"  # a dunning step of one overdue invoice
    PAYMENT_REQUEST = "payment_request"  # every overdue invoice of a customer, asked by an agent
    INVITATION = "agent_invitation"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind of message, not a secret
    TEST = "test"
    #: messages carrying a sign-in link: their body is forgotten once sent
    SENSITIVE = (INVITATION, PASSWORD_RESET)
    #: messages about one customer's billing (shown on its timeline, in its language)
    CUSTOMER = (INVOICE, INVOICE_RESENT, REMINDER, PAYMENT_REQUEST)


class EmailStatus:
    QUEUED = "queued"
    RETRYING = "retrying"
    SENT = "sent"
    #: no SMTP server configured: kept in the outbox, not sent (the development default)
    STORED = "stored"
    FAILED = "failed"
    #: no longer relevant when its turn came (a reminder for an invoice paid meanwhile)
    CANCELED = "canceled"
    OPEN = (QUEUED, RETRYING)
    ALL = (QUEUED, RETRYING, SENT, STORED, FAILED, CANCELED)


class Email(Base):
    """One message. `next_attempt_at` is also the sender's lease (as webhook deliveries): it is
    pushed past the SMTP timeout before the message goes out, so a sender that dies leaves the
    message due again."""

    __tablename__ = "emails"
    __table_args__ = (
        # a reminder step of an invoice, an invoice's finalization e-mail: at most once
        UniqueConstraint("organization_id", "dedupe_key", name="uq_emails_dedupe_key"),
        CheckConstraint(
            "status IN ('queued', 'retrying', 'sent', 'stored', 'failed', 'canceled')",
            name="ck_emails_status",
        ),
        Index(
            "ix_emails_due",
            "next_attempt_at",
            sqlite_where=text("status IN ('queued', 'retrying')"),
            postgresql_where=text("status IN ('queued', 'retrying')"),
        ),
        Index("ix_emails_org_created", "organization_id", "created_at"),
        Index("ix_emails_customer", "customer_id", "created_at"),
        Index("ix_emails_invoice", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    #: an EmailKind value
    kind: Mapped[str] = mapped_column(String(32))
    #: unique per organization when set: `invoice:<id>`, `reminder:<invoice id>:<days>`
    dedupe_key: Mapped[str | None] = mapped_column(String(128))
    #: comma-separated addresses
    recipients: Mapped[str] = mapped_column(String(1024))
    #: document locale of the message
    locale: Mapped[str] = mapped_column(String(8), default="en")
    #: what the message needs beyond its links: {"invoice_ids": [...], "days": 10, ...}
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: rendered at the first attempt (the outbox shows them)
    subject: Mapped[str | None] = mapped_column(String(255))
    body_text: Mapped[str | None] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=EmailStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=now_utc)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    customer: Mapped[Customer | None] = relationship()
    invoice: Mapped[Invoice | None] = relationship()
