"""POST /hooks/customers: signed inbound customer creation from a backend or a CRM."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import Customer, InboundDelivery, OutboxEvent
from extensions import db
from tests import factories

URL = "/hooks/customers"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """An independent implementation of the documented scheme."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def send(
    client: Any,
    org: Any,
    payload: Any,
    *,
    delivery: str = "d-1",
    secret: str | None = None,
    timestamp: int | None = None,
    raw: bytes | None = None,
    organization: str | None = None,
) -> Any:
    body = raw if raw is not None else json.dumps(payload).encode()
    at = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "X-Ledgerline-Organization": organization or str(org.lago_id),
        "X-Ledgerline-Signature": signature(secret or org.inbound_secret, body, at),
        "X-Ledgerline-Delivery": delivery,
    }
    return client.post(URL, data=body, headers=headers)


def customers(org: Any) -> list[Customer]:
    return list(db.session.scalars(select(Customer).where(Customer.organization_id == org.id)))


def test_lago_payload_creates_then_updates(client: Any, org: Any) -> None:
    created = send(client, org, {"customer": {"external_id": "acme", "name": "Acme"}})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["customer"]["external_id"] == "acme"
    updated = send(
        client, org, {"customer": {"external_id": "acme", "name": "Acme Inc"}}, delivery="d-2"
    )
    assert updated.status_code == 200
    (customer,) = customers(org)
    assert customer.name == "Acme Inc"
    types = db.session.scalars(
        select(OutboxEvent.event_type).where(OutboxEvent.organization_id == org.id)
    ).all()
    assert sorted(types) == ["customer.created", "customer.updated"]  # the loop closes


def test_without_external_id_a_cus_id_is_generated(client: Any, org: Any) -> None:
    response = send(client, org, {"customer": {"name": "No Id Ltd"}})
    assert response.status_code == 201
    assert response.get_json()["customer"]["external_id"].startswith("cus_")


def test_salesforce_account_is_matched_by_its_crm_id(client: Any, org: Any) -> None:
    account = {
        "attributes": {"type": "Account"},
        "Id": "001Dn00000ABCDE",
        "Name": "Globex",
        "BillingCity": "Springfield",
        "BillingCountryCode": "US",
        "CurrencyIsoCode": "USD",
    }
    assert send(client, org, account).status_code == 201
    assert send(client, org, {**account, "Name": "Globex Corp"}, delivery="d-2").status_code == 200
    (customer,) = customers(org)
    assert (customer.name, customer.city, customer.country, customer.currency) == (
        "Globex Corp",
        "Springfield",
        "US",
        "USD",
    )
    assert customer.external_salesforce_id == "001Dn00000ABCDE"
    assert customer.external_id.startswith("cus_")


def test_hubspot_company_is_matched_by_its_crm_id(client: Any, org: Any) -> None:
    company = {"objectType": "company", "objectId": 4242, "properties": {"name": "Initech"}}
    assert send(client, org, company).status_code == 201
    company["properties"] = {"name": "Initech LLC", "email": "billing@initech.example"}
    assert send(client, org, company, delivery="d-2").status_code == 200
    (customer,) = customers(org)
    assert (customer.name, customer.email) == ("Initech LLC", "billing@initech.example")
    assert [i.integration_type for i in customer.integration_customers] == ["hubspot"]


