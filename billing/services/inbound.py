"""Inbound hooks: a seller's backend or CRM creates or updates customers with a signed request.

A request names its organization (`X-Ledgerline-Organization`: the organization's lago_id),
signs the exact body with the organization's inbound secret (`X-Ledgerline-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, refused more than five minutes away from
now) and carries a delivery id (`X-Ledgerline-Delivery`): a repeated delivery id gets the first
answer again and changes nothing.

Bodies: Lago's `{"customer": {...}}`; a Salesforce Account (`{"attributes": {"type":
"Account"}, "Id": …, "Name": …, "Billing…": …}`); or a HubSpot company or contact
(`{"objectType": "company", "objectId": …, "properties": {...}}`). The customer is found by
its external id, else by its CRM id (the integration link every CRM delivery stores, or a
Lago body's `integration_customers[].external_customer_id`), else it is created with a
generated `cus_…` id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from billing.errors import ValidationFailed
from billing.models import Customer, InboundDelivery, IntegrationCustomer, Organization
from billing.serializers import serialize_customer
from billing.services import audit, customers
from billing.services.organizations import lock_organization
from extensions import db

#: how far a request's timestamp may be from now
TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 1024 * 1024
_SIGNATURE = re.compile(r"t=(\d{1,12}),v1=([0-9a-f]{64})")

#: Salesforce Account field → customer field
SALESFORCE_FIELDS = {
    "Name": "name",
    "BillingStreet": "address_line1",
    "BillingCity": "city",
    "BillingPostalCode": "zipcode",
    "BillingState": "state",
    "BillingCountryCode": "country",
    "Phone": "phone",
    "Website": "url",
    "CurrencyIsoCode": "currency",
    "Email__c": "email",
    "Ledgerline_External_Id__c": "external_id",
}
#: HubSpot property → customer field
HUBSPOT_FIELDS = {
    "name": "name",
    "firstname": "firstname",
    "lastname": "lastname",
    "email": "email",
    "phone": "phone",
    "domain": "url",
    "address": "address_line1",
    "city": "city",
    "zip": "zipcode",
    "state": "state",
    "country": "country",
    "ledgerline_external_id": "external_id",
}


class Unauthenticated(Exception):
    """No organization, a bad signature or a stale timestamp: 401, nothing stored."""


def authenticate(
    organization_ref: str, signature: str, body: bytes, now: float | None = None
) -> Organization:
    """The organization whose inbound secret signed `body`; Unauthenticated otherwise (the
    reason is not told to the caller)."""
    try:
        lago_id = uuid.UUID(organization_ref)
    except ValueError:
        raise Unauthenticated("organization") from None
    organization = db.session.scalar(select(Organization).where(Organization.lago_id == lago_id))
    match = _SIGNATURE.fullmatch(signature.strip())
    if organization is None or match is None:
        raise Unauthenticated("organization or signature")
    timestamp = int(match[1])
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE_SECONDS:
        raise Unauthenticated("stale timestamp")
    message = match[1].encode() + b"." + body
    expected = hmac.new(organization.inbound_secret.encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match[2]):
        raise Unauthenticated("signature")
    return organization


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Ledgerline-Signature value for `body` (the README's recipe, for tests and tools)."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


def previous_answer(organization: Organization, delivery_id: str) -> Answer | None:
    """The answer already given to this delivery id, taken under the organization's lock so
    that two copies of one delivery arriving together are answered one after the other."""
    lock_organization(organization)
    delivery = db.session.scalar(
        select(InboundDelivery).where(
            InboundDelivery.organization_id == organization.id,
            InboundDelivery.delivery_id == delivery_id,
        )
    )
    return None if delivery is None else Answer(delivery.response_status, delivery.response_body)


def upsert_customer(organization: Organization, body: Any, delivery_id: str) -> Answer:
    """Create or update the customer the body describes; ValidationFailed on bad fields (the
    caller rolls back and records the 422 with `record`)."""
    payload, crm = customer_payload(body)
    if crm is not None:
        # The CRM link is always kept, so that a later delivery of the same CRM record
        # without an external id finds this customer.
        payload["integration_customers"] = [
            {"integration_type": crm[0], "external_customer_id": crm[1]}
        ]
    if payload.get("external_id") is None:
        links = [crm] if crm is not None else _integration_links(payload)
        known = next(
            (c for c in (_customer_by_crm_id(organization, *link) for link in links) if c), None
        )
        if known is not None:
            payload["external_id"] = known.external_id
    actor = audit.Actor(type="webhook", source="webhook", id=delivery_id, label="inbound hook")
    customer, created = customers.upsert_customer(
        organization, payload, actor, generate_missing_external_id=True
    )
    answer = Answer(201 if created else 200, {"customer": serialize_customer(customer)})
    record(organization, delivery_id, answer, customer)
    return answer


def record(
    organization: Organization, delivery_id: str, answer: Answer, customer: Customer | None = None
) -> None:
    db.session.add(
        InboundDelivery(
            organization_id=organization.id,
            delivery_id=delivery_id,
            hook="customers",
            customer_id=customer.id if customer is not None else None,
            response_status=answer.status,
            response_body=answer.body,
        )
    )
    db.session.flush()


def customer_payload(body: Any) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """Lago's customer payload for a body of any supported shape, and the CRM id it carries
    (integration type, id) if any."""
    if not isinstance(body, dict):
        raise ValidationFailed({"base": ["value_is_invalid"]})
    if isinstance(body.get("customer"), dict):
        return dict(body["customer"]), None
    attributes = body.get("attributes")
    if isinstance(attributes, dict) and attributes.get("type") == "Account" and body.get("Id"):
        payload = {field: body[key] for key, field in SALESFORCE_FIELDS.items() if key in body}
        payload["external_salesforce_id"] = str(body["Id"])
        return payload, ("salesforce", str(body["Id"]))
    properties = body.get("properties")
    if (
        body.get("objectType") in ("company", "contact")
        and body.get("objectId") is not None
        and isinstance(properties, dict)
    ):
        payload = {
            field: properties[key] for key, field in HUBSPOT_FIELDS.items() if key in properties
        }
        return payload, ("hubspot", str(body["objectId"]))
    raise ValidationFailed({"customer": ["value_is_mandatory"]})


def _integration_links(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The (integration type, id) pairs a Lago-shaped body's `integration_customers` carry
    (malformed items are left to the customer's validation)."""
    items = payload.get("integration_customers")
    if not isinstance(items, list):
        return []
    return [
        (item["integration_type"], item["external_customer_id"])
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get("integration_type"), str)
        and isinstance(item.get("external_customer_id"), str)
        and item["external_customer_id"]
    ]


def _customer_by_crm_id(organization: Organization, kind: str, crm_id: str) -> Customer | None:
    """The live customer linked to this CRM record; the latest link if several customers are
    (a delivery with an external id may have linked a second one)."""
    return db.session.scalar(
        select(Customer)
        .join(IntegrationCustomer, IntegrationCustomer.customer_id == Customer.id)
        .where(
            Customer.organization_id == organization.id,
            Customer.deleted_at.is_(None),
            IntegrationCustomer.integration_type == kind,
            IntegrationCustomer.external_customer_id == crm_id,
        )
        .order_by(IntegrationCustomer.id.desc())
        .limit(1)
    )


def list_deliveries(organization: Organization, limit: int = 50) -> list[InboundDelivery]:
    return list(
        db.session.scalars(
            select(InboundDelivery)
            .where(InboundDelivery.organization_id == organization.id)
            .order_by(InboundDelivery.created_at.desc(), InboundDelivery.id.desc())
            .limit(limit)
        )
    )
