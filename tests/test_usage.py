"""Current usage from buckets and events: each aggregation, filters, periods in the customer's
timezone, recurring metrics, rebuild, and GET /customers/<id>/current_usage."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from billing.models import Event, UsageBucket
from billing.periods import Period
from billing.services import usage as usage_service
from billing.timeutil import set_clock
from extensions import db
from tests import factories
from tests.usage_helpers import add_charge, event, make_metric, make_plan, make_subscription

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
# March in New York: 2024-03-01T05:00Z to 2024-04-01T04:00Z (DST starts on March 10)
MARCH_START = datetime(2024, 3, 1, 5, 0, tzinfo=UTC)
LAST_FEB_MINUTE = datetime(2024, 3, 1, 4, 59, tzinfo=UTC)


@pytest.fixture
def metered(org: Any, db_session: Any) -> Any:
    set_clock(lambda: NOW)
    customer = factories.make_customer(org, external_id="acme", timezone="America/New_York")
    plan = make_plan(org)
    subscription = make_subscription(
        org, customer, plan, datetime(2024, 1, 10, 15, tzinfo=UTC), external_id="sub"
    )
    return customer, plan, subscription


def send(api_client: Any, code: str, at: datetime, **properties: Any) -> None:
    response = api_client.post(
        "/api/v1/events",
        json={"event": event("sub", code, timestamp=at.timestamp(), properties=properties)},
    )
    assert response.status_code == 200, response.json


def usage(api_client: Any, customer: str = "acme", subscription: str = "sub") -> Any:
    return api_client.get(
        f"/api/v1/customers/{customer}/current_usage?external_subscription_id={subscription}"
    )


def charge_usages(api_client: Any) -> dict[str, Any]:
    body = usage(api_client).json["customer_usage"]
    return {item["billable_metric"]["code"]: item for item in body["charges_usage"]}


def test_current_usage_shape_period_and_amounts(api_client, org, metered):
    _customer, plan, _subscription = metered
    calls = make_metric(org, "count_agg", code="calls", name="API calls")
    charge = add_charge(plan, calls, "standard", {"amount": "0.25"})
    send(api_client, "calls", LAST_FEB_MINUTE)  # February in New York
    send(api_client, "calls", MARCH_START)
    send(api_client, "calls", datetime(2024, 3, 15, 11, tzinfo=UTC))

    response = usage(api_client)

    assert response.status_code == 200
    assert response.json == {
        "customer_usage": {
            "from_datetime": "2024-03-01T05:00:00Z",
            "to_datetime": "2024-04-01T03:59:59Z",
            "issuing_date": "2024-03-31",
            "lago_invoice_id": None,
            "currency": "EUR",
            "amount_cents": 50,
            "taxes_amount_cents": 0,
            "total_amount_cents": 50,
            "charges_usage": [
                {
                    "units": "2.0",
                    "total_aggregated_units": "2.0",
                    "events_count": 2,
                    "amount_cents": 50,
                    "amount_currency": "EUR",
                    "pricing_unit_details": None,
                    "charge": {
                        "lago_id": str(charge.lago_id),
                        "code": charge.code,
                        "charge_model": "standard",
                        "invoice_display_name": None,
                    },
                    "billable_metric": {
                        "lago_id": str(calls.lago_id),
                        "name": "API calls",
                        "code": "calls",
                        "aggregation_type": "count_agg",
                    },
                    "filters": [],
                    "grouped_usage": [],
                }
            ],
        }
    }


def test_each_bucket_aggregation(api_client, org, metered):
    _customer, plan, _subscription = metered
    for aggregation in ("sum_agg", "max_agg", "latest_agg"):
        metric = make_metric(org, aggregation, "gb", code=aggregation)
        add_charge(plan, metric, "standard", {"amount": "1"})
    values = [
        (datetime(2024, 3, 2, tzinfo=UTC), "4.5"),
        (datetime(2024, 3, 9, tzinfo=UTC), "10"),
        (datetime(2024, 3, 12, tzinfo=UTC), "2.25"),  # the latest
        (LAST_FEB_MINUTE, "100"),  # the previous period
    ]
    for code in ("sum_agg", "max_agg", "latest_agg"):
        for at, value in values:
            send(api_client, code, at, gb=value)

    usages = charge_usages(api_client)

    assert {
        code: (u["units"], u["events_count"], u["amount_cents"]) for code, u in usages.items()
    } == {
        "sum_agg": ("16.75", 3, 1675),
        "max_agg": ("10.0", 3, 1000),
        "latest_agg": ("2.25", 3, 225),
    }


def test_event_aggregations_unique_count_and_weighted_sum(api_client, org, metered):
    _customer, plan, _subscription = metered
    seats = make_metric(org, "unique_count_agg", "user", code="seats")
    add_charge(plan, seats, "standard", {"amount": "3"})
    gauge = make_metric(org, "weighted_sum_agg", "value", code="gauge")
    add_charge(plan, gauge, "standard", {"amount": "1"})
    for user in ("ann", "bob", "ann", "cid"):
        send(api_client, "seats", datetime(2024, 3, 5, tzinfo=UTC), user=user)
    send(api_client, "seats", datetime(2024, 3, 6, tzinfo=UTC), user="bob", operation_type="remove")
    # 10 units held for the second half of March (local): 31 days, the increment on day 16.5
    middle = MARCH_START + (datetime(2024, 4, 1, 4, tzinfo=UTC) - MARCH_START) / 2
    send(api_client, "gauge", middle, value=10)

    usages = charge_usages(api_client)

    assert (usages["seats"]["units"], usages["seats"]["events_count"]) == ("2.0", 5)
    assert usages["seats"]["amount_cents"] == 600
    assert usages["gauge"]["units"] == "5.0"
    assert usages["gauge"]["amount_cents"] == 500


def test_charge_filters_and_the_default_price(api_client, org, metered):
    _customer, plan, _subscription = metered
    metric = make_metric(
        org,
        "count_agg",
        code="requests",
        filters=[{"key": "region", "values": ["eu", "us"]}, {"key": "tier", "values": ["pro"]}],
    )
    add_charge(
        plan,
        metric,
        "standard",
        {"amount": "1"},
        filters=[
            {
                "values": {"region": ["eu"]},
                "properties": {"amount": "2"},
                "invoice_display_name": "EU",
            },
            {"values": {"region": ["eu"], "tier": ["pro"]}, "properties": {"amount": "5"}},
            {"values": {"region": ["us"]}, "properties": {"amount": "3"}},
        ],
    )
    at = datetime(2024, 3, 5, tzinfo=UTC)
    for properties in (
        {"region": "eu"}, {"region": "eu"}, {"region": "eu", "tier": "pro"}, {"region": "us"},
        {"region": "asia"}, {},
    ):  # fmt: skip
        send(api_client, "requests", at, **properties)

    requests = charge_usages(api_client)["requests"]

    assert (requests["units"], requests["events_count"], requests["amount_cents"]) == (
        "6.0",
        6,
        2 * 200 + 500 + 300 + 2 * 100,
    )
    assert [
        (f["values"], f["invoice_display_name"], f["units"], f["events_count"], f["amount_cents"])
        for f in requests["filters"]
    ] == [
        ({"region": ["eu"]}, "EU", "2.0", 2, 400),
        ({"region": ["eu"], "tier": ["pro"]}, None, "1.0", 1, 500),
        ({"region": ["us"]}, None, "1.0", 1, 300),
        ({}, None, "2.0", 2, 200),
    ]


def test_recurring_sum_carries_units_but_counts_this_periods_events(api_client, org, metered):
    _customer, plan, _subscription = metered
    metric = make_metric(org, "sum_agg", "seats", code="seats", recurring=True)
    add_charge(plan, metric, "standard", {"amount": "10"})
    send(api_client, "seats", datetime(2024, 1, 20, tzinfo=UTC), seats=5)
    send(api_client, "seats", LAST_FEB_MINUTE, seats=2)
    send(api_client, "seats", datetime(2024, 3, 3, tzinfo=UTC), seats=-1)

    seats = charge_usages(api_client)["seats"]

    assert (seats["units"], seats["events_count"], seats["amount_cents"]) == ("6.0", 1, 6000)


def test_graduated_package_and_rounding(api_client, org, metered):
    _customer, plan, _subscription = metered
    metric = make_metric(
        org, "sum_agg", "mb", code="transfer", rounding_function="ceil", rounding_precision=0
    )
    add_charge(
        plan,
        metric,
        "graduated",
        {
            "graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
                {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "2"},
            ]
        },
    )
    other = make_metric(org, "count_agg", code="messages")
    add_charge(plan, other, "package", {"amount": "5", "package_size": 10, "free_units": 0})
    send(api_client, "transfer", datetime(2024, 3, 4, tzinfo=UTC), mb="12.2")
    for _ in range(11):
        send(api_client, "messages", datetime(2024, 3, 4, tzinfo=UTC))

    usages = charge_usages(api_client)

    # ceil(12.2) = 13 units: 10 × 1 + 3 × 0.5 + 2 flat
    assert (usages["transfer"]["units"], usages["transfer"]["amount_cents"]) == ("13.0", 1350)
    assert usages["messages"]["amount_cents"] == 1000  # two started packages of 10


def test_percentage_with_free_events_reads_each_event(api_client, org, metered):
    _customer, plan, _subscription = metered
    metric = make_metric(org, "sum_agg", "amount", code="payments")
    add_charge(
        plan,
        metric,
        "percentage",
        {"rate": "10", "fixed_amount": "1", "free_units_per_events": 1},
    )
    for day, amount in ((3, 100), (4, 50), (5, 20)):
        send(api_client, "payments", datetime(2024, 3, day, tzinfo=UTC), amount=amount)

    payments = charge_usages(api_client)["payments"]

    # the first event is free; then 10 % of 70 + 2 fixed fees
    assert (payments["units"], payments["amount_cents"]) == ("170.0", 900)


def test_usage_without_events_lists_zero_charges(api_client, org, metered):
    _customer, plan, _subscription = metered
    add_charge(plan, make_metric(org, "count_agg", code="calls"))

    body = usage(api_client).json["customer_usage"]

    assert body["amount_cents"] == 0
    assert [(c["units"], c["events_count"]) for c in body["charges_usage"]] == [("0.0", 0)]


def test_unknown_customer_and_unusable_subscriptions(api_client, org, metered):
    customer, plan, _subscription = metered
    other = factories.make_customer(org, external_id="other")
    make_subscription(org, other, plan, NOW, external_id="others-sub")
    make_subscription(org, customer, plan, NOW, external_id="pending", status="pending")

    not_allowed = {"status": 405, "error": "Method Not Allowed", "code": "no_active_subscription"}
    assert usage(api_client, customer="ghost").json == {
        "status": 404,
        "error": "Not Found",
        "code": "customer_not_found",
    }
    for subscription in ("unknown", "others-sub", "pending", ""):
        response = usage(api_client, subscription=subscription)
        assert (response.status_code, response.json) == (405, not_allowed)


def test_rebuild_gives_the_same_buckets_and_usage(api_client, app, org, metered):
    _customer, plan, subscription = metered
    metric = make_metric(
        org, "sum_agg", "gb", code="storage", filters=[{"key": "region", "values": ["eu"]}]
    )
    add_charge(plan, metric, "standard", {"amount": "1"})
    latest = make_metric(org, "latest_agg", "gb", code="level")
    add_charge(plan, latest, "standard", {"amount": "1"})
    for day in range(1, 20):
        at = datetime(2024, 3, day, day, tzinfo=UTC)
        send(api_client, "storage", at, gb=day, region="eu" if day % 2 else "us")
        send(api_client, "level", at, gb=day * 3)
    before_usage = usage(api_client).json
    before = bucket_rows(subscription.id)

    result = app.test_cli_runner().invoke(args=["usage", "rebuild", "--subscription", "sub"])

    assert result.exit_code == 0, result.output
    assert "sub: 38 events in" in result.output
    assert bucket_rows(subscription.id) == before
    assert usage(api_client).json == before_usage
    [rebuilt] = usage_service.rebuild_usage([subscription.id])
    assert (rebuilt.events_count, rebuilt.buckets_count) == (38, len(before))


def bucket_rows(subscription_id: int) -> list[tuple[Any, ...]]:
    db.session.expire_all()
    order = (UsageBucket.billable_metric_id, UsageBucket.day, UsageBucket.dimensions)
    columns = (
        "billable_metric_id", "day", "dimensions", "events_count", "sum_value", "max_value",
        "latest_value", "latest_timestamp",
    )  # fmt: skip
    return [
        tuple(getattr(bucket, name) for name in columns)
        for bucket in db.session.scalars(
            select(UsageBucket)
            .where(UsageBucket.subscription_id == subscription_id)
            .order_by(*order)
        )
    ]


def test_daily_usage_and_event_lists(api_client, org, metered):
    customer, plan, subscription = metered
    metric = make_metric(org, "sum_agg", "gb", code="storage")
    add_charge(plan, metric)
    send(api_client, "storage", datetime(2024, 3, 2, 3, tzinfo=UTC), gb=1)  # March 1st in New York
    send(api_client, "storage", datetime(2024, 3, 2, 12, tzinfo=UTC), gb=2)
    send(api_client, "storage", datetime(2024, 3, 2, 13, tzinfo=UTC), gb="x")
    api_client.post("/api/v1/events", json={"event": event("nope", "storage")})

    series = usage_service.daily_usage(
        subscription, metric, Period(MARCH_START, datetime(2024, 3, 4, 5, tzinfo=UTC))
    )

    assert series == [
        (date(2024, 3, 1), Decimal(1)),
        (date(2024, 3, 2), Decimal(2)),
        (date(2024, 3, 3), Decimal(0)),
    ]
    assert len(usage_service.recent_events(customer, 10)) == 3
    assert [e.error_code for e in usage_service.rejected_events(customer, 10)] == [
        "invalid_field_value"
    ]
    assert {e.error_code for e in usage_service.rejected_events(org, 10)} == {
        "invalid_field_value",
        "subscription_not_found",
    }
    assert set(
        db.session.scalars(
            select(Event.customer_id).where(
                Event.subscription_id == subscription.id, Event.error_code.is_(None)
            )
        )
    ) == {customer.id}


def test_cli_rebuild_refuses_an_unknown_subscription(app, db_session):
    result = app.test_cli_runner().invoke(args=["usage", "rebuild", "--subscription", "ghost"])

    assert result.exit_code != 0
    assert "no subscription" in result.output
