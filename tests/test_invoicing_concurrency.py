"""Two period closes at once (two jobs processes, or the job and the CLI) against the real
database: exactly one invoice per subscription and period, on SQLite and PostgreSQL; and two
`billing close-periods` processes at once on PostgreSQL."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from billing.models import Invoice, InvoiceSubscription, Subscription
from billing.services import invoicing
from extensions import db
from tests import factories
from tests.conftest import TEST_DATABASE_URL
from tests.faults._support import (
    close_periods,
    rows,
    scalar,
    seed_period_close,
    throwaway_postgresql,
)

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


#: subscriptions of the two-process close: several of PostgreSQL's close batches (500)
PROCESS_SUBSCRIPTIONS = 1500


def test_two_close_periods_processes_at_once_bill_each_period_once(backend):
    """Two operators (or an operator and a cron) run `flask billing close-periods --at` at the
    same moment: two processes, each with its own connections, SKIP LOCKED between them, on a
    database of their own seeded like the period-close benchmark's."""
    if backend != "postgresql":
        pytest.skip("two writing processes at once: PostgreSQL's row locks (SQLite has one writer)")
    assert TEST_DATABASE_URL
    with throwaway_postgresql(TEST_DATABASE_URL) as url:
        _, at = seed_period_close(url, PROCESS_SUBSCRIPTIONS)
        processes = [close_periods(url, at) for _ in range(2)]
        outputs = [process.communicate(timeout=300)[0].decode() for process in processes]

        assert [process.returncode for process in processes] == [0, 0], outputs
        created = [
            int(re.search(r"(\d+) invoice\(s\) created", output)[1])  # type: ignore[index]
            for output in outputs
        ]
        assert sum(created) == PROCESS_SUBSCRIPTIONS, outputs  # each made by one of them
        # they ran at once: each claimed batches the other skipped (startups take about the
        # same time, the close several seconds)
        assert min(created) > 0, outputs
        periods = rows(url, "SELECT subscription_id, from_datetime FROM invoice_subscriptions")
        assert len(periods) == len(set(periods)) == PROCESS_SUBSCRIPTIONS
        assert scalar(url, "SELECT count(DISTINCT number) FROM invoices") == PROCESS_SUBSCRIPTIONS
        announced = "SELECT count(*) FROM outbox_events WHERE event_type = 'invoice.created'"
        assert scalar(url, announced) == PROCESS_SUBSCRIPTIONS
