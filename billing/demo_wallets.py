"""Demo data for wallets: granted credits on one demo customer, consumed by its first
invoice when the demo's billing history is replayed."""

from __future__ import annotations

from contextlib import nullcontext

from sqlalchemy import func, select

from billing.models import Organization, Subscription, Wallet
from billing.services import audit
from billing.services.customers import get_customer
from billing.services.wallets import create_wallet
from billing.timeutil import clock_frozen_at
from extensions import db

SEED = audit.Actor(type="system", source="cli", label="demo seed")
#: who gets the welcome credits, and how many (1 credit = 1 EUR)
WALLET_CUSTOMER = "initech"
GRANTED_CREDITS = "25"


def seed_wallet(organization: Organization) -> Wallet:
    """Initech's wallet with 25 granted credits, created the day its subscription started
    (so its first invoice, replayed next, consumes them)."""
    customer = get_customer(organization, WALLET_CUSTOMER)
    started = db.session.scalar(
        select(func.min(Subscription.subscription_at)).where(
            Subscription.customer_id == customer.id
        )
    )
    with clock_frozen_at(started) if started is not None else nullcontext():
        return create_wallet(
            organization,
            {"external_customer_id": WALLET_CUSTOMER, "name": "Welcome credits",
             "rate_amount": "1", "granted_credits": GRANTED_CREDITS},
            SEED,
        )  # fmt: skip
