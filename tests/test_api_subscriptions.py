"""/api/v1/subscriptions: creation (and customer creation), plan changes, lists, show, update,
terminate; Lago's error shapes; period bounds in the customer's zone; outbox and audit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from billing.models import ActivityLog, Customer, OutboxEvent, Plan, Subscription
from billing.services.customers import CustomerFilters, count_customers
from billing.timeutil import set_clock
from extensions import db
from tests import factories

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)

SUBSCRIPTION_KEYS = {
    "lago_id", "external_id", "lago_customer_id", "external_customer_id", "name", "plan_code",
    "plan_amount_cents", "plan_amount_currency", "status", "billing_time", "subscription_at",
    "started_at", "trial_ended_at", "ending_at", "terminated_at", "canceled_at", "created_at",
    "previous_plan_code", "next_plan_code", "downgrade_plan_date",
    "current_billing_period_started_at", "current_billing_period_ending_at",
    "on_termination_credit_note", "on_termination_invoice", "progressive_billing_disabled",
    "consolidate_invoice", "purchase_order_number", "cancellation_reason", "activated_at",
    "payment_method", "activation_rules",
}  # fmt: skip


@pytest.fixture(autouse=True)
def frozen_clock(db_session: Any) -> None:
    set_clock(lambda: NOW)


def make_plan(organization: Any, code: str, **attributes: Any) -> Plan:
    return factories.make_plan(organization, charges=[], code=code, **attributes)


def post(api_client: Any, **fields: Any) -> Any:
    return api_client.post("/api/v1/subscriptions", json={"subscription": fields})


def create(api_client: Any, **fields: Any) -> dict[str, Any]:
    response = post(api_client, **fields)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["subscription"]


def validation(details: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }


def outbox_types(organization: Any) -> list[str]:
    return list(
        db.session.scalars(
            select(OutboxEvent.event_type)
            .where(OutboxEvent.organization_id == organization.id)
            .where(OutboxEvent.object_type == "subscription")
            .order_by(OutboxEvent.id)
        )
    )


# ---------------------------------------------------------------------------------------------
# Create


def test_create_for_an_unknown_customer_creates_it_in_the_plan_currency(api_client, org):
    make_plan(org, "basic", amount_currency="USD", trial_period=14)

    body = create(api_client, external_customer_id="new-cus", plan_code="basic", external_id="s1")

    assert set(body) >= SUBSCRIPTION_KEYS | {"plan"}
    assert body["status"] == "active"
    assert body["started_at"] == body["subscription_at"] == "2024-03-15T12:00:00Z"
    assert body["billing_time"] == "calendar"
    assert body["plan_amount_currency"] == "USD"
    assert body["plan"]["code"] == "basic"
    assert body["trial_ended_at"] == "2024-03-29T12:00:00Z"
    assert body["previous_plan_code"] is None and body["next_plan_code"] is None
    customer = api_client.get("/api/v1/customers/new-cus").get_json()["customer"]
    assert customer["currency"] == "USD"
    assert customer["status"] == "active"
    assert outbox_types(org) == ["subscription.started"]


def test_a_past_start_is_active_from_that_date_and_a_future_one_is_pending(api_client, org):
    make_plan(org, "basic")
    factories.make_customer(org, external_id="c1", currency="EUR")

    past = create(
        api_client,
        external_customer_id="c1",
        plan_code="basic",
        external_id="past",
        subscription_at="2024-02-01T08:00:00Z",
    )
    future = create(
        api_client,
        external_customer_id="c1",
        plan_code="basic",
        external_id="future",
        subscription_at="2024-04-01T00:00:00Z",
    )

    assert (past["status"], past["started_at"]) == ("active", "2024-02-01T08:00:00Z")
    assert (future["status"], future["started_at"]) == ("pending", None)
    assert future["current_billing_period_started_at"] == "2024-04-01T00:00:00Z"


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        ({"external_id": "s"}, {"external_customer_id": ["value_is_mandatory"]}),
        ({"external_customer_id": "c1"}, {"external_id": ["value_is_mandatory"]}),
        (
            {"external_customer_id": "c1", "external_id": "  "},
            {"external_id": ["value_is_mandatory"]},
        ),
        (
            {"external_customer_id": "c1", "external_id": "s", "billing_time": "weekly"},
            {"billing_time": ["value_is_invalid"]},
        ),
        (
            {"external_customer_id": "c1", "external_id": "s", "subscription_at": "yesterday"},
            {"subscription_at": ["invalid_date"]},
        ),
        (
            {"external_customer_id": "c1", "external_id": "s", "ending_at": "2024-03-01T00:00:00Z"},
            {"ending_at": ["invalid_date"]},
        ),
        (
            {
                "external_customer_id": "c1",
                "external_id": "s",
                "subscription_at": "2024-05-01T00:00:00Z",
                "ending_at": "2024-04-01T00:00:00Z",
            },
            {"ending_at": ["invalid_date"]},
        ),
        (
            {"external_customer_id": "c1", "external_id": "s", "name": "x" * 256},
            {"name": ["value_is_too_long"]},
        ),
        # more than ten years back: ending it would bill every period since (the fuzzer's
        # year-1 start made a customer's deletion take minutes)
        (
            {"external_customer_id": "c1", "external_id": "s", "subscription_at": "0001-01-01"},
            {"subscription_at": ["value_is_out_of_range"]},
        ),
        # year 1 and 9999 moved to UTC overflowed: a 500
        (
            {
                "external_customer_id": "c1",
                "external_id": "s",
                "subscription_at": "0001-01-01T00:00:00+05:00",
            },
            {"subscription_at": ["invalid_date"]},
        ),
        (
            {
                "external_customer_id": "c1",
                "external_id": "s",
                "ending_at": "9999-12-31T23:00:00-05:00",
            },
            {"ending_at": ["invalid_date"]},
        ),
    ],
)
def test_bad_input_gets_lago_validation_errors_and_writes_nothing(api_client, org, fields, details):
    make_plan(org, "basic")

    response = post(api_client, plan_code="basic", **fields)

    assert response.status_code == 422
    assert response.get_json() == validation(details)
    assert (
        db.session.scalar(select(Subscription.id).where(Subscription.organization_id == org.id))
        is None
    )


def test_missing_root_key_is_400(api_client):
    response = api_client.post("/api/v1/subscriptions", json={"plan_code": "x"})

    assert response.status_code == 400
    assert response.get_json()["status"] == 400


def test_unknown_plan_is_404_and_creates_no_customer(api_client, org):
    response = post(api_client, external_customer_id="ghost", plan_code="nope", external_id="s")

    assert response.status_code == 404
    assert response.get_json() == {"status": 404, "error": "Not Found", "code": "plan_not_found"}
    assert api_client.get("/api/v1/customers/ghost").status_code == 404


def test_another_organizations_plan_is_not_found(api_client, org):
    make_plan(factories.make_organization(), "theirs")

    response = post(api_client, external_customer_id="c", plan_code="theirs", external_id="s")

    assert response.status_code == 404


def test_customer_currency_must_match_the_plan(api_client, org):
    make_plan(org, "basic", amount_currency="USD")
    factories.make_customer(org, external_id="eur-cus", currency="EUR")

    response = post(api_client, external_customer_id="eur-cus", plan_code="basic", external_id="s")

    assert response.status_code == 422
    assert response.get_json() == validation({"currency": ["currencies_does_not_match"]})


def test_a_customer_without_currency_takes_the_plan_currency(api_client, org):
    make_plan(org, "basic", amount_currency="GBP")
    factories.make_customer(org, external_id="bare")

    create(api_client, external_customer_id="bare", plan_code="basic", external_id="s")

    assert api_client.get("/api/v1/customers/bare").get_json()["customer"]["currency"] == "GBP"


def test_an_external_id_active_for_another_customer_is_taken(api_client, org):
    make_plan(org, "basic")
    create(api_client, external_customer_id="a", plan_code="basic", external_id="shared")

    response = post(api_client, external_customer_id="b", plan_code="basic", external_id="shared")

    assert response.status_code == 422
    assert response.get_json() == validation({"external_id": ["value_already_exist"]})


def test_posting_the_same_subscription_again_answers_with_it(api_client, org):
    """As Lago: a retried create is safe, it neither fails nor starts a second subscription."""
    make_plan(org, "basic")
    first = create(api_client, external_customer_id="a", plan_code="basic", external_id="s1")

    again = post(api_client, external_customer_id="a", plan_code="basic", external_id="s1")

    assert again.status_code == 200
    assert again.get_json()["subscription"]["lago_id"] == first["lago_id"]
    listed = api_client.get("/api/v1/subscriptions?external_customer_id=a").get_json()
    assert len(listed["subscriptions"]) == 1


# ---------------------------------------------------------------------------------------------
# Plan changes


def test_upgrade_replaces_the_subscription_now(api_client, org):
    make_plan(org, "monthly", amount_cents=1000)
    make_plan(org, "yearly", interval="yearly", amount_cents=12000)  # same per year: upgrade
    first = create(
        api_client,
        external_customer_id="c",
        plan_code="monthly",
        external_id="s",
        subscription_at="2024-03-01T00:00:00Z",
    )

    upgraded = create(api_client, external_customer_id="c", plan_code="yearly", external_id="s")

    assert upgraded["lago_id"] != first["lago_id"]
    assert upgraded["status"] == "active"
    assert upgraded["started_at"] == "2024-03-15T12:00:00Z"
    assert upgraded["subscription_at"] == "2024-03-01T00:00:00Z"
    assert upgraded["previous_plan_code"] == "monthly"
    old = api_client.get("/api/v1/subscriptions/s?status=terminated").get_json()["subscription"]
    assert (old["lago_id"], old["terminated_at"]) == (first["lago_id"], "2024-03-15T12:00:00Z")
    assert outbox_types(org) == [
        "subscription.started",
        "subscription.terminated",
        "subscription.started",
    ]


def test_downgrade_waits_for_the_end_of_the_period(api_client, org):
    make_plan(org, "pro", amount_cents=5000)
    make_plan(org, "basic", amount_cents=1000)
    create(api_client, external_customer_id="c", plan_code="pro", external_id="s")

    body = create(api_client, external_customer_id="c", plan_code="basic", external_id="s")

    assert body["plan_code"] == "pro"
    assert body["status"] == "active"
    assert body["next_plan_code"] == "basic"
    assert body["downgrade_plan_date"] == "2024-04-01"
    pending = api_client.get("/api/v1/subscriptions/s?status=pending").get_json()["subscription"]
    assert pending["plan_code"] == "basic"
    assert pending["previous_plan_code"] == "pro"
    assert outbox_types(org) == ["subscription.started", "subscription.updated"]


def test_a_second_downgrade_replaces_the_first(api_client, org):
    for code, cents in (("pro", 5000), ("mid", 3000), ("basic", 1000)):
        make_plan(org, code, amount_cents=cents)
    create(api_client, external_customer_id="c", plan_code="pro", external_id="s")
    create(api_client, external_customer_id="c", plan_code="mid", external_id="s")

    body = create(api_client, external_customer_id="c", plan_code="basic", external_id="s")

    assert body["next_plan_code"] == "basic"
    canceled = api_client.get("/api/v1/subscriptions/s?status=canceled").get_json()
    assert canceled["subscription"]["plan_code"] == "mid"


def test_a_pending_subscription_takes_the_new_plan_in_place(api_client, org):
    make_plan(org, "pro", amount_cents=5000)
    make_plan(org, "basic", amount_cents=1000)
    first = create(
        api_client,
        external_customer_id="c",
        plan_code="pro",
        external_id="s",
        subscription_at="2024-05-01T00:00:00Z",
    )

    body = create(api_client, external_customer_id="c", plan_code="basic", external_id="s")

    assert (body["lago_id"], body["status"], body["plan_code"]) == (
        first["lago_id"],
        "pending",
        "basic",
    )


# ---------------------------------------------------------------------------------------------
# Read, update, terminate


def test_list_defaults_to_active_and_filters(api_client, org):
    make_plan(org, "basic")
    make_plan(org, "other")
    create(api_client, external_customer_id="a", plan_code="basic", external_id="s1")
    create(api_client, external_customer_id="b", plan_code="other", external_id="s2")
    create(
        api_client,
        external_customer_id="a",
        plan_code="basic",
        external_id="s3",
        subscription_at="2024-06-01T00:00:00Z",
    )

    def ids(query: str) -> list[str]:
        body = api_client.get(f"/api/v1/subscriptions{query}").get_json()
        return sorted(s["external_id"] for s in body["subscriptions"])

    assert ids("") == ["s1", "s2"]
    assert ids("?external_customer_id=a") == ["s1"]
    assert ids("?plan_code=other") == ["s2"]
    assert ids("?status[]=pending") == ["s3"]
    assert ids("?status[]=active&status[]=pending&external_customer_id=a") == ["s1", "s3"]
    assert ids("?external_customer_id=unknown") == []
    page = api_client.get("/api/v1/subscriptions?per_page=1&page=2").get_json()
    assert page["meta"] == {
        "current_page": 2,
        "next_page": None,
        "prev_page": 1,
        "total_pages": 2,
        "total_count": 2,
    }


def test_show_unknown_or_other_organizations_is_404(api_client, org):
    other = factories.make_organization()
    factories.make_subscription(other, external_id="theirs")

    for url in ("/api/v1/subscriptions/nope", "/api/v1/subscriptions/theirs"):
        response = api_client.get(url)
        assert response.status_code == 404
        assert response.get_json() == {
            "status": 404,
            "error": "Not Found",
            "code": "subscription_not_found",
        }
    assert api_client.delete("/api/v1/subscriptions/theirs").status_code == 404
    assert (
        api_client.put("/api/v1/subscriptions/theirs", json={"subscription": {}}).status_code == 404
    )


def test_update_name_and_ending_at(api_client, org):
    make_plan(org, "basic")
    create(api_client, external_customer_id="c", plan_code="basic", external_id="s")

    response = api_client.put(
        "/api/v1/subscriptions/s",
        json={"subscription": {"name": "Renamed", "ending_at": "2024-12-31T00:00:00Z"}},
    )

    body = response.get_json()["subscription"]
    assert (body["name"], body["ending_at"]) == ("Renamed", "2024-12-31T00:00:00Z")
    assert outbox_types(org)[-1] == "subscription.updated"
    bad = api_client.put(
        "/api/v1/subscriptions/s", json={"subscription": {"ending_at": "2020-01-01"}}
    )
    assert bad.get_json() == validation({"ending_at": ["invalid_date"]})


def test_update_the_start_of_a_pending_subscription(api_client, org):
    make_plan(org, "basic")
    create(
        api_client,
        external_customer_id="c",
        plan_code="basic",
        external_id="s",
        subscription_at="2024-06-01T00:00:00Z",
    )

    later = api_client.put(
        "/api/v1/subscriptions/s?status=pending",
        json={"subscription": {"subscription_at": "2024-07-01T00:00:00Z"}},
    ).get_json()["subscription"]
    started = api_client.put(
        "/api/v1/subscriptions/s?status=pending",
        json={"subscription": {"subscription_at": "2024-03-10T00:00:00Z"}},
    ).get_json()["subscription"]

    assert (later["status"], later["subscription_at"]) == ("pending", "2024-07-01T00:00:00Z")
    assert (started["status"], started["started_at"]) == ("active", "2024-03-10T00:00:00Z")


def test_delete_terminates_and_delete_pending_cancels(api_client, org):
    make_plan(org, "basic")
    create(api_client, external_customer_id="c", plan_code="basic", external_id="s")
    create(
        api_client,
        external_customer_id="c",
        plan_code="basic",
        external_id="later",
        subscription_at="2024-06-01T00:00:00Z",
    )

    terminated = api_client.delete("/api/v1/subscriptions/s").get_json()["subscription"]
    canceled = api_client.delete("/api/v1/subscriptions/later?status=pending").get_json()

    assert (terminated["status"], terminated["terminated_at"]) == (
        "terminated",
        "2024-03-15T12:00:00Z",
    )
    assert canceled["subscription"]["status"] == "canceled"
    assert canceled["subscription"]["canceled_at"] == "2024-03-15T12:00:00Z"
    assert api_client.delete("/api/v1/subscriptions/s").status_code == 404
    customer = api_client.get("/api/v1/customers/c").get_json()["customer"]
    assert customer["status"] == "inactive"
    assert outbox_types(org)[-2:] == ["subscription.terminated", "subscription.terminated"]


def test_delete_with_bad_termination_options_is_422(api_client, org):
    make_plan(org, "basic")
    create(api_client, external_customer_id="c", plan_code="basic", external_id="s")

    response = api_client.delete("/api/v1/subscriptions/s?on_termination_invoice=maybe")

    assert response.get_json() == validation({"on_termination_invoice": ["invalid_value"]})


def test_terminating_cancels_the_pending_downgrade(api_client, org):
    make_plan(org, "pro", amount_cents=5000)
    make_plan(org, "basic", amount_cents=1000)
    create(api_client, external_customer_id="c", plan_code="pro", external_id="s")
    create(api_client, external_customer_id="c", plan_code="basic", external_id="s")

    api_client.delete("/api/v1/subscriptions/s")

    assert api_client.get("/api/v1/subscriptions/s?status=pending").status_code == 404
    assert api_client.get("/api/v1/subscriptions/s?status=canceled").status_code == 200


def test_subscription_changes_are_on_the_customer_timeline(api_client, org):
    make_plan(org, "basic")
    create(api_client, external_customer_id="c", plan_code="basic", external_id="s")
    api_client.delete("/api/v1/subscriptions/s")

    customer = db.session.scalar(
        select(Customer).where(Customer.external_id == "c", Customer.organization_id == org.id)
    )
    entries = db.session.scalars(
        select(ActivityLog)
        .where(ActivityLog.customer_id == customer.id, ActivityLog.resource_type == "subscription")
        .order_by(ActivityLog.id)
    ).all()
    assert [e.activity_type for e in entries] == [
        "subscription.created",
        "subscription.started",
        "subscription.terminated",
    ]
    assert {e.actor_type for e in entries} == {"api_key"}


def test_customer_status_filter_follows_active_subscriptions(api_client, org):
    make_plan(org, "basic")
    factories.make_customer(org, external_id="idle")
    create(api_client, external_customer_id="busy", plan_code="basic", external_id="s")

    assert count_customers(org, CustomerFilters(status="active")) == 1
    assert count_customers(org, CustomerFilters(status="inactive")) == 1


# ---------------------------------------------------------------------------------------------
# Period bounds in the customer's timezone


@pytest.mark.parametrize(
    ("timezone", "billing_time", "subscription_at", "started", "ending"),
    [
        # Calendar month in Paris: March 10 local midnight (CET) to March 31 (CEST from the 31st).
        (
            "Europe/Paris",
            "calendar",
            "2024-03-10T10:00:00Z",
            "2024-03-09T23:00:00Z",
            "2024-03-31T21:59:59Z",
        ),
        # Anniversary on the 31st in New York: Feb 29 (clamped) to Mar 31, across the DST change.
        (
            "America/New_York",
            "anniversary",
            "2024-01-31T15:00:00Z",
            "2024-02-29T05:00:00Z",
            "2024-03-31T03:59:59Z",
        ),
        ("UTC", "calendar", "2024-02-20T00:00:00Z", "2024-03-01T00:00:00Z", "2024-03-31T23:59:59Z"),
    ],
)
def test_current_period_bounds_in_the_customer_zone(
    api_client, org, timezone, billing_time, subscription_at, started, ending
):
    make_plan(org, "basic")
    factories.make_customer(org, external_id="tz", currency="EUR", timezone=timezone)

    body = create(
        api_client,
        external_customer_id="tz",
        plan_code="basic",
        external_id="s",
        billing_time=billing_time,
        subscription_at=subscription_at,
    )

    assert body["current_billing_period_started_at"] == started
    assert body["current_billing_period_ending_at"] == ending
