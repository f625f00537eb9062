"""The subscription job with a frozen clock: pending starts, downgrades at the period end,
planned ends; reruns change nothing; two job runs at once move a subscription once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import Organization, OutboxEvent, Subscription
from billing.services import subscriptions as service
from extensions import db
from jobs.subscriptions import run_subscription_moves
from tests import factories

T0 = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def events(organization: Any, event_type: str) -> int:
    return (
        db.session.scalar(
            select(func.count(OutboxEvent.id)).where(
                OutboxEvent.organization_id == organization.id,
                OutboxEvent.event_type == event_type,
            )
        )
        or 0
    )


#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = T0


def test_a_pending_subscription_starts_at_its_start_date(clock, org):
    subscription = factories.make_subscription(org, subscription_at="2024-04-01T00:00:00Z")
    assert subscription.status == "pending"

    assert service.activate_pending_subscriptions(at("2024-03-31T23:59:59")) == []
    clock[0] = at("2024-04-01T00:00:30")
    assert run_subscription_moves() == 1
    db.session.refresh(subscription)

    assert subscription.status == "active"
    assert subscription.started_at == at("2024-04-01T00:00:00")
    assert events(org, "subscription.started") == 1
    assert subscription.customer.status.value == "active"
    assert run_subscription_moves() == 0
    assert events(org, "subscription.started") == 1


def test_a_downgrade_applies_at_the_end_of_the_period(clock, org):
    customer = factories.make_customer(org, currency="EUR", timezone="Europe/Paris")
    pro = factories.make_plan(org, charges=[], amount_cents=5000)
    basic = factories.make_plan(org, charges=[], amount_cents=1000)
    current = factories.make_subscription(org, customer, pro, external_id="s")
    service.create_subscription(
        org,
        {"external_customer_id": customer.external_id, "plan_code": basic.code, "external_id": "s"},
        factories.TEST_ACTOR,
    )
    db.session.commit()
    # The period ends at midnight, Paris time: 2024-03-31T22:00Z (summer time from the 31st).
    end = at("2024-03-31T22:00:00")

    assert service.apply_downgrades(at("2024-03-31T21:59:59")) == []
    [successor] = service.apply_downgrades(at("2024-03-31T22:05:00"))
    db.session.commit()
    db.session.refresh(current)

    assert (current.status, current.terminated_at) == ("terminated", end)
    assert (successor.status, successor.started_at) == ("active", end)
    assert successor.plan_id == basic.id and successor.previous_subscription_id == current.id
    assert service.apply_downgrades(at("2024-04-02T00:00:00")) == []
    assert events(org, "subscription.terminated") == 1


def test_a_subscription_ends_at_its_ending_at(clock, org):
    subscription = factories.make_subscription(org, ending_at="2024-05-10T00:00:00Z")

    assert service.terminate_ended_subscriptions(at("2024-05-09T23:59:59")) == []
    clock[0] = at("2024-05-10T00:01:00")
    assert run_subscription_moves() == 1
    db.session.refresh(subscription)

    assert (subscription.status, subscription.terminated_at) == (
        "terminated",
        at("2024-05-10T00:00:00"),
    )
    assert events(org, "subscription.terminated") == 1


def test_next_billing_date_is_the_local_end_of_the_period(clock, org):
    customer = factories.make_customer(org, currency="EUR", timezone="America/New_York")
    subscription = factories.make_subscription(
        org, customer, billing_time="anniversary", subscription_at="2024-01-31T15:00:00Z"
    )

    assert service.next_billing_date(subscription).isoformat() == "2024-03-31"


# ---------------------------------------------------------------------------------------------
# Two jobs processes at once (committed data, a thread each, against the real database)


@pytest.mark.live
def test_two_job_runs_at_once_start_a_subscription_once(live_server):
    app = live_server.app
    with app.app_context():
        organization = factories.make_organization()
        subscription = factories.make_subscription(
            organization, subscription_at="2099-01-01T00:00:00Z"
        )
        subscription_id, organization_id = subscription.id, organization.id
    barrier = threading.Barrier(2)
    results: list[int] = []

    def run() -> None:
        with app.app_context():
            barrier.wait()
            started = service.activate_pending_subscriptions(at("2099-01-01T00:00:01"))
            results.append(len([s for s in started if s.id == subscription_id]))
            db.session.commit()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(results) == [0, 1]
    with app.app_context():
        organization = db.session.get_one(Organization, organization_id)
        assert db.session.get_one(Subscription, subscription_id).status == "active"
        assert events(organization, "subscription.started") == 1
