"""The audit trail: who changed what, when, with field diffs (Lago's activity logs)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from billing.ids import new_lago_id
from billing.models.types import JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class ActivityLog(Base):
    __tablename__ = "activity_logs"
    __table_args__ = (
        Index("ix_activity_logs_org_time", "organization_id", "created_at"),
        Index("ix_activity_logs_customer_time", "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    #: the customer concerned, if any (kept after a soft delete)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    #: e.g. customer.created, customer.updated, api_key.revoked
    activity_type: Mapped[str] = mapped_column(String(64))
    #: api, console, portal, webhook, system, cli
    source: Mapped[str] = mapped_column(String(16))
    #: agent, api_key, portal, webhook, system
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    #: human-readable actor: an agent's e-mail, an API key's prefix
    actor_label: Mapped[str | None] = mapped_column(String(255))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64))
    #: what the resource was called then (a customer's name, an agent's e-mail, a key's name)
    resource_label: Mapped[str | None] = mapped_column(String(255))
    #: {field: [old, new]}
    changes: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
