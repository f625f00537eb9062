"""Coupons, the coupons applied to customers and what each applied coupon took off an invoice
(lago-api.md §15, the `credits` of §10.1)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
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

from billing.errors import NotAllowed
from billing.ids import new_lago_id
from billing.models.customers import Customer
from billing.models.invoices import Invoice
from billing.models.plans import BillableMetric, Plan
from billing.models.types import ExactDecimal, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base

LIVE = text("deleted_at IS NULL")


class CouponType(enum.StrEnum):
    FIXED_AMOUNT = "fixed_amount"
    PERCENTAGE = "percentage"


class CouponFrequency(enum.StrEnum):
    ONCE = "once"
    RECURRING = "recurring"
    FOREVER = "forever"


class CouponExpiration(enum.StrEnum):
    NO_EXPIRATION = "no_expiration"
    TIME_LIMIT = "time_limit"


class CouponStatus(enum.StrEnum):
    ACTIVE = "active"
    TERMINATED = "terminated"


class Coupon(Base):
    """A discount the organization offers; applying it to a customer makes an AppliedCoupon,
    which carries the terms (an application may override them)."""

    __tablename__ = "coupons"
    __table_args__ = (
        # codes are unique among live coupons: a deleted coupon's code can be reused
        Index(
            "uq_coupons_live_code",
            "organization_id",
            "code",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        CheckConstraint(
            "coupon_type IN ('fixed_amount', 'percentage')", name="ck_coupons_coupon_type"
        ),
        CheckConstraint(
            "frequency IN ('once', 'recurring', 'forever')", name="ck_coupons_frequency"
        ),
        CheckConstraint("status IN ('active', 'terminated')", name="ck_coupons_status"),
        CheckConstraint(
            "coupon_type <> 'fixed_amount' OR (amount_cents > 0 AND amount_currency IS NOT NULL)",
            name="ck_coupons_fixed_amount",
        ),
        CheckConstraint(
            "coupon_type <> 'percentage' OR percentage_rate IS NOT NULL",
            name="ck_coupons_percentage",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    #: a CouponType value
    coupon_type: Mapped[str] = mapped_column(String(16))
    #: fixed_amount only: minor units of `amount_currency` taken off
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    amount_currency: Mapped[str | None] = mapped_column(String(3))
    #: percentage only: the percentage of the eligible fees taken off (e.g. 12.5)
    percentage_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    #: a CouponFrequency value
    frequency: Mapped[str] = mapped_column(String(16), default=CouponFrequency.ONCE)
    #: recurring only: how many invoices it applies to
    frequency_duration: Mapped[int | None]
    #: whether one customer may have it applied more than once
    reusable: Mapped[bool] = mapped_column(default=True)
    #: a CouponExpiration value; with time_limit nobody can apply it after `expiration_at`
    expiration: Mapped[str] = mapped_column(String(16), default=CouponExpiration.NO_EXPIRATION)
    expiration_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: only fees of these plans (`plans`) / these metrics' charges (`billable_metrics`) count
    limited_plans: Mapped[bool] = mapped_column(default=False)
    limited_billable_metrics: Mapped[bool] = mapped_column(default=False)
    #: a CouponStatus value; a terminated coupon cannot be applied any more
    status: Mapped[str] = mapped_column(String(16), default=CouponStatus.ACTIVE)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    targets: Mapped[list[CouponTarget]] = relationship(
        back_populates="coupon", order_by="CouponTarget.id", cascade="all, delete-orphan"
    )

    @property
    def plans(self) -> list[Plan]:
        return [target.plan for target in self.targets if target.plan is not None]

    @property
    def billable_metrics(self) -> list[BillableMetric]:
        return [target.billable_metric for target in self.targets if target.billable_metric]

    def expired(self, at: datetime) -> bool:
        return (
            self.expiration == CouponExpiration.TIME_LIMIT
            and self.expiration_at is not None
            and self.expiration_at <= at
        )


class CouponTarget(Base):
    """One plan or one billable metric a limited coupon applies to."""

    __tablename__ = "coupon_targets"
    __table_args__ = (
        UniqueConstraint("coupon_id", "plan_id", name="uq_coupon_targets_plan"),
        UniqueConstraint("coupon_id", "billable_metric_id", name="uq_coupon_targets_metric"),
        CheckConstraint(
            "(plan_id IS NULL) <> (billable_metric_id IS NULL)", name="ck_coupon_targets_one"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    billable_metric_id: Mapped[int | None] = mapped_column(ForeignKey("billable_metrics.id"))

    coupon: Mapped[Coupon] = relationship(back_populates="targets")
    plan: Mapped[Plan | None] = relationship()
    billable_metric: Mapped[BillableMetric | None] = relationship()


#: the only legal status move of an applied coupon
APPLIED_COUPON_TRANSITIONS = {CouponStatus.ACTIVE: {CouponStatus.TERMINATED}}


class AppliedCoupon(Base):
    """A coupon applied to a customer, with its own terms (the coupon's, or the overrides given
    when applying it) and what is left of them. Finalized invoices consume it, under a row
    lock: `amount_cents_remaining` (fixed amount, once) and `frequency_duration_remaining`
    (recurring) only go down, and it terminates when nothing is left."""

    __tablename__ = "applied_coupons"
    __table_args__ = (
        Index("ix_applied_coupons_customer", "customer_id", "status", "created_at"),
        Index("ix_applied_coupons_org_created", "organization_id", "created_at", "id"),
        CheckConstraint("status IN ('active', 'terminated')", name="ck_applied_coupons_status"),
        CheckConstraint(
            "amount_cents_remaining IS NULL OR amount_cents_remaining >= 0",
            name="ck_applied_coupons_amount_remaining",
        ),
        CheckConstraint(
            "frequency_duration_remaining IS NULL OR frequency_duration_remaining >= 0",
            name="ck_applied_coupons_duration_remaining",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    #: a CouponStatus value; change it only through `terminate`
    status: Mapped[str] = mapped_column(String(16), default=CouponStatus.ACTIVE)
    #: fixed_amount: minor units of `amount_currency` taken off each invoice (once: in total)
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    #: fixed_amount once: what later invoices can still take (carried over invoice to invoice)
    amount_cents_remaining: Mapped[int | None] = mapped_column(BigInteger)
    amount_currency: Mapped[str | None] = mapped_column(String(3))
    percentage_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    frequency: Mapped[str] = mapped_column(String(16))
    frequency_duration: Mapped[int | None]
    #: recurring: invoices it still applies to
    frequency_duration_remaining: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    coupon: Mapped[Coupon] = relationship()
    customer: Mapped[Customer] = relationship()
    credits: Mapped[list[InvoiceCoupon]] = relationship(
        back_populates="applied_coupon", order_by="InvoiceCoupon.id", viewonly=True
    )

    @property
    def is_percentage(self) -> bool:
        return self.coupon.coupon_type == CouponType.PERCENTAGE

    def terminate(self, at: datetime | None = None) -> None:
        """Terminated for good; terminating a terminated one raises NotAllowed."""
        if CouponStatus.TERMINATED not in APPLIED_COUPON_TRANSITIONS.get(
            CouponStatus(self.status), set()
        ):
            raise NotAllowed("applied_coupon_not_active")
        self.status = CouponStatus.TERMINATED
        self.terminated_at = self.updated_at = at or now_utc()


class InvoiceCoupon(Base):
    """What one applied coupon took off one invoice (Lago's coupon `credits`). A draft's rows
    are rebuilt on each refresh and consume nothing; a finalized invoice's never change."""

    __tablename__ = "invoice_coupons"
    __table_args__ = (
        UniqueConstraint("invoice_id", "applied_coupon_id", name="uq_invoice_coupons_pair"),
        Index("ix_invoice_coupons_applied_coupon", "applied_coupon_id"),
        CheckConstraint("amount_cents > 0", name="ck_invoice_coupons_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    applied_coupon_id: Mapped[int] = mapped_column(ForeignKey("applied_coupons.id"))
    #: minor units of the invoice's currency taken off its fees
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: the invoice's fees left to discount before and after this coupon (minor units)
    before_amount_cents: Mapped[int] = mapped_column(BigInteger)
    after_amount_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    invoice: Mapped[Invoice] = relationship(back_populates="coupon_credits")
    applied_coupon: Mapped[AppliedCoupon] = relationship(back_populates="credits")
