"""Two finalizations at once spending one wallet (two jobs processes, or the job and an agent)
against the real database: the credits are spent once, the balance never goes below zero, on
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from billing.models import Invoice, Subscription, Wallet
from billing.services import invoicing, wallets
from extensions import db
from tests import factories
from tests.factories import TEST_ACTOR

pytestmark = pytest.mark.live


def test_two_finalizations_at_once_spend_the_credits_once(live_server):
    app = live_server.app
    with app.app_context():
        organization = factories.make_organization()
        customer = factories.make_customer(
            organization, currency="EUR", billing_configuration={"invoice_grace_period": 5}
        )
        plan = factories.make_plan(organization, charges=[])
        for _ in range(2):
            factories.make_subscription(
                organization, customer, plan, subscription_at="2020-01-01T00:00:00Z"
            )
        wallets.create_wallet(
            organization,
            {
                "external_customer_id": customer.external_id,
                "rate_amount": "1",
                "granted_credits": "15",
            },  # fmt: skip
            TEST_ACTOR,
        )
        db.session.commit()
        invoicing.close_periods(
            datetime(2020, 2, 1, 0, 1, tzinfo=UTC), organization_id=organization.id
        )
        draft_ids = list(
            db.session.scalars(select(Invoice.id).where(Invoice.organization_id == organization.id))
        )
        organization_id, customer_id = organization.id, customer.id
    assert len(draft_ids) == 2
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def finalize(invoice_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait()  # before any transaction: SQLite takes its write lock at BEGIN
                invoice = db.session.get_one(Invoice, invoice_id)
                invoicing.finalize_invoice(invoice, TEST_ACTOR)
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001  (reported below)
                db.session.rollback()
                errors.append(exc)

    threads = [threading.Thread(target=finalize, args=(i,)) for i in draft_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    try:
        assert errors == []
        with app.app_context():
            invoices = db.session.scalars(select(Invoice).where(Invoice.id.in_(draft_ids))).all()
            amounts = sorted(
                (invoice.status, invoice.prepaid_credit_amount_cents, invoice.total_amount_cents)
                for invoice in invoices
            )
            assert amounts == [("finalized", 500, 500), ("finalized", 1000, 0)]
            wallet = db.session.scalars(
                select(Wallet).where(Wallet.customer_id == customer_id)
            ).one()
            assert (wallet.balance_cents, wallet.consumed_amount_cents) == (0, 1500)
            assert wallet.credits_balance == 0
    finally:
        with app.app_context():
            db.session.execute(
                update(Subscription)
                .where(Subscription.organization_id == organization_id)
                .values(status="terminated", next_invoice_at=None)
            )
            db.session.commit()
