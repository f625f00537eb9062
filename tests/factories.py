"""Test data through the real services: make_organization(), make_api_key(), make_customer().

Each factory commits (inside a test: releases a savepoint of the test's transaction, which is
still rolled back at the end), so a view that rolls back after an error cannot take the
test's set-up with it, and "nothing was written" checks compare against real data.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from billing.models import Agent, Customer, Organization
from billing.services import audit
from billing.services.customers import upsert_customer
from billing.services.organizations import create_agent, create_api_key, create_organization
from extensions import db

TEST_ACTOR = audit.Actor(type="system", source="system", label="tests")
_sequence = itertools.count(1)


def make_organization(name: str | None = None, **attributes: Any) -> Organization:
    organization = create_organization(name or f"Test Org {uuid.uuid4().hex[:10]}")
    for key, value in attributes.items():
        setattr(organization, key, value)
    db.session.commit()
    return organization


def make_api_key(organization: Organization) -> str:
    _key, raw_key = create_api_key(organization, TEST_ACTOR)
    db.session.commit()
    return raw_key


def make_customer(organization: Organization, **overrides: Any) -> Customer:
    n = next(_sequence)
    payload: dict[str, Any] = {
        "external_id": f"cust-{n}",
        "name": f"Customer {n}",
        "email": f"billing{n}@example.com",
        **overrides,
    }
    customer, _created = upsert_customer(organization, payload, TEST_ACTOR)
    db.session.commit()
    return customer


AGENT_PASSWORD = "correct horse battery"


def make_agent(organization: Organization, role: str = "admin", email: str | None = None) -> Agent:
    agent = create_agent(
        organization,
        email or f"{role}-{uuid.uuid4().hex[:8]}@agents.test",
        role,
        AGENT_PASSWORD,
        TEST_ACTOR,
    )
    db.session.commit()
    return agent


def db_scalar(query: Any) -> Any:
    """One value from the test's database session (what the pages wrote)."""
    return db.session.scalar(query)


def make_billable_metric(organization: Organization, **overrides: Any) -> Any:
    """A committed sum_agg metric on `value` (overrides: any Lago billable_metric field)."""
    from billing.services.metrics import create_billable_metric  # noqa: PLC0415

    n = next(_sequence)
    payload: dict[str, Any] = {
        "name": f"Metric {n}",
        "code": f"metric_{n}",
        "aggregation_type": "sum_agg",
        "field_name": "value",
        **overrides,
    }
    metric = create_billable_metric(organization, payload, TEST_ACTOR)
    db.session.commit()
    return metric


def make_tax(organization: Organization, **overrides: Any) -> Any:
    """A committed tax (overrides: any Lago tax field); 20 % unless told otherwise."""
    from billing.services.taxes import create_tax  # noqa: PLC0415

    n = next(_sequence)
    payload: dict[str, Any] = {"name": f"Tax {n}", "code": f"tax_{n}", "rate": "20", **overrides}
    tax = create_tax(organization, payload, TEST_ACTOR)
    db.session.commit()
    return tax


def make_plan(
    organization: Organization, charges: list[dict[str, Any]] | None = None, **overrides: Any
) -> Any:
    """A committed monthly EUR plan; `charges` are Lago charge payloads (billable_metric_id
    or billable_metric_code); with None, one standard charge on a new metric."""
    from billing.services.plans import create_plan  # noqa: PLC0415

    n = next(_sequence)
    if charges is None:
        metric = make_billable_metric(organization)
        charges = [
            {
                "billable_metric_id": str(metric.lago_id),
                "charge_model": "standard",
                "properties": {"amount": "0.5"},
            }
        ]
    payload: dict[str, Any] = {
        "name": f"Plan {n}",
        "code": f"plan_{n}",
        "interval": "monthly",
        "amount_cents": 1000,
        "amount_currency": "EUR",
        "pay_in_advance": False,
        "charges": charges,
        **overrides,
    }
    plan = create_plan(organization, payload, TEST_ACTOR)
    db.session.commit()
    return plan


