"""Billable metrics (what is measured) and plans with their charges (what it costs)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.ids import new_lago_id
from billing.models.types import JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base

if TYPE_CHECKING:
    from billing.models.taxes import Tax

LIVE = text("deleted_at IS NULL")


class PlanInterval(enum.StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMIANNUAL = "semiannual"
    YEARLY = "yearly"


class BillableMetric(Base):
    __tablename__ = "billable_metrics"
    __table_args__ = (
        # codes are unique among live metrics: a deleted metric's code can be reused
        Index(
            "uq_billable_metrics_live_code",
            "organization_id",
            "code",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    #: one of aggregation.AGGREGATION_TYPES, e.g. sum_agg
    aggregation_type: Mapped[str] = mapped_column(String(32))
    #: the event property aggregated (null for count_agg)
    field_name: Mapped[str | None] = mapped_column(String(255))
    #: units carry over from one period to the next (sum, unique count, weighted sum)
    recurring: Mapped[bool] = mapped_column(default=False)
    weighted_interval: Mapped[str | None] = mapped_column(String(16))
    #: round | ceil | floor applied to the aggregated units, at rounding_precision decimals
    rounding_function: Mapped[str | None] = mapped_column(String(8))
    rounding_precision: Mapped[int | None]
    expression: Mapped[str | None] = mapped_column(Text)
    #: [{"key": "region", "values": ["eu", "us"]}]: the dimensions charges may filter on
    filters: Mapped[list[dict]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def filter_keys(self) -> list[str]:
        return [item["key"] for item in self.filters or []]


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (
        Index(
            "uq_plans_live_code",
            "organization_id",
            "code",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        CheckConstraint("amount_cents >= 0", name="ck_plans_amount"),
        CheckConstraint("trial_period >= 0", name="ck_plans_trial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))
    invoice_display_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    #: a PlanInterval value
    interval: Mapped[str] = mapped_column(String(16))
    #: base fee per period, in minor units of amount_currency
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    amount_currency: Mapped[str] = mapped_column(String(3))
    #: base fee billed at the start of the period (else at its end)
    pay_in_advance: Mapped[bool] = mapped_column(default=False)
    #: days of trial during which the base fee is not billed
    trial_period: Mapped[int] = mapped_column(default=0)
    bill_charges_monthly: Mapped[bool | None]
    #: free-form key/value map (Lago's plan metadata)
    plan_metadata: Mapped[dict | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    charges: Mapped[list[Charge]] = relationship(
        back_populates="plan",
        order_by="Charge.id",
        primaryjoin="and_(Charge.plan_id == Plan.id, Charge.deleted_at.is_(None))",
        viewonly=True,
    )
    #: taxes of the plan's fees (base fee, and charges without taxes of their own)
    taxes: Mapped[list[Tax]] = relationship(secondary="plan_taxes", order_by="Tax.code")

    @property
    def tax_codes(self) -> list[str]:
        return [tax.code for tax in self.taxes]


class Charge(Base):
    """A metric priced in a plan."""

    __tablename__ = "charges"
    __table_args__ = (
        Index(
            "uq_charges_live_code",
            "plan_id",
            "code",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        CheckConstraint("min_amount_cents >= 0", name="ck_charges_min_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    billable_metric_id: Mapped[int] = mapped_column(ForeignKey("billable_metrics.id"), index=True)
    code: Mapped[str] = mapped_column(String(255))
    #: one of pricing.CHARGE_MODELS
    charge_model: Mapped[str] = mapped_column(String(32))
    #: the model's prices, decimal strings as Lago sends them (see pricing.validate_properties)
    properties: Mapped[dict] = mapped_column(JSONType, default=dict)
    pay_in_advance: Mapped[bool] = mapped_column(default=False)
    invoiceable: Mapped[bool] = mapped_column(default=True)
    prorated: Mapped[bool] = mapped_column(default=False)
    regroup_paid_fees: Mapped[str | None] = mapped_column(String(16))
    #: the charge's floor per period, in minor units of the plan's currency
    min_amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    invoice_display_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    plan: Mapped[Plan] = relationship(back_populates="charges")
    billable_metric: Mapped[BillableMetric] = relationship()
    filters: Mapped[list[ChargeFilter]] = relationship(
        back_populates="charge",
        order_by="ChargeFilter.id",
        primaryjoin="and_(ChargeFilter.charge_id == Charge.id, ChargeFilter.deleted_at.is_(None))",
        viewonly=True,
    )
    #: the charge's own taxes; none means the plan's
    taxes: Mapped[list[Tax]] = relationship(secondary="charge_taxes", order_by="Tax.code")

    @property
    def tax_codes(self) -> list[str]:
        return [tax.code for tax in self.taxes]


class ChargeFilter(Base):
    """Other prices for the events whose properties match `values`."""

    __tablename__ = "charge_filters"

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    charge_id: Mapped[int] = mapped_column(ForeignKey("charges.id"), index=True)
    invoice_display_name: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: {"region": ["eu"], "cloud": ["aws", "gcp"]}
    values: Mapped[dict[str, list[str]]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    charge: Mapped[Charge] = relationship(back_populates="filters")
