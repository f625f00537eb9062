"""Webhook endpoints as the API shows them (lago-api.md §12)."""

from __future__ import annotations

from typing import Any

from billing.models import Organization, WebhookEndpoint
from billing.timeutil import iso_utc


def serialize_webhook_endpoint(
    endpoint: WebhookEndpoint, organization: Organization
) -> dict[str, Any]:
    return {
        "lago_id": str(endpoint.lago_id),
        "lago_organization_id": str(organization.lago_id),
        "webhook_url": endpoint.webhook_url,
        "signature_algo": endpoint.signature_algo,
        "name": endpoint.name,
        "event_types": endpoint.event_types,
        "created_at": iso_utc(endpoint.created_at),
    }