def make_subscription(
    organization: Organization,
    customer: Customer | None = None,
    plan: Any = None,
    **overrides: Any,
) -> Any:
    """A committed subscription through the service (overrides: any Lago subscription field,
    e.g. subscription_at, billing_time, external_id); a customer and a plan are made if not
    given (a monthly plan of 1000 cents in the customer's currency, EUR by default)."""
    from billing.services.subscriptions import create_subscription  # noqa: PLC0415

    n = next(_sequence)
    customer = customer or make_customer(organization, currency="EUR")
    plan = plan or make_plan(organization, charges=[], amount_currency=customer.currency or "EUR")
    payload: dict[str, Any] = {
        "external_customer_id": customer.external_id,
        "plan_code": plan.code,
        "external_id": f"sub-{n}",
        **overrides,
    }
    subscription = create_subscription(organization, payload, TEST_ACTOR)
    db.session.commit()
    return subscription


# ---------------------------------------------------------------------------------------------
# Invoicing


def send_event(organization: Organization, subscription: Any, at: Any, **properties: Any) -> None:
    """A committed usage event of the subscription's first charge's metric at `at`."""
    from billing.services.events import ingest_event  # noqa: PLC0415

    metric = subscription.plan.charges[0].billable_metric
    ingest_event(
        organization,
        {
            "transaction_id": uuid.uuid4().hex,
            "external_subscription_id": subscription.external_id,
            "code": metric.code,
            "timestamp": at.timestamp(),
            "properties": properties,
        },
    )
    db.session.commit()


def invoices_of(organization: Organization) -> list[Any]:
    """The organization's invoices, oldest first, each checked with assert_amount_relations."""
    from sqlalchemy import select  # noqa: PLC0415

    from billing.models import Invoice  # noqa: PLC0415

    invoices = list(
        db.session.scalars(
            select(Invoice).where(Invoice.organization_id == organization.id).order_by(Invoice.id)
        )
    )
    for invoice in invoices:
        assert_amount_relations(invoice)
    return invoices


def assert_amount_relations(invoice: Any) -> None:
    """Lago's amount relations (lago-api.md §10.1) and the payment status of a zero total."""
    assert invoice.fees_amount_cents == sum(fee.amount_cents for fee in invoice.fees)
    assert invoice.sub_total_excluding_taxes_amount_cents == (
        invoice.fees_amount_cents
        - invoice.coupons_amount_cents
        - invoice.progressive_billing_credit_amount_cents
    )
    assert invoice.sub_total_including_taxes_amount_cents == (
        invoice.sub_total_excluding_taxes_amount_cents + invoice.taxes_amount_cents
    )
    assert invoice.total_amount_cents == (
        invoice.sub_total_including_taxes_amount_cents
        - invoice.credit_notes_amount_cents
        - invoice.prepaid_credit_amount_cents
    )
    assert invoice.total_due_amount_cents == (
        invoice.total_amount_cents - invoice.total_paid_amount_cents - invoice.offset_amount_cents
    )
    if invoice.status == "finalized" and invoice.total_amount_cents == 0:
        assert invoice.payment_status == "succeeded"


def console_activity(agent: Agent) -> list[tuple[str, str, dict[str, Any]]]:
    """(activity type, resource id, changes) of the audit entries `agent` wrote through the
    console, oldest first: who did what, as the audit log shows it."""
    from sqlalchemy import select  # noqa: PLC0415

    from billing.models import ActivityLog  # noqa: PLC0415

    entries = db.session.scalars(
        select(ActivityLog)
        .where(
            ActivityLog.organization_id == agent.organization_id,
            ActivityLog.actor_type == "agent",
            ActivityLog.actor_id == str(agent.lago_id),
            ActivityLog.source == "console",
        )
        .order_by(ActivityLog.id)
    )
    result = []
    for entry in entries:
        assert entry.actor_label == agent.email
        result.append((entry.activity_type, entry.resource_id, entry.changes))
    return result
