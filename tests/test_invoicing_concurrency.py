"""Two period closes at once (two jobs processes, or the job and the CLI) against the real
database: exactly one invoice per subscription and period, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from billing.models import Invoice, InvoiceSubscription, Subscription
from billing.services import invoicing
from extensions import db
from tests import factories

pytestmark = pytest.mark.live

SUBSCRIPTIONS = 12


def test_two_closes_at_once_bill_each_period_once(live_server):
    app = live_server.app
    with app.app_context():
        organization = factories.make_organization()
        plan = factories.make_plan(organization, charges=[])
        for _ in range(SUBSCRIPTIONS):
            factories.make_subscription(
                organization, plan=plan, subscription_at="2020-01-01T00:00:00Z"
            )
        organization_id = organization.id
    barrier = threading.Barrier(2)
    reports: list[invoicing.CloseReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                barrier.wait()
                reports.append(invoicing.close_periods(datetime(2020, 3, 1, 0, 1, tzinfo=UTC)))
            except BaseException as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    try:
        assert errors == []
        assert all(report.failed == [] for report in reports)
        with app.app_context():
            periods = db.session.execute(
                select(InvoiceSubscription.subscription_id, InvoiceSubscription.from_datetime)
                .join(Invoice, Invoice.id == InvoiceSubscription.invoice_id)
                .where(Invoice.organization_id == organization_id)
            ).all()
            assert len(periods) == SUBSCRIPTIONS * 2  # January and February
            assert len(set(periods)) == len(periods)
            numbers = db.session.scalar(
                select(func.count(func.distinct(Invoice.number))).where(
                    Invoice.organization_id == organization_id
                )
            )
            assert numbers == SUBSCRIPTIONS * 2
    finally:
        with app.app_context():
            # leave nothing due for the other tests sharing this database
            db.session.execute(
                update(Subscription)
                .where(Subscription.organization_id == organization_id)
                .values(status="terminated", next_invoice_at=None)
            )
            db.session.commit()
