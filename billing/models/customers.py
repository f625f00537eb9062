"""Customers, with Lago's full field set, their metadata and their CRM/accounting links."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Select,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    column,
    exists,
    literal_column,
    select,
    table,
    text,
    true,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from billing.ids import new_lago_id
from billing.models.organizations import Organization
from billing.models.types import JSONType, UTCDateTime
from billing.timeutil import now_utc
from extensions import Base

if TYPE_CHECKING:
    from billing.models.taxes import Tax

#: columns the console's customer list sorts or filters on, each with an index
LIST_INDEXED_COLUMNS = ("name", "email", "country", "currency")


#: the subscriptions table as far as a customer's status needs it (the Subscription model
#: imports this module, so it cannot be imported here)
_subscriptions = table("subscriptions", column("customer_id"), column("status"))
#: the invoices table as far as the overdue flag needs it (same reason)
_invoices = table(
    "invoices", column("customer_id"), column("status"), column("payment_overdue", Boolean)
)


class CustomerStatus(enum.StrEnum):
    ACTIVE = "active"  # has an active subscription
    INACTIVE = "inactive"
    DELETED = "deleted"


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # external_id is unique among the organization's live customers only: a deleted
        # customer's id can be reused.
        Index(
            "uq_customers_live_external_id",
            "organization_id",
            "external_id",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        UniqueConstraint("organization_id", "sequential_id", name="uq_customers_sequential_id"),
        Index(
            "ix_customers_live_created",
            "organization_id",
            "created_at",
            "id",
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # The console sorts and filters the list by these columns.
        *(
            Index(
                f"ix_customers_live_{column}",
                "organization_id",
                column,
                sqlite_where=text("deleted_at IS NULL"),
                postgresql_where=text("deleted_at IS NULL"),
            )
            for column in LIST_INDEXED_COLUMNS
        ),
        CheckConstraint(
            "net_payment_term IS NULL OR net_payment_term >= 0", name="ck_customers_npt"
        ),
        CheckConstraint(
            "invoice_grace_period IS NULL OR invoice_grace_period >= 0", name="ck_customers_grace"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    external_id: Mapped[str] = mapped_column(String(255))
    #: per-organization creation counter, the tail of the slug
    sequential_id: Mapped[int]

    account_type: Mapped[str] = mapped_column(String(16), default="customer")
    customer_type: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(255))
    firstname: Mapped[str | None] = mapped_column(String(255))
    lastname: Mapped[str | None] = mapped_column(String(255))
    #: one address or a comma-separated list
    email: Mapped[str | None] = mapped_column(String(1024))
    phone: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(String(1024))
    logo_url: Mapped[str | None] = mapped_column(String(1024))
    legal_name: Mapped[str | None] = mapped_column(String(255))
    legal_number: Mapped[str | None] = mapped_column(String(255))
    tax_identification_number: Mapped[str | None] = mapped_column(String(255))

    address_line1: Mapped[str | None] = mapped_column(String(255))
    address_line2: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str | None] = mapped_column(String(255))
    zipcode: Mapped[str | None] = mapped_column(String(255))
    #: ISO 3166 alpha-2, upper case
    country: Mapped[str | None] = mapped_column(String(2))

    shipping_address_line1: Mapped[str | None] = mapped_column(String(255))
    shipping_address_line2: Mapped[str | None] = mapped_column(String(255))
    shipping_city: Mapped[str | None] = mapped_column(String(255))
    shipping_state: Mapped[str | None] = mapped_column(String(255))
    shipping_zipcode: Mapped[str | None] = mapped_column(String(255))
    shipping_country: Mapped[str | None] = mapped_column(String(2))

    #: ISO 4217; locked once anything is attached to the customer
    currency: Mapped[str | None] = mapped_column(String(3))
    #: IANA zone; null = the organization's
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: days from issuing date to due date; null = the organization's
    net_payment_term: Mapped[int | None]
    finalize_zero_amount_invoice: Mapped[str] = mapped_column(String(16), default="inherit")
    skip_invoice_custom_sections: Mapped[bool] = mapped_column(default=False)
    #: e-mail finalized invoices to the customer: inherit (the organization's setting) | on | off
    invoice_emails: Mapped[str] = mapped_column(
        String(8), default="inherit", server_default="inherit"
    )
    external_salesforce_id: Mapped[str | None] = mapped_column(String(255))
    #: last invoice sequential id handed out (incremented under a row lock at finalization)
    invoices_sequence: Mapped[int] = mapped_column(default=0, server_default="0")
    #: signed into every portal link; bumping it revokes all the customer's outstanding links
    portal_version: Mapped[int] = mapped_column(default=0, server_default="0")

    # billing_configuration
    #: days an invoice stays draft; null = the organization's
    invoice_grace_period: Mapped[int | None]
    #: one of reference.DOCUMENT_LOCALES; null = the organization's
    document_locale: Mapped[str | None] = mapped_column(String(8))
    payment_provider: Mapped[str | None] = mapped_column(String(32))
    payment_provider_code: Mapped[str | None] = mapped_column(String(255))
    provider_customer_id: Mapped[str | None] = mapped_column(String(255))
    provider_payment_methods: Mapped[list[str] | None] = mapped_column(JSONType)
    sync: Mapped[bool | None]
    sync_with_provider: Mapped[bool | None]
    subscription_invoice_issuing_date_anchor: Mapped[str | None] = mapped_column(String(32))
    subscription_invoice_issuing_date_adjustment: Mapped[str | None] = mapped_column(String(32))

    #: normalized text indexed for search (SQLite FTS5 / PostgreSQL pg_trgm); see services.search
    search_text: Mapped[str] = mapped_column(Text, default="")

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    #: whether the customer has an active subscription: an EXISTS probe of
    #: ix_subscriptions_customer loaded with the row; the subscription services expire it
    #: when they change a subscription's status
    has_active_subscription: Mapped[bool] = column_property(
        exists().where(_subscriptions.c.customer_id == id, _subscriptions.c.status == "active")
    )
    #: whether the customer has overdue invoices (analytics.OVERDUE): an EXISTS probe of the
    #: partial index ix_invoices_overdue_customer, loaded with the row (the list's badge and
    #: filter)
    has_overdue_invoices: Mapped[bool] = column_property(
        exists().where(
            _invoices.c.customer_id == id,
            # the index predicate, constants inline (see analytics.OVERDUE)
            _invoices.c.payment_overdue == true(),
            _invoices.c.status == literal_column("'finalized'"),
        )
    )

    organization: Mapped[Organization] = relationship()
    metadata_items: Mapped[list[CustomerMetadata]] = relationship(
        back_populates="customer",
        order_by="CustomerMetadata.id",
        cascade="all, delete-orphan",
    )
    integration_customers: Mapped[list[IntegrationCustomer]] = relationship(
        back_populates="customer",
        order_by="IntegrationCustomer.id",
        cascade="all, delete-orphan",
    )
    #: the customer's own taxes (`tax_codes`); none means the organization's defaults
    taxes: Mapped[list[Tax]] = relationship(secondary="customer_taxes", order_by="Tax.code")

    @classmethod
    def ids_with_external_id(cls, organization_id: int, external_id: str) -> Select[Any]:
        """The ids of the organization's customers with this external id (deleted ones too:
        their records stay theirs), for an `external_customer_id` filter."""
        return select(cls.id).where(
            cls.organization_id == organization_id, cls.external_id == external_id
        )

    @property
    def slug(self) -> str:
        return f"{self.organization.slug_prefix}-{self.sequential_id:03d}"

    @property
    def applicable_timezone(self) -> str:
        return self.timezone or self.organization.timezone or "UTC"

    @property
    def status(self) -> CustomerStatus:
        if self.deleted_at is not None:
            return CustomerStatus.DELETED
        # Objects built from list rows may not carry the flag: they then show inactive.
        if getattr(self, "has_active_subscription", False):
            return CustomerStatus.ACTIVE
        return CustomerStatus.INACTIVE

    @property
    def display_name(self) -> str:
        full = " ".join(p for p in (self.firstname, self.lastname) if p)
        return self.name or full or self.legal_name or self.external_id


class CustomerMetadata(Base):
    __tablename__ = "customer_metadata"
    __table_args__ = (
        UniqueConstraint("customer_id", "key", name="uq_customer_metadata_key"),
        Index("ix_customer_metadata_key_value", "key", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    display_in_invoice: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    customer: Mapped[Customer] = relationship(back_populates="metadata_items")


class IntegrationCustomer(Base):
    """A link to the customer's record in a CRM or accounting tool (stored and echoed)."""

    __tablename__ = "integration_customers"
    __table_args__ = (
        UniqueConstraint("customer_id", "integration_type", name="uq_integration_customers_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    integration_type: Mapped[str] = mapped_column(String(32))
    integration_code: Mapped[str | None] = mapped_column(String(255))
    external_customer_id: Mapped[str | None] = mapped_column(String(255))
    sync_with_provider: Mapped[bool] = mapped_column(default=False)
    subsidiary_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    customer: Mapped[Customer] = relationship(back_populates="integration_customers")
