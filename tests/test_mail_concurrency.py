"""Two jobs processes at once against the real database (SQLite and PostgreSQL): each
reminder step is queued once, and each message is handled once (leases, SKIP LOCKED)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from billing.models import Email
from billing.services import invoicing, mail
from billing.timeutil import set_clock
from extensions import db
from tests import factories

pytestmark = pytest.mark.live

SUBSCRIPTIONS = 3


def twice(app, work: Callable[[], object]) -> None:
    """Run `work` in two threads at once, each with its own session; re-raise their errors."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                barrier.wait()
                work()
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []


@pytest.fixture
def frozen() -> object:
    now = [datetime(2020, 3, 1, 0, 1, tzinfo=UTC)]
    set_clock(lambda: now[0])
    yield now
    set_clock(None)


def test_two_schedulers_queue_and_handle_each_message_once(live_server, frozen):
    app = live_server.app
    with app.app_context():
        organization = factories.make_organization()
        organization.invoice_emails = True
        organization.dunning_schedule = [3, 20]
        db.session.commit()
        plan = factories.make_plan(organization, charges=[])
        for _ in range(SUBSCRIPTIONS):
            factories.make_subscription(
                organization, plan=plan, subscription_at="2020-01-01T00:00:00Z"
            )
        invoicing.close_periods()
        db.session.commit()
        organization_id = organization.id

    frozen[0] = datetime(2020, 3, 10, 12, tzinfo=UTC)
    twice(app, mail.queue_due_reminders)
    twice(app, lambda: mail.deliver_due(limit=3) and mail.deliver_due(limit=100))

    with app.app_context():
        emails = db.session.scalars(
            select(Email).where(Email.organization_id == organization_id)
        ).all()
        reminders = sorted(e.dedupe_key or "" for e in emails if e.kind == "payment_reminder")
        invoices = [e for e in emails if e.kind == "invoice"]
        # January's invoice (due 1 February) reached day 20, February's (due 1 March) day 3
        assert len(invoices) == SUBSCRIPTIONS * 2
        assert len(reminders) == len(set(reminders)) == SUBSCRIPTIONS * 2
        assert {(e.status, e.attempts) for e in emails} == {("stored", 1)}
