"""Add-ons: one-time items of the catalog, billed on one-off invoices (lago-api.md §11)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing.ids import new_lago_id
from billing.models.plans import LIVE
from billing.models.types import UTCDateTime
from billing.timeutil import now_utc
from extensions import Base

if TYPE_CHECKING:
    from billing.models.taxes import Tax


class AddOn(Base):
    __tablename__ = "add_ons"
    __table_args__ = (
        # codes are unique among live add-ons: a deleted add-on's code can be reused
        Index(
            "uq_add_ons_live_code",
            "organization_id",
            "code",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        Index("ix_add_ons_org_created", "organization_id", "created_at", "id"),
        CheckConstraint("amount_cents >= 0", name="ck_add_ons_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lago_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_lago_id)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(255))
    #: the fee line's label on invoices (the name when null)
    invoice_display_name: Mapped[str | None] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))
    #: default price of one unit, in minor units of `amount_currency`
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    amount_currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    #: soft delete: fees already invoiced keep pointing at the add-on
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    #: the taxes of its fees (`tax_codes`); none means the customer's, else the organization's
    taxes: Mapped[list[Tax]] = relationship(secondary="add_on_taxes", order_by="Tax.code")

    @property
    def tax_codes(self) -> list[str]:
        return [tax.code for tax in self.taxes]
