"""Webhooks: the organization's endpoints and every delivery of an outbox event to one of them."""

from __future__ import annotations

import uuid
from datetime import datetime

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
from billing.models.outbox import OutboxEvent
from billing.models.types import JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class SignatureAlgo:
    HMAC = "hmac"
    JWT = "jwt"
    ALL = (JWT, HMAC)


class DeliveryStatus:
    PENDING = "pending"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: still to be sent (first attempt or a retry)
    OPEN = (PENDING, RETRYING)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        UniqueConstraint("organization_id", "webhook_url", name="uq_webhook_endpoints_url"),
        CheckConstraint("signature_algo IN ('jwt', 'hmac')", name="ck_webhook_endpoints_algo"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    webhook_url: Mapped[str] = mapped_column(String(1024))
    name: Mapped[str | None] = mapped_column(String(255))
    signature_algo: Mapped[str] = mapped_column(String(8), default=SignatureAlgo.JWT)
    #: webhook types delivered to this endpoint; null = every type
    event_types: Mapped[list[str] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    def subscribes_to(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


class WebhookDelivery(Base):
    """One outbox event for one endpoint: sent until it succeeds or its retry window ends.

    `next_attempt_at` is also the lease of a sender: it is pushed past the request timeout
    before the request goes out, so a sender that dies mid-flight leaves a delivery that falls
    due again (at least once; receivers deduplicate on `lago_id`, the X-Lago-Unique-Key)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "outbox_event_id", name="uq_webhook_deliveries_event"),
        CheckConstraint(
            "status IN ('pending', 'retrying', 'succeeded', 'failed')",
            name="ck_webhook_deliveries_status",
        ),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            sqlite_where=text("status IN ('pending', 'retrying')"),
            postgresql_where=text("status IN ('pending', 'retrying')"),
        ),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_customer", "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    #: null for a test delivery ("send test event")
    outbox_event_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_events.id"))
    #: the customer the event is about, when there is one (the customer's timeline)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    #: the exact JSON body sent (signatures cover these bytes)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=now_utc)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None] = mapped_column()
    response_time_ms: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    endpoint: Mapped[WebhookEndpoint] = relationship()
    outbox_event: Mapped[OutboxEvent | None] = relationship()


class InboundDelivery(Base):
    """A signed request received on /hooks/…: its delivery id answers a repeat identically."""

    __tablename__ = "inbound_deliveries"
    __table_args__ = (
        UniqueConstraint("organization_id", "delivery_id", name="uq_inbound_deliveries_id"),
        Index("ix_inbound_deliveries_org_time", "organization_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    delivery_id: Mapped[str] = mapped_column(String(255))
    hook: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    response_status: Mapped[int] = mapped_column()
    response_body: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
