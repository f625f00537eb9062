"""The outbox: events for webhooks, written in the transaction of the change they describe."""

from __future__ import annotations

from typing import Any

from billing.models import OutboxEvent
from extensions import db


def emit(
    organization_id: int, event_type: str, object_type: str, payload: dict[str, Any]
) -> OutboxEvent:
    """Queue `event_type` (e.g. `customer.created`) with the object as the API shows it."""
    event = OutboxEvent(
        organization_id=organization_id,
        event_type=event_type,
        object_type=object_type,
        payload=payload,
    )
    db.session.add(event)
    return event
