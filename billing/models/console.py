"""What the support console keeps: login throttling, saved views, customer imports."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from billing.ids import new_lago_id
from billing.models.types import JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class LoginThrottle(Base):
    """Failed logins per account and per client address, shared by every web process."""

    __tablename__ = "login_throttles"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: `account:<email>` or `ip:<address>`
    key: Mapped[str] = mapped_column(String(300), unique=True)
    #: failures since the last success (or since the window expired)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    #: no attempt is checked before this time
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SavedView(Base):
    """A named customer-list query (search, filters, sort) of one agent."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("agent_id", "name", name="uq_saved_views_agent_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    #: the list URL's query string, e.g. `q=acme&country=FR&sort=-created_at`
    query: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class CustomerImport(Base):
    """A CSV import of customers: previewed, then run (inline, or in the jobs process if large)."""

    __tablename__ = "customer_imports"
    __table_args__ = (Index("ix_customer_imports_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    filename: Mapped[str] = mapped_column(String(255))
    #: the uploaded CSV text (kept in the database so any process can run the import)
    content: Mapped[str] = mapped_column(Text)
    #: previewed | queued | running | done | failed
    status: Mapped[str] = mapped_column(String(16), default="previewed")
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    updated_count: Mapped[int] = mapped_column(default=0)
    #: [{"row": 3, "external_id": "...", "errors": {"field": ["code"]}}]
    row_errors: Mapped[list] = mapped_column(JSONType, default=list)
    #: why a run failed as a whole
    failure: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    #: when the last batch was committed (a running import silent for long has stalled)
    progressed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
