"""Subscriptions as Lago's v1 API shows them (lago-api.md §8); the API and the outbox share it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from billing.models import Subscription, SubscriptionStatus
from billing.periods import Period, local_date
from billing.serializers import serialize_customer
from billing.serializers_plans import serialize_plan
from billing.timeutil import iso_utc, now_utc


def current_period(subscription: Subscription, at: datetime) -> Period | None:
    """The billing period the subscription is in at `at`: its first one while pending, its last
    one once terminated, none once canceled (it never ran)."""
    if subscription.status == SubscriptionStatus.CANCELED:
        return None
    if subscription.terminated_at is not None:
        at = min(at, subscription.terminated_at - timedelta(microseconds=1))
    return subscription.period_at(at)


def downgrade_at(subscription: Subscription, pending: Subscription) -> datetime:
    """When the pending downgrade `pending` replaces `subscription`: the end of the period in
    which it was asked for."""
    return subscription.period_at(pending.created_at).end


def serialize_subscription(
    subscription: Subscription,
    *,
    next_subscription: Subscription | None = None,
    include_plan: bool = False,
    include_customer: bool = False,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Lago's subscription object: every key, null when empty.

    `next_subscription` is the pending downgrade waiting to replace this one, if any (the
    services look it up, in one query for a list). Period bounds are those at `at` (now).
    """
    plan = subscription.plan
    customer = subscription.customer
    timezone = customer.applicable_timezone
    period = current_period(subscription, at or now_utc())
    pending_next = (
        next_subscription
        if next_subscription is not None and next_subscription.status == SubscriptionStatus.PENDING
        else None
    )
    previous = subscription.previous_subscription
    payload: dict[str, Any] = {
        "lago_id": str(subscription.lago_id),
        "external_id": subscription.external_id,
        "lago_customer_id": str(customer.lago_id),
        "external_customer_id": customer.external_id,
        "name": subscription.name,
        "plan_code": plan.code,
        "plan_amount_cents": plan.amount_cents,
        "plan_amount_currency": plan.amount_currency,
        "status": subscription.status,
        "billing_time": subscription.billing_time,
        "subscription_at": iso_utc(subscription.subscription_at),
        "started_at": iso_utc(subscription.started_at),
        "trial_ended_at": iso_utc(
            subscription.started_at + timedelta(days=plan.trial_period)
            if subscription.started_at is not None and plan.trial_period
            else None
        ),
        "ending_at": iso_utc(subscription.ending_at),
        "terminated_at": iso_utc(subscription.terminated_at),
        "canceled_at": iso_utc(subscription.canceled_at),
        "created_at": iso_utc(subscription.created_at),
        "previous_plan_code": previous.plan.code if previous is not None else None,
        "next_plan_code": pending_next.plan.code if pending_next is not None else None,
        "downgrade_plan_date": (
            local_date(downgrade_at(subscription, pending_next), timezone).isoformat()
            if pending_next is not None
            else None
        ),
        "current_billing_period_started_at": iso_utc(period.start) if period else None,
        "current_billing_period_ending_at": iso_utc(period.inclusive_end) if period else None,
        "on_termination_credit_note": subscription.on_termination_credit_note,
        "on_termination_invoice": subscription.on_termination_invoice,
        "progressive_billing_disabled": False,
        "consolidate_invoice": False,
        "purchase_order_number": None,
        "cancellation_reason": None,
        "activated_at": iso_utc(subscription.started_at),
        "payment_method": {"payment_method_id": None, "payment_method_type": None},
        "activation_rules": [],
    }
    if include_plan:
        payload["plan"] = serialize_plan(plan)
    if include_customer:
        payload["customer"] = serialize_customer(customer)
    return payload
