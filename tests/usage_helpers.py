"""Metering test data made directly with the models: metrics, plans with charges, subscriptions.

Independent of the metrics/plans/subscriptions services (others build those), so the usage tests
exercise only ingestion, buckets and usage. Each helper commits, like tests/factories.py.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from billing.models import (
    BillableMetric,
    Charge,
    ChargeFilter,
    Customer,
    Organization,
    Plan,
    Subscription,
)
from extensions import db

_sequence = itertools.count(1)


def make_metric(
    organization: Organization,
    aggregation_type: str = "count_agg",
    field_name: str | None = None,
    **attributes: Any,
) -> BillableMetric:
    n = next(_sequence)
    metric = BillableMetric(
        organization_id=organization.id,
        name=attributes.pop("name", f"Metric {n}"),
        code=attributes.pop("code", f"metric_{n}"),
        aggregation_type=aggregation_type,
        field_name=field_name,
        **attributes,
    )
    db.session.add(metric)
    db.session.commit()
    return metric


def make_plan(organization: Organization, interval: str = "monthly", currency: str = "EUR") -> Plan:
    n = next(_sequence)
    plan = Plan(
        organization_id=organization.id,
        name=f"Plan {n}",
        code=f"plan_{n}",
        interval=interval,
        amount_cents=1000,
        amount_currency=currency,
    )
    db.session.add(plan)
    db.session.commit()
    return plan


def add_charge(
    plan: Plan,
    metric: BillableMetric,
    charge_model: str = "standard",
    properties: dict[str, Any] | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> Charge:
    """A charge; `filters` are {"values": {...}, "properties": {...}, "invoice_display_name"}."""
    n = next(_sequence)
    charge = Charge(
        plan_id=plan.id,
        billable_metric_id=metric.id,
        code=f"charge_{n}",
        charge_model=charge_model,
        properties=properties if properties is not None else {"amount": "1"},
    )
    db.session.add(charge)
    db.session.flush()
    for item in filters or []:
        db.session.add(ChargeFilter(charge_id=charge.id, **item))
    db.session.commit()
    db.session.expire(plan)
    return charge


def make_subscription(
    organization: Organization,
    customer: Customer,
    plan: Plan,
    started_at: datetime,
    external_id: str | None = None,
    **attributes: Any,
) -> Subscription:
    """An active subscription since `started_at` (pass status/terminated_at to change that)."""
    subscription = Subscription(
        organization_id=organization.id,
        customer_id=customer.id,
        plan_id=plan.id,
        external_id=external_id or f"sub_{next(_sequence)}",
        status=attributes.pop("status", "active"),
        subscription_at=started_at,
        started_at=started_at,
        **attributes,
    )
    db.session.add(subscription)
    db.session.commit()
    return subscription


def event(
    subscription: Subscription | str, code: str, transaction_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """An event payload for the API."""
    external_id = subscription if isinstance(subscription, str) else subscription.external_id
    return {
        "transaction_id": transaction_id or f"tx_{next(_sequence)}",
        "external_subscription_id": external_id,
        "code": code,
        **fields,
    }


def unix(value: datetime) -> float:
    return value.timestamp()


def live_metered(
    live_server: Any, code: str, external_id: str, aggregation_type: str = "sum_agg", **charge: Any
) -> tuple[str, int, int]:
    """For live-server tests: a committed organization with a customer, a metric `code`
    (field `value`), a monthly EUR plan charging it, and an active subscription `external_id`
    started on 2024-01-01. Returns (API key, organization id, subscription id)."""
    from datetime import UTC  # noqa: PLC0415

    from tests import factories  # noqa: PLC0415

    organization_id, raw_key = live_server.new_organization()
    with live_server.app.app_context():
        organization = db.session.get_one(Organization, organization_id)
        customer = factories.make_customer(organization, external_id=f"cus-{external_id}")
        field_name = None if aggregation_type == "count_agg" else "value"
        metric = make_metric(organization, aggregation_type, field_name, code=code)
        plan = make_plan(organization)
        add_charge(plan, metric, **charge)
        started = datetime(2024, 1, 1, tzinfo=UTC)
        subscription = make_subscription(organization, customer, plan, started, external_id)
        return raw_key, organization_id, subscription.id
