"""Organizations (tenants), their API keys and their agents."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.ids import new_lago_id
from billing.models.types import JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("invoice_grace_period >= 0", name="ck_org_grace_period"),
        CheckConstraint("net_payment_term >= 0", name="ck_org_net_payment_term"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    #: IANA zone used for customers that have none
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: ISO 4217 code proposed for new customers; null = none
    default_currency: Mapped[str | None] = mapped_column(String(3))
    document_locale: Mapped[str] = mapped_column(String(8), default="en")
    #: days an invoice stays draft before it is finalized
    invoice_grace_period: Mapped[int] = mapped_column(default=0)
    #: days between an invoice's issuing date and its due date
    net_payment_term: Mapped[int] = mapped_column(default=0)
    #: whether a zero-amount invoice is finalized (else closed unnumbered), for customers that
    #: inherit (Lago's organization setting)
    finalize_zero_amount_invoice: Mapped[bool] = mapped_column(default=True)
    #: origins allowed to frame the customer portal (CSP frame-ancestors)
    portal_embed_origins: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: HMAC secret of outgoing webhooks
    webhook_secret: Mapped[str] = mapped_column(String(128))
    #: HMAC secret expected on inbound hooks (different from the outgoing one)
    inbound_secret: Mapped[str] = mapped_column(String(128))
    #: Stripe's webhook endpoint signing secret (`whsec_…`) that /hooks/stripe checks; null =
    #: no Stripe endpoint
    stripe_webhook_secret: Mapped[str | None] = mapped_column(String(255))
    #: PEM of the RSA key that signs `jwt` webhooks (made on first use)
    webhook_private_key: Mapped[str | None] = mapped_column(Text)
    #: last customer sequential id handed out (incremented under a row lock)
    customers_sequence: Mapped[int] = mapped_column(default=0)
    #: hex color of the portal and PDFs, e.g. #2f5bd3
    brand_color: Mapped[str] = mapped_column(String(7), default="#2f5bd3")
    #: the logo image itself (kept in the database, so every process serves it)
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_content_type: Mapped[str | None] = mapped_column(String(32))
    #: outgoing mail server; none = messages are stored in the outbox, not sent (development)
    smtp_host: Mapped[str | None] = mapped_column(String(255))
    smtp_port: Mapped[int | None] = mapped_column()
    #: starttls | tls (implicit, SMTPS) | none
    smtp_security: Mapped[str] = mapped_column(String(8), default="starttls")
    smtp_username: Mapped[str | None] = mapped_column(String(255))
    #: Fernet token (billing/secrets.py), never the password itself
    smtp_password_encrypted: Mapped[str | None] = mapped_column(Text)
    mail_from_address: Mapped[str | None] = mapped_column(String(255))
    mail_from_name: Mapped[str | None] = mapped_column(String(255))
    #: e-mail each invoice to the customer when it is finalized (customers may override)
    invoice_emails: Mapped[bool] = mapped_column(default=False)
    #: days after the due date at which an unpaid invoice's reminders go out, e.g. [3, 10, 30]
    dunning_schedule: Mapped[list[int]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="organization")

    @property
    def slug_prefix(self) -> str:
        """`LAG-1234`: three ASCII letters of the name and the last four characters of the id."""
        letters = "".join(ch for ch in self.name.upper() if "A" <= ch <= "Z")[:3]
        return f"{letters.ljust(3, 'X')}-{self.lago_id.hex[-4:].upper()}"


class ApiKey(Base):
    """A secret shown once; stored as SHA-256 and found through its first characters."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="API key")
    #: first characters of the key, for lookup and display
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    #: hex SHA-256 of the whole key
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    #: written at most once a minute
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organization: Mapped[Organization] = relationship(back_populates="api_keys")


class AgentRole(enum.StrEnum):
    ADMIN = "admin"
    SUPPORT = "support"
    VIEWER = "viewer"


class Agent(Base):
    """A person working in the console."""

    __tablename__ = "agents"
    __table_args__ = (Index("uq_agents_email", "email", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    #: stored lower-cased; an agent logs in with it
    email: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[AgentRole] = mapped_column(
        Enum(
            AgentRole, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
        )
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: set while an invitation waits for the invitee to choose a password
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organization: Mapped[Organization] = relationship()

    # The attributes Flask-Login reads, without importing Flask into the domain.
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    def can(self, permission: str) -> bool:
        """`write` (support and admin) or `admin`."""
        if permission == "admin":
            return self.role is AgentRole.ADMIN
        if permission == "write":
            return self.role in (AgentRole.ADMIN, AgentRole.SUPPORT)
        raise ValueError(f"unknown permission {permission!r}")
