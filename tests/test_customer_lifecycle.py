"""What happens to a customer's billing when the customer changes: deletion ends its
subscriptions; a new time zone moves its usage to the right local days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from billing.models import InvoiceSubscription, OutboxEvent, Subscription
from billing.services.invoicing import close_periods
from billing.services.settings import update_organization_settings
from billing.timeutil import set_clock
from extensions import db
from tests import factories

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    set_clock(lambda: NOW)
    yield
    set_clock(None)


@pytest.fixture
def plan(org):
    metric = factories.make_billable_metric(org, code="api_calls")
    return factories.make_plan(
        org, code="basic", charges=[{"billable_metric_id": str(metric.lago_id),
                                     "charge_model": "standard", "properties": {"amount": "1"}}],
    )  # fmt: skip


def subscribe(api_client, customer: str, external_id: str, start: str) -> dict:
    response = api_client.post("/api/v1/subscriptions", json={"subscription": {
        "external_customer_id": customer, "plan_code": "basic", "external_id": external_id,
        "subscription_at": start,
    }})  # fmt: skip
    assert response.status_code == 200, response.get_json()
    return response.get_json()["subscription"]


def test_deleting_a_customer_terminates_its_subscriptions_and_cancels_future_ones(
    api_client, org, plan
):
    subscribe(api_client, "acme", "acme-now", "2026-05-01T00:00:00Z")
    subscribe(api_client, "acme", "acme-later", "2026-07-01T00:00:00Z")

    response = api_client.delete("/api/v1/customers/acme")

    assert response.status_code == 200
    statuses = dict(
        db.session.execute(
            select(Subscription.external_id, Subscription.status).where(
                Subscription.organization_id == org.id
            )
        ).all()
    )
    assert statuses == {"acme-now": "terminated", "acme-later": "canceled"}
    emitted = db.session.scalars(
        select(OutboxEvent.event_type)
        .where(OutboxEvent.organization_id == org.id)
        .order_by(OutboxEvent.id)
    ).all()
    assert [event for event in emitted if not event.startswith("invoice.")][-3:] == [
        "subscription.terminated",
        "subscription.terminated",  # Lago announces a cancellation as a termination too
        "customer.deleted",
    ]
    assert "invoice.created" in emitted  # the termination invoice
    # The external id is free again, for customers and subscriptions alike.
    again = subscribe(api_client, "acme", "acme-now", "2026-06-01T00:00:00Z")
    assert again["status"] == "active"


def usage_units(api_client, customer: str, subscription: str) -> str:
    response = api_client.get(
        f"/api/v1/customers/{customer}/current_usage?external_subscription_id={subscription}"
    )
    return response.get_json()["customer_usage"]["charges_usage"][0]["units"]


def send_event_at_utc_midnight_boundary(api_client, subscription: str) -> None:
    # 31 May 23:30 UTC is 1 June 01:30 in Paris: May in UTC, June in Paris.
    response = api_client.post("/api/v1/events", json={"event": {
        "transaction_id": "boundary", "external_subscription_id": subscription,
        "code": "api_calls", "timestamp": datetime(2026, 5, 31, 23, 30, tzinfo=UTC).timestamp(),
        "properties": {"value": 1},
    }})  # fmt: skip
    assert response.status_code == 200


def test_a_customer_time_zone_change_moves_its_usage_to_its_new_local_days(api_client, org, plan):
    factories.make_customer(org, external_id="acme", currency="EUR", timezone="UTC")
    subscribe(api_client, "acme", "acme-sub", "2026-05-01T00:00:00Z")
    send_event_at_utc_midnight_boundary(api_client, "acme-sub")
    assert usage_units(api_client, "acme", "acme-sub") == "0.0"  # counted in May

    response = api_client.post(
        "/api/v1/customers", json={"customer": {"external_id": "acme", "timezone": "Europe/Paris"}}
    )

    assert response.status_code == 200
    assert usage_units(api_client, "acme", "acme-sub") == "1.0"  # 1 June in Paris


def test_an_organization_time_zone_change_moves_the_usage_of_customers_following_it(
    api_client, org, plan
):
    factories.make_customer(org, external_id="follows", currency="EUR")
    factories.make_customer(org, external_id="own-zone", currency="EUR", timezone="UTC")
    for customer in ("follows", "own-zone"):
        subscribe(api_client, customer, f"{customer}-sub", "2026-05-01T00:00:00Z")
        send_event_at_utc_midnight_boundary(api_client, f"{customer}-sub")

    update_organization_settings(org, {"timezone": "Europe/Paris"}, factories.TEST_ACTOR)
    db.session.commit()

    assert usage_units(api_client, "follows", "follows-sub") == "1.0"
    assert usage_units(api_client, "own-zone", "own-zone-sub") == "0.0"


def test_a_time_zone_change_mid_period_never_skips_the_period_close(api_client, org, plan):
    """UTC → Paris moves the June close from 1 July 00:00 UTC to 30 June 22:00 UTC; the close
    due at the new boundary bills June (the stale UTC boundary would have skipped it)."""
    factories.make_customer(org, external_id="acme", currency="EUR", timezone="UTC")
    subscribe(api_client, "acme", "acme-sub", "2026-05-01T00:00:00Z")
    set_clock(lambda: datetime(2026, 6, 1, 0, 30, tzinfo=UTC))
    close_periods()  # May, in UTC

    set_clock(lambda: NOW)  # 10 June
    api_client.post(
        "/api/v1/customers", json={"customer": {"external_id": "acme", "timezone": "Europe/Paris"}}
    )
    set_clock(lambda: datetime(2026, 6, 30, 22, 30, tzinfo=UTC))  # 1 July 00:30 in Paris
    close_periods()

    periods = db.session.execute(
        select(InvoiceSubscription.charges_from_datetime, InvoiceSubscription.charges_to_datetime)
        .join(Subscription, Subscription.id == InvoiceSubscription.subscription_id)
        .where(Subscription.external_id == "acme-sub", Subscription.organization_id == org.id)
        .order_by(InvoiceSubscription.charges_to_datetime)
    ).all()
    assert [(start.isoformat(), end.isoformat()) for start, end in periods] == [
        ("2026-05-01T00:00:00+00:00", "2026-06-01T00:00:00+00:00"),
        ("2026-05-31T22:00:00+00:00", "2026-06-30T22:00:00+00:00"),
    ]


def test_deleting_a_customer_finalizes_its_drafts(api_client, agent_client, org, plan):
    customer = factories.make_customer(
        org, external_id="acme", currency="EUR", billing_configuration={"invoice_grace_period": 5}
    )
    subscribe(api_client, "acme", "acme-sub", "2026-05-01T00:00:00Z")
    set_clock(lambda: datetime(2026, 6, 1, 0, 30, tzinfo=UTC))
    close_periods()
    assert {i.status for i in factories.invoices_of(org)} == {"draft"}
    preview = agent_client.get(f"/customers/{customer.lago_id}/delete").text
    assert "1 draft invoice(s) are finalized now." in preview
    assert "Subscription acme-sub to" in preview and "is terminated and its last period" in preview

    api_client.delete("/api/v1/customers/acme")

    invoices = factories.invoices_of(org)
    assert {i.status for i in invoices} == {"finalized"}
    assert all(i.number and not i.number.endswith("-DRAFT") for i in invoices)