def test_hubspot_contact_is_mapped_to_a_person(client: Any, org: Any) -> None:
    contact = {
        "objectType": "contact",
        "objectId": 501,
        "properties": {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com"},
    }
    response = send(client, org, contact)
    assert response.status_code == 201, response.get_json()
    shown = response.get_json()["customer"]
    assert (shown["firstname"], shown["lastname"], shown["email"]) == (
        "Ada",
        "Lovelace",
        "ada@example.com",
    )
    assert shown["integration_customers"][0]["external_customer_id"] == "501"


@pytest.mark.parametrize(
    ("with_external_id", "without"),
    [
        (
            {"attributes": {"type": "Account"}, "Id": "001Dn00000XYZ", "Name": "Hooli",
             "Ledgerline_External_Id__c": "hooli"},
            {"attributes": {"type": "Account"}, "Id": "001Dn00000XYZ", "Name": "Hooli XYZ"},
        ),
        (
            {"objectType": "company", "objectId": 77,
             "properties": {"name": "Hooli", "ledgerline_external_id": "hooli"}},
            {"objectType": "company", "objectId": 77, "properties": {"name": "Hooli XYZ"}},
        ),
    ],
    ids=["salesforce", "hubspot"],
)  # fmt: skip
def test_a_crm_record_sent_with_then_without_its_external_id_stays_one_customer(
    client: Any, org: Any, with_external_id: dict[str, Any], without: dict[str, Any]
) -> None:
    assert send(client, org, with_external_id).status_code == 201
    later = send(client, org, without, delivery="d-2")
    assert later.status_code == 200, later.get_json()
    assert later.get_json()["customer"]["external_id"] == "hooli"
    (customer,) = customers(org)
    assert (customer.external_id, customer.name) == ("hooli", "Hooli XYZ")


def test_a_lago_body_is_matched_by_its_integration_id(client: Any, org: Any) -> None:
    link = {"integration_type": "hubspot", "external_customer_id": "9001"}
    created = send(
        client, org, {"customer": {"external_id": "acme", "integration_customers": [link]}}
    )
    assert created.status_code == 201
    updated = send(
        client,
        org,
        {"customer": {"name": "Acme from HubSpot", "integration_customers": [link]}},
        delivery="d-2",
    )
    assert updated.status_code == 200, updated.get_json()
    (customer,) = customers(org)
    assert (customer.external_id, customer.name) == ("acme", "Acme from HubSpot")
    other = {"integration_type": "hubspot", "external_customer_id": "9002"}
    fresh = send(client, org, {"customer": {"integration_customers": [other]}}, delivery="d-3")
    assert fresh.status_code == 201
    assert fresh.get_json()["customer"]["external_id"].startswith("cus_")


def test_a_repeated_delivery_gets_the_same_answer_and_changes_nothing(
    client: Any, org: Any
) -> None:
    first = send(client, org, {"customer": {"name": "Once"}}, delivery="same")
    again = send(client, org, {"customer": {"name": "Once"}}, delivery="same")
    assert (again.status_code, again.get_json()) == (first.status_code, first.get_json())
    assert len(customers(org)) == 1
    refused = send(client, org, {"customer": {"email": "nope"}}, delivery="bad")
    changed = send(client, org, {"customer": {"name": "Fixed"}}, delivery="bad")
    assert refused.status_code == changed.status_code == 422
    assert changed.get_json() == refused.get_json()
    assert len(customers(org)) == 1


@pytest.mark.parametrize(
    "tamper",
    ["secret", "stale", "future", "organization", "unknown organization", "missing signature"],
)
def test_unauthenticated_requests_are_401_and_store_nothing(
    client: Any, org: Any, tamper: str
) -> None:
    payload = {"customer": {"external_id": "mallory"}}
    kwargs: dict[str, Any] = {}
    if tamper == "secret":
        kwargs["secret"] = "wrong"
    elif tamper == "stale":
        kwargs["timestamp"] = int(time.time()) - 301
    elif tamper == "future":
        kwargs["timestamp"] = int(time.time()) + 310  # +301 is within tolerance once a second ticks
    elif tamper == "organization":
        kwargs["organization"] = str(factories.make_organization().lago_id)
    elif tamper == "unknown organization":
        kwargs["organization"] = "not-an-id"
    if tamper == "missing signature":
        response = client.post(URL, json=payload, headers={"X-Ledgerline-Delivery": "x"})
    else:
        response = send(client, org, payload, **kwargs)
    assert response.status_code == 401
    assert response.get_json() == {"status": 401, "error": "Unauthorized"}
    assert customers(org) == []
    assert db.session.scalar(select(func.count()).select_from(InboundDelivery)) == 0


def test_a_modified_body_breaks_the_signature(client: Any, org: Any) -> None:
    body = json.dumps({"customer": {"external_id": "a"}}).encode()
    at = int(time.time())
    headers = {
        "X-Ledgerline-Organization": str(org.lago_id),
        "X-Ledgerline-Signature": signature(org.inbound_secret, body, at),
        "X-Ledgerline-Delivery": "d",
    }
    tampered = body.replace(b'"a"', b'"b"')
    assert client.post(URL, data=tampered, headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 422),
        (b'{"something": "else"}', 422),
        (b'{"customer": {"email": "bad", "currency": "XYZ"}}', 422),
        (b"x" * (1024 * 1024 + 1), 413),
    ],
)
def test_malformed_payloads(client: Any, org: Any, raw: bytes, status: int) -> None:
    response = send(client, org, None, raw=raw)
    assert response.status_code == status
    assert response.is_json and response.get_json()["status"] == status
    assert customers(org) == []


def test_field_errors_are_lago_422(client: Any, org: Any) -> None:
    response = send(client, org, {"customer": {"email": "bad", "currency": "XYZ"}})
    assert response.get_json()["error_details"] == {
        "email": ["invalid_email_format"],
        "currency": ["value_is_invalid"],
    }


def test_missing_delivery_id_is_400(client: Any, org: Any) -> None:
    response = send(client, org, {"customer": {"name": "x"}}, delivery="")
    assert response.status_code == 400
    assert customers(org) == []
    assert inbound_log(org) == []  # nothing to key the log on


def inbound_log(org: Any) -> list[tuple[str, int]]:
    rows = db.session.scalars(
        select(InboundDelivery).where(InboundDelivery.organization_id == org.id)
    )
    return [(row.delivery_id, row.response_status) for row in rows]


def test_a_signed_body_that_is_not_json_is_logged_and_answered_again(client: Any, org: Any) -> None:
    assert send(client, org, None, raw=b"nope", secret="wrong").status_code == 401
    assert inbound_log(org) == []  # never for an unauthenticated request
    first = send(client, org, None, raw=b"{truncated", delivery="crm-1")
    assert first.status_code == 400
    assert first.get_json() == {"status": 400, "error": "BadRequest: the body is not JSON"}
    again = send(client, org, {"customer": {"name": "Fixed"}}, delivery="crm-1")
    assert (again.status_code, again.get_json()) == (400, first.get_json())
    assert inbound_log(org) == [("crm-1", 400)]
    assert customers(org) == []
