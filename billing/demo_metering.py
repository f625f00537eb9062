"""Demo usage billing: metrics, plans in EUR and USD, subscriptions and a month of events.

Called by `billing.demo.seed_demo` once (when the demo organization has no metric yet), so a
newcomer opening a customer sees plans, live usage with a chart and the events debugger at
once. Numbers come from a seeded random generator: every fresh demo looks the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from billing.demo_coupons import seed_coupons
from billing.demo_credit_notes import seed_credit_note
from billing.demo_documents import seed_documents
from billing.demo_taxes import REDUCED_RATE_CODE
from billing.demo_wallets import seed_wallet
from billing.models import BillableMetric, Customer, Event, Invoice, Organization, Subscription
from billing.services import audit
from billing.services.events import MAX_BATCH_SIZE, ingest_events
from billing.services.invoicing import (
    close_periods,
    finalize_due_drafts,
    mark_overdue_invoices,
    update_invoice,
)
from billing.services.metrics import create_billable_metric
from billing.services.plans import create_plan
from billing.services.subscriptions import create_subscription
from billing.timeutil import clock_frozen_at, now_utc
from extensions import db

SEED = audit.Actor(type="system", source="cli", label="demo seed")

METRICS: list[dict[str, Any]] = [
    {"name": "API calls", "code": "api_calls", "aggregation_type": "count_agg",
     "description": "One event per API request."},
    {"name": "Storage", "code": "storage_gb", "aggregation_type": "max_agg", "field_name": "gb",
     "description": "Peak stored gigabytes in the period."},
    {"name": "Active seats", "code": "seats", "aggregation_type": "unique_count_agg",
     "field_name": "user_id", "description": "Distinct users who signed in."},
    {"name": "Compute hours", "code": "compute_hours", "aggregation_type": "sum_agg",
     "field_name": "hours", "rounding_function": "ceil", "rounding_precision": 1,
     "filters": [{"key": "region", "values": ["eu-west", "us-east"]}]},
    {"name": "Payment volume", "code": "payments", "aggregation_type": "sum_agg",
     "field_name": "amount", "description": "Amount of each payment processed."},
]  # fmt: skip


def _plans(metric_ids: dict[str, str]) -> list[dict[str, Any]]:
    """Starter and Growth in EUR and USD, an annual Enterprise plan and a marketplace plan."""

    def charge(code: str, model: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"billable_metric_id": metric_ids[code], "charge_model": model,
                "properties": properties, **extra}  # fmt: skip

    def starter(currency: str, suffix: str) -> dict[str, Any]:
        return {
            "name": "Starter", "code": f"starter{suffix}", "interval": "monthly",
            "amount_cents": 4900, "amount_currency": currency, "pay_in_advance": False,
            "description": "Small teams: 1,000 API calls free, then packages of 10,000.",
            # billing.demo_taxes: the euro Starter plan is taxed at the reduced rate
            "tax_codes": [REDUCED_RATE_CODE] if currency == "EUR" else [],
            "charges": [
                charge("api_calls", "package",
                       {"amount": "5", "package_size": 10000, "free_units": 1000}),
                charge("storage_gb", "standard", {"amount": "0.20"}),
            ],
        }  # fmt: skip

    def growth(currency: str, suffix: str) -> dict[str, Any]:
        return {
            "name": "Growth", "code": f"growth{suffix}", "interval": "monthly",
            "amount_cents": 19900, "amount_currency": currency, "pay_in_advance": True,
            "trial_period": 14,
            "description": "Scaling products: graduated API pricing, seats, compute by region.",
            "charges": [
                charge("api_calls", "graduated", {"graduated_ranges": [
                    {"from_value": 0, "to_value": 1000, "per_unit_amount": "0.01",
                     "flat_amount": "0"},
                    {"from_value": 1001, "to_value": None, "per_unit_amount": "0.005",
                     "flat_amount": "2"},
                ]}),
                charge("seats", "standard", {"amount": "8"}),
                charge("storage_gb", "volume", {"volume_ranges": [
                    {"from_value": 0, "to_value": 100, "per_unit_amount": "0.25",
                     "flat_amount": "0"},
                    {"from_value": 101, "to_value": None, "per_unit_amount": "0.15",
                     "flat_amount": "0"},
                ]}),
                charge("compute_hours", "standard", {"amount": "0.10"}, filters=[
                    {"invoice_display_name": "Compute, EU West", "values": {"region": ["eu-west"]},
                     "properties": {"amount": "0.12"}},
                    {"invoice_display_name": "Compute, US East", "values": {"region": ["us-east"]},
                     "properties": {"amount": "0.09"}},
                ]),
            ],
        }  # fmt: skip

    return [
        starter("EUR", ""),
        starter("USD", "_usd"),
        growth("EUR", ""),
        growth("USD", "_usd"),
        {"name": "Enterprise (annual)", "code": "enterprise_usd", "interval": "yearly",
         "amount_cents": 1_200_000, "amount_currency": "USD", "pay_in_advance": True,
         "charges": [charge("seats", "standard", {"amount": "5"})]},
        {"name": "Marketplace", "code": "marketplace", "interval": "monthly", "amount_cents": 0,
         "amount_currency": "EUR", "pay_in_advance": False,
         "description": "1.5% of the payment volume plus 0.25 per payment.",
         "charges": [charge("payments", "percentage", {"rate": "1.5", "fixed_amount": "0.25"})]},
    ]  # fmt: skip


#: (customer, subscription external id, plan, days since the start, billing time)
SUBSCRIPTIONS = [
    ("acme-corp", "acme-growth", "growth_usd", 75, "calendar"),
    ("globex", "globex-growth", "growth", 50, "anniversary"),
    ("initech", "initech-starter", "starter", 40, "calendar"),
    ("hooli", "hooli-starter", "starter_usd", 100, "calendar"),
    ("pied-piper", "pied-piper-enterprise", "enterprise_usd", 200, "anniversary"),
    ("soylent", "soylent-marketplace", "marketplace", 35, "calendar"),
    ("vandelay", "vandelay-growth", "growth_usd", 90, "calendar"),
    ("rossi-logistica", "rossi-starter", "starter", -10, "calendar"),  # starts in 10 days
]
#: a downgrade scheduled for the end of the current period
DOWNGRADES = [("vandelay", "vandelay-growth", "starter_usd")]


#: customers whose invoices stay unpaid: the demo's overdue balances
UNPAID = {"hooli"}


@dataclass
class MeteringSummary:
    subscriptions: int
    events: int
    invoices: int


def _events_for(
    subscription: str, plan: str, start: datetime, now: datetime, rng: random.Random
) -> list[dict[str, Any]]:
    """About a month of plausible usage for one subscription, oldest first, up to this very
    moment: the open period shows usage even minutes after it began (in any time zone)."""
    events: list[dict[str, Any]] = []
    first = max(start, now - timedelta(days=30))
    users = [f"user-{n}" for n in range(rng.randint(4, 14))]

    def add(code: str, properties: dict[str, Any], at: datetime, spread: int) -> None:
        at = min(at + timedelta(seconds=rng.randint(0, spread)), now)
        events.append({
            "transaction_id": f"demo-{subscription}-{code}-{len(events)}",
            "external_subscription_id": subscription, "code": code,
            "timestamp": round(at.timestamp(), 3), "properties": properties,
        })  # fmt: skip

    def usage(day: int, at: datetime, spread: int, busy: bool) -> None:
        """A day's usage from `at` (spread over `spread` seconds); not busy: one of each."""
        if plan != "marketplace":
            for _ in range(rng.randint(20, 70) if busy else 1):
                add("api_calls", {"endpoint": rng.choice(["/v1/orders", "/v1/search"])}, at, spread)
            add("storage_gb", {"gb": str(round(40 + day * rng.uniform(1, 4), 1))}, at, spread)
        if plan.startswith(("growth", "enterprise")):
            for user in rng.sample(users, k=min(len(users), rng.randint(1, 5) if busy else 1)):
                add("seats", {"user_id": user}, at, spread)
        if plan.startswith("growth"):
            for _ in range(rng.randint(2, 8) if busy else 1):
                hours = str(round(rng.uniform(0.2, 4), 2))
                region = rng.choice(["eu-west", "us-east"])
                add("compute_hours", {"hours": hours, "region": region}, at, spread)
        if plan == "marketplace":
            for _ in range(rng.randint(10, 30) if busy else 1):
                add("payments", {"amount": str(round(rng.uniform(12, 480), 2))}, at, spread)

    day = 0
    while (moment := first + timedelta(days=day)) < now:
        day += 1
        usage(day, moment, 86_000, busy=True)
    usage(day, now, 0, busy=False)
    events.sort(key=lambda event: event["timestamp"])
    return events


