"""Two credit notes offsetting one invoice at once: both offsets count (none overwrites the
other's), the invoice ends fully offset and paid. PostgreSQL only: there the invoice's row lock
orders the two writers; SQLite has one writer at a time for the whole database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from billing.models import Invoice, Subscription
from billing.services import credit_notes, invoicing
from extensions import db
from tests import factories
from tests.factories import TEST_ACTOR

pytestmark = pytest.mark.live


def test_two_offsets_at_once_both_count(live_server, backend):
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    app = live_server.app
    with app.app_context():
        organization = factories.make_organization()
        customer = factories.make_customer(organization, currency="EUR")
        plan = factories.make_plan(organization, charges=[])
        factories.make_subscription(
            organization, customer, plan, subscription_at="2020-01-01T00:00:00Z"
        )
        organization_id = organization.id
        invoicing.close_periods(
            datetime(2020, 2, 1, 0, 1, tzinfo=UTC), organization_id=organization_id
        )
        db.session.execute(
            update(Subscription)
            .where(Subscription.organization_id == organization_id)
            .values(next_invoice_at=datetime(2999, 1, 1, tzinfo=UTC))
        )
        db.session.commit()
        invoice_id = db.session.scalar(
            select(Invoice.id).where(Invoice.organization_id == organization_id)
        )
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                invoice = db.session.get_one(Invoice, invoice_id)
                fee_id = str(invoice.fees[0].lago_id)
                barrier.wait()  # both read the invoice before either offsets it
                credit_notes.create_credit_note(
                    invoice,
                    {"items": [{"fee_id": fee_id, "amount_cents": 500}],
                     "offset_amount_cents": 500},
                    TEST_ACTOR,
                )  # fmt: skip
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001  (reported below)
                db.session.rollback()
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    with app.app_context():
        invoice = db.session.get_one(Invoice, invoice_id)
        assert (invoice.total_amount_cents, invoice.offset_amount_cents) == (1000, 1000)
        assert (invoice.total_due_amount_cents, invoice.payment_status) == (0, "succeeded")
