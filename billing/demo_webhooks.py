"""Demo webhooks: a customer that arrived from a CRM through the signed inbound hook."""

from __future__ import annotations

from billing.models import Organization
from billing.services import inbound

#: the delivery id of the demo's HubSpot company (a second seed finds it and adds nothing)
DEMO_DELIVERY_ID = "demo-hubspot-company-9001"
DEMO_COMPANY = {
    "objectType": "company",
    "objectId": 9001,
    "properties": {
        "name": "Umbrella Logistics",
        "email": "accounts@umbrella-logistics.example",
        "domain": "umbrella-logistics.example",
        "city": "Lyon",
        "country": "FR",
    },
}


def seed_webhooks(organization: Organization) -> None:
    """The customer created by a HubSpot company webhook, as Settings › Webhooks lists it."""
    if inbound.previous_answer(organization, DEMO_DELIVERY_ID) is None:
        inbound.upsert_customer(organization, DEMO_COMPANY, DEMO_DELIVERY_ID)