def seed_metering(organization: Organization) -> MeteringSummary | None:
    """Create the demo's usage billing, unless the organization already has metrics."""
    if db.session.scalar(
        select(BillableMetric.id).where(BillableMetric.organization_id == organization.id)
    ):
        return None
    now = now_utc()
    rng = random.Random(4)  # noqa: S311  (demo figures, not secrets)
    metric_ids = {
        spec["code"]: str(create_billable_metric(organization, spec, SEED).lago_id)
        for spec in METRICS
    }
    for plan in _plans(metric_ids):
        create_plan(organization, plan, SEED)
    events: list[dict[str, Any]] = []
    for customer, external_id, plan_code, days_ago, billing_time in SUBSCRIPTIONS:
        start = now - timedelta(days=days_ago)
        # Subscribed on its start date (a future one today), as it would have happened.
        with clock_frozen_at(min(start, now)):
            create_subscription(
                organization,
                {"external_customer_id": customer, "external_id": external_id,
                 "plan_code": plan_code, "billing_time": billing_time,
                 "subscription_at": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
                SEED,
            )  # fmt: skip
        if days_ago > 0:
            events += _events_for(external_id, plan_code, start, now, rng)
    for customer, external_id, plan_code in DOWNGRADES:
        create_subscription(
            organization,
            {"external_customer_id": customer, "external_id": external_id,
             "plan_code": plan_code},
            SEED,
        )  # fmt: skip
    # What the events debugger shows: a typo in a subscription id, a metric nobody created.
    events += [
        {"transaction_id": "demo-typo-1", "external_subscription_id": "acme-grwth",
         "code": "api_calls", "properties": {}},
        {"transaction_id": "demo-gpu-1", "external_subscription_id": "acme-growth",
         "code": "gpu_minutes", "properties": {"minutes": 12}},
    ]  # fmt: skip
    for offset in range(0, len(events), MAX_BATCH_SIZE):
        ingest_events(organization, events[offset : offset + MAX_BATCH_SIZE])
    seed_coupons(organization, now - timedelta(days=60))  # before Globex's first invoice
    seed_wallet(organization)
    _bill_history(organization, now - timedelta(days=max(days for *_, days, _ in SUBSCRIPTIONS)))
    seed_documents(organization)
    subscriptions = db.session.scalar(
        select(func.count(Subscription.id)).where(Subscription.organization_id == organization.id)
    )
    invoices = db.session.scalar(
        select(func.count(Invoice.id)).where(Invoice.organization_id == organization.id)
    )
    stored = db.session.scalar(
        select(func.count(Event.id)).where(Event.organization_id == organization.id)
    )
    return MeteringSummary(subscriptions or 0, stored or 0, invoices or 0)


def _bill_history(organization: Organization, since: datetime) -> None:
    """Replay the jobs process day by day since the first subscription started, so the demo
    has the invoices it would have: issued on their own dates, finalized after the grace
    period, paid, except a customer who is now overdue."""
    now = now_utc()
    day = since
    while day < now:
        day = min(day + timedelta(days=1), now)
        with clock_frozen_at(day):
            close_periods(organization_id=organization.id)
            finalize_due_drafts()
            for invoice in _finalized_unpaid(organization, before=day - timedelta(days=12)):
                update_invoice(invoice, {"payment_status": "succeeded"}, SEED)
            mark_overdue_invoices()
            seed_credit_note(organization)


def _finalized_unpaid(organization: Organization, before: datetime) -> list[Invoice]:
    """Invoices a paying customer has settled by now: finalized more than 12 days ago."""
    return list(
        db.session.scalars(
            select(Invoice)
            .join(Customer, Customer.id == Invoice.customer_id)
            .where(
                Invoice.organization_id == organization.id,
                Invoice.status == "finalized",
                Invoice.payment_status == "pending",
                Invoice.finalized_at < before,
                Customer.external_id.not_in(UNPAID),
            )
        )
    )
