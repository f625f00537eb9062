"""Two payments of one invoice at once never overpay it. PostgreSQL only: there the invoice's
row lock (FOR UPDATE) orders the two writers, and the second reads what the first left due;
SQLite has one writer at a time for the whole database."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.errors import ValidationFailed
from billing.models import Invoice, Organization, Payment
from billing.services import payments
from extensions import db
from tests.factories import TEST_ACTOR
from tests.test_payments import one_off_invoice

pytestmark = pytest.mark.live


def _race(app: Any, invoice_id: int, amounts: list[int]) -> tuple[list[int], list[BaseException]]:
    """Each amount paid by its own thread, all released together; (accepted, errors)."""
    barrier = threading.Barrier(len(amounts), timeout=30)
    accepted: list[int] = []
    errors: list[BaseException] = []

    def run(cents: int) -> None:
        with app.app_context():
            try:
                invoice = db.session.get_one(Invoice, invoice_id)
                assert invoice.total_due_amount_cents == 1000  # both read it unpaid
                barrier.wait()
                payments.create_manual_payment(
                    invoice, {"amount_cents": cents, "reference": f"r{cents}"}, TEST_ACTOR
                )
                db.session.commit()
                accepted.append(cents)
            except ValidationFailed as exc:
                db.session.rollback()
                assert exc.details == {"amount_cents": ["greater_than"]}
            except BaseException as exc:  # noqa: BLE001  (reported below)
                db.session.rollback()
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(cents,)) for cents in amounts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return accepted, errors


@pytest.mark.parametrize(
    ("amounts", "paid"),
    [
        ([700, 600], {700, 600}),  # only one fits
        ([400, 600], {1000}),  # both fit exactly
    ],
)
def test_two_payments_at_once_never_overpay(live_server, backend, amounts, paid):
    if backend != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    app = live_server.app
    with app.app_context():
        organization_id, _key = live_server.new_organization()
        organization = db.session.get_one(Organization, organization_id)
        invoice_id = one_off_invoice(organization, 1000).id

    accepted, errors = _race(app, invoice_id, amounts)

    assert errors == []
    with app.app_context():
        invoice = db.session.get_one(Invoice, invoice_id)
        recorded = db.session.scalar(
            select(func.sum(Payment.amount_cents)).where(Payment.invoice_id == invoice_id)
        )
        assert recorded == invoice.total_paid_amount_cents == sum(accepted) <= 1000
        assert sum(accepted) in paid
        assert invoice.total_due_amount_cents == 1000 - sum(accepted)
        assert (invoice.payment_status == "succeeded") == (sum(accepted) == 1000)
