"""Usage events (the source of truth) and the running aggregates kept from them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from billing.ids import new_lago_id
from billing.models.types import ExactDecimal, JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class EventError:
    """Why a stored event counts for nothing (`Event.error_code`)."""

    SUBSCRIPTION_NOT_FOUND = "subscription_not_found"
    BILLABLE_METRIC_NOT_FOUND = "billable_metric_not_found"
    #: the metric's field is missing or not a number
    INVALID_FIELD_VALUE = "invalid_field_value"


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # the idempotency key: a replay finds the stored event instead of adding one. The
        # transaction id before the subscription: a batch's new ids (which grow) land together
        # in the index, and look-ups by transaction id use the key.
        UniqueConstraint(
            "organization_id",
            "transaction_id",
            "external_subscription_id",
            name="uq_events_transaction",
        ),
        Index("ix_events_org_created", "organization_id", "created_at"),
        Index(
            "ix_events_subscription_metric_time",
            "subscription_id",
            "billable_metric_id",
            "timestamp",
        ),
        Index("ix_events_customer_created", "customer_id", "created_at"),
        # rejected events only (rare): the organization's and a customer's, newest first
        Index(
            "ix_events_org_errors",
            "organization_id",
            "created_at",
            sqlite_where=text("error_code IS NOT NULL"),
            postgresql_where=text("error_code IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    transaction_id: Mapped[str] = mapped_column(String(255))
    external_subscription_id: Mapped[str] = mapped_column(String(255))
    #: the billable metric code as sent
    code: Mapped[str] = mapped_column(String(255))
    #: when the usage happened (UTC, millisecond precision); "now" when not sent
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    properties: Mapped[dict] = mapped_column(JSONType, default=dict)
    precise_total_amount_cents: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    #: SHA-256 of the request as sent (code, properties, timestamp, amount): tells an identical
    #: replay (answered with the stored event) from a conflicting reuse of the key (422)
    fingerprint: Mapped[str] = mapped_column(String(64))
    #: the subscription active at `timestamp`, the metric of `code` and its customer; null when
    #: unknown at ingestion (then error_code says why)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    billable_metric_id: Mapped[int | None] = mapped_column(ForeignKey("billable_metrics.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    #: an EventError value, or null for an event that counts
    error_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class UsageBucket(Base):
    """Running aggregates of one metric for one subscription over one local day.

    Updated in the ingestion transaction; periods are whole local days, so a period's usage is
    the sum of its days' buckets. `flask --app app usage rebuild` recomputes them from events.
    `dimensions` is the canonical JSON of the event's values for the metric's filter keys
    (`{}` when it has none), so charge filters select buckets without reading events.
    """

    __tablename__ = "usage_buckets"
    __table_args__ = (
        UniqueConstraint(
            "subscription_id",
            "billable_metric_id",
            "day",
            "dimensions",
            name="uq_usage_buckets_key",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    billable_metric_id: Mapped[int] = mapped_column(ForeignKey("billable_metrics.id"))
    #: the local day in the customer's timezone
    day: Mapped[date] = mapped_column(Date)
    dimensions: Mapped[str] = mapped_column(String(1024), default="{}")
    events_count: Mapped[int] = mapped_column(BigInteger, default=0)
    #: sum of the field's values (sum_agg; weighted sums read events)
    sum_value: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    max_value: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    #: value and time of the day's latest event (latest_agg)
    latest_value: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    latest_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
