"""The outbox: webhook-worthy events written in the same transaction as the change."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from billing.ids import new_lago_id
from billing.models.types import JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_org_time", "organization_id", "created_at"),
        # the events the webhook dispatcher has yet to fan out to endpoints
        Index(
            "ix_outbox_events_undispatched",
            "id",
            sqlite_where=text("dispatched_at IS NULL"),
            postgresql_where=text("dispatched_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: also the webhook's unique key, so receivers can deduplicate
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    #: Lago's webhook_type, e.g. customer.created
    event_type: Mapped[str] = mapped_column(String(64))
    #: Lago's object_type, e.g. customer
    object_type: Mapped[str] = mapped_column(String(32))
    #: the object as the API serializes it at the time of the change
    payload: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    #: when the webhook dispatcher queued its deliveries (null: not yet)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
