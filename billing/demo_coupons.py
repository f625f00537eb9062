"""Demo coupons (`make run`): a launch discount applied to Globex before its billing history is
replayed, so its invoices show it, and a welcome coupon waiting to be applied."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from billing.models import Coupon, Organization
from billing.services import audit
from billing.services.coupons import apply_coupon, create_coupon
from billing.timeutil import clock_frozen_at
from extensions import db

SEED = audit.Actor(type="system", source="cli", label="demo seed")
COUPONS = [
    {"name": "Launch offer", "code": "launch20", "coupon_type": "percentage",
     "percentage_rate": "20", "frequency": "recurring", "frequency_duration": 3,
     "description": "20 % off the first three invoices"},
    {"name": "Welcome credit", "code": "welcome50", "coupon_type": "fixed_amount",
     "amount_cents": 5000, "amount_currency": "EUR", "frequency": "once", "reusable": False,
     "description": "€50 off, carried over until used up"},
]  # fmt: skip


def seed_coupons(organization: Organization, applied_at: datetime) -> None:
    """Create the demo coupons and apply the launch offer to Globex at `applied_at` (before its
    first invoice); nothing when the organization has coupons already."""
    if db.session.scalar(select(Coupon.id).where(Coupon.organization_id == organization.id)):
        return
    for payload in COUPONS:
        create_coupon(organization, payload, SEED)
    with clock_frozen_at(applied_at):
        apply_coupon(
            organization, {"external_customer_id": "globex", "coupon_code": "launch20"}, SEED
        )
