"""Subscriptions: a customer on a plan, from a start to an optional termination."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.errors import NotAllowed
from billing.ids import new_lago_id
from billing.models.customers import Customer
from billing.models.plans import Plan
from billing.models.types import UTCDateTime
from billing.periods import Period, period_containing
from billing.timeutil import now_utc
from extensions import Base


class SubscriptionStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"
    CANCELED = "canceled"


#: the only legal status moves
TRANSITIONS = {
    SubscriptionStatus.PENDING: {SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELED},
    SubscriptionStatus.ACTIVE: {SubscriptionStatus.TERMINATED},
}


class BillingTime(enum.StrEnum):
    CALENDAR = "calendar"
    ANNIVERSARY = "anniversary"


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        # At most one active subscription per external id and organization; the terminated
        # predecessors of an upgrade and a pending downgrade share the external id.
        Index(
            "uq_subscriptions_active_external_id",
            "organization_id",
            "external_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_subscriptions_org_external_id", "organization_id", "external_id"),
        Index("ix_subscriptions_customer", "customer_id", "status"),
        Index("ix_subscriptions_status_start", "status", "subscription_at"),
        Index("ix_subscriptions_next_invoice", "next_invoice_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    #: a SubscriptionStatus value; change it only through `transition`
    status: Mapped[str] = mapped_column(String(16), default=SubscriptionStatus.PENDING)
    #: a BillingTime value
    billing_time: Mapped[str] = mapped_column(String(16), default=BillingTime.CALENDAR)
    #: the requested start; periods of anniversary billing are anchored on its local date
    subscription_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: when it became active
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: planned termination, if any
    ending_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the subscription this one replaces (upgrade or downgrade)
    previous_subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    on_termination_credit_note: Mapped[str | None] = mapped_column(String(16))
    on_termination_invoice: Mapped[str] = mapped_column(String(16), default="generate")
    #: when the period to invoice next ends (UTC): the close job reads only subscriptions whose
    #: value has passed; kept by services.invoicing; null = not invoiced yet or terminated
    next_invoice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)

    customer: Mapped[Customer] = relationship()
    plan: Mapped[Plan] = relationship()
    previous_subscription: Mapped[Subscription | None] = relationship(remote_side=[id])

    @property
    def anchor(self) -> datetime:
        """The instant periods are computed from. Anniversary periods keep the day of the
        original `subscription_at` (an upgrade copies it); calendar periods start with the
        subscription's own activation."""
        if self.billing_time == BillingTime.ANNIVERSARY:
            return self.subscription_at
        return self.started_at or self.subscription_at

    def period_at(self, at: datetime) -> Period:
        """The billing period containing `at`, in the customer's timezone (half-open, UTC)."""
        return period_containing(
            at,
            interval=self.plan.interval,
            billing_time=self.billing_time,
            started_at=self.anchor,
            timezone=self.customer.applicable_timezone,
        )

    def transition(self, to: SubscriptionStatus, at: datetime | None = None) -> None:
        """Move to `to`, stamping the matching date; an illegal move raises."""
        current = SubscriptionStatus(self.status)
        if to not in TRANSITIONS.get(current, set()):
            raise NotAllowed(f"subscription_is_{current}")
        at = at or now_utc()
        self.status = to
        if to is SubscriptionStatus.ACTIVE:
            self.started_at = at
        elif to is SubscriptionStatus.TERMINATED:
            self.terminated_at = at
        elif to is SubscriptionStatus.CANCELED:
            self.canceled_at = at
