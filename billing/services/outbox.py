"""The outbox: events for webhooks, written in the transaction of the change they describe."""

from __future__ import annotations

from typing import Any

from billing.models import OutboxEvent
from extensions import db

#: every webhook type the product writes to the outbox; emit() refuses any other, so this list
#: is the complete set the webhook tests deliver
WEBHOOK_TYPES = frozenset({
    "customer.created", "customer.updated", "customer.deleted",
    "subscription.started", "subscription.updated", "subscription.terminated",
    "invoice.drafted", "invoice.created", "invoice.one_off_created", "invoice.paid_credit_added",
    "invoice.generated", "invoice.voided", "invoice.payment_status_updated",
    "invoice.payment_overdue",
    "credit_note.created", "credit_note.generated",
    "wallet.created", "wallet.updated", "wallet.terminated",
    "wallet_transaction.created", "wallet_transaction.updated",
    "event.error",
    "plan.created", "plan.updated", "plan.deleted",
    "billable_metric.created", "billable_metric.updated", "billable_metric.deleted",
})  # fmt: skip


def emit(
    organization_id: int, event_type: str, object_type: str, payload: dict[str, Any]
) -> OutboxEvent:
    """Queue `event_type` (e.g. `customer.created`) with the object as the API shows it."""
    if event_type not in WEBHOOK_TYPES:
        raise ValueError(f"unknown webhook type {event_type!r}: add it to outbox.WEBHOOK_TYPES")
    event = OutboxEvent(
        organization_id=organization_id,
        event_type=event_type,
        object_type=object_type,
        payload=payload,
    )
    db.session.add(event)
    return event
