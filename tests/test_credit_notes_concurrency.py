"""Two period closes at once consuming one customer's credit notes: the credit is spent once,
never more than its balance, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from billing.models import CreditNote, Invoice, InvoiceCredit, Subscription
from billing.services import credit_notes, invoicing
from extensions import db
from tests import factories
from tests.factories import TEST_ACTOR

pytestmark = pytest.mark.live


def test_two_closes_at_once_spend_the_credit_once(live_server):
    app = live_server.app
    with app.app_context():
        organization = factories.make_organization()
        customer = factories.make_customer(organization, currency="EUR")
        plan = factories.make_plan(organization, charges=[])
        for _ in range(2):
            factories.make_subscription(
                organization, customer, plan, subscription_at="2020-01-01T00:00:00Z"
            )
        organization_id = organization.id
        invoicing.close_periods(
            datetime(2020, 2, 1, 0, 1, tzinfo=UTC), organization_id=organization_id
        )
        january = db.session.scalars(
            select(Invoice).where(Invoice.organization_id == organization_id)
        ).all()
        for invoice, cents in zip(january, (1000, 500), strict=True):
            credit_notes.create_credit_note(
                invoice,
                {"items": [{"fee_id": str(invoice.fees[0].lago_id), "amount_cents": cents}],
                 "credit_amount_cents": cents},
                TEST_ACTOR,
            )  # fmt: skip
        db.session.commit()
        january_ids = [invoice.id for invoice in january]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                barrier.wait()
                report = invoicing.close_periods(
                    datetime(2020, 3, 1, 0, 1, tzinfo=UTC), organization_id=organization_id
                )
                assert report.failed == []
            except BaseException as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    try:
        assert errors == []
        with app.app_context():
            february = db.session.scalars(
                select(Invoice).where(
                    Invoice.organization_id == organization_id, Invoice.id.not_in(january_ids)
                )
            ).all()  # fmt: skip
            assert len(february) == 2
            assert sum(invoice.credit_notes_amount_cents for invoice in february) == 1500
            assert sorted(invoice.total_amount_cents for invoice in february) == [0, 500]
            consumed = db.session.scalar(
                select(func.sum(InvoiceCredit.amount_cents)).where(
                    InvoiceCredit.invoice_id.in_([invoice.id for invoice in february])
                )
            )
            assert consumed == 1500
            balances = db.session.execute(
                select(CreditNote.balance_amount_cents, CreditNote.credit_status).where(
                    CreditNote.organization_id == organization_id
                )
            ).all()
            assert sorted(balances) == [(0, "consumed"), (0, "consumed")]
    finally:
        with app.app_context():
            db.session.execute(
                update(Subscription)
                .where(Subscription.organization_id == organization_id)
                .values(status="terminated", next_invoice_at=None)
            )
            db.session.commit()
