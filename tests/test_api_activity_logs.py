"""GET /api/v1/activity_logs: Lago's activity log objects, filters and pagination."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from lago_python_client.models.activity_log import ActivityLogResponse
from sqlalchemy import select

from billing.models import ApiKey
from billing.services import audit
from billing.timeutil import set_clock
from extensions import db
from tests import factories

ISO_UTC_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
FIELDS = [
    "activity_id", "activity_type", "activity_source", "activity_object",
    "activity_object_changes", "user_email", "resource_id", "resource_type",
    "external_customer_id", "external_subscription_id", "logged_at", "created_at", "api_key_id",
]  # fmt: skip


def upsert(api_client, **customer):
    response = api_client.post("/api/v1/customers", json={"customer": customer})
    assert response.status_code == 200, response.json
    return response.json["customer"]


def logs(api_client, query=""):
    response = api_client.get(f"/api/v1/activity_logs{query}")
    assert response.status_code == 200, response.json
    return response.json


def types(body):
    return [item["activity_type"] for item in body["activity_logs"]]


def record(org, actor, activity_type, at, **extra):
    set_clock(lambda: at)
    audit.record_activity(
        organization_id=org.id, actor=actor, activity_type=activity_type,
        resource_type=extra.pop("resource_type", "organization"),
        resource_id=extra.pop("resource_id", str(org.lago_id)), **extra,
    )  # fmt: skip
    db.session.flush()  # created_at is taken when the row is written
    set_clock(None)


def test_an_api_change_is_listed_in_lagos_shape(api_client, org):
    created = upsert(api_client, external_id="acme", name="Acme")
    api_key = db.session.scalar(select(ApiKey).where(ApiKey.organization_id == org.id))

    body = logs(api_client)

    item = body["activity_logs"][0]
    assert list(item) == FIELDS
    assert item["activity_type"] == "customer.created"
    assert item["activity_source"] == "api"
    assert item["resource_type"] == "Customer"
    assert item["resource_id"] == created["lago_id"]
    assert item["external_customer_id"] == "acme"
    assert item["external_subscription_id"] is None
    assert item["user_email"] is None
    assert item["api_key_id"] == str(api_key.lago_id)
    assert item["activity_object_changes"]["name"] == [None, "Acme"]
    assert item["activity_object"]["name"] == "Acme"
    assert ISO_UTC_SECONDS.match(item["logged_at"]) and item["logged_at"] == item["created_at"]
    # The official SDK reads it as it reads Lago's.
    assert ActivityLogResponse.parse_obj(item).activity_id == item["activity_id"]
    assert body["meta"] == {"current_page": 1, "next_page": None, "prev_page": None,
                            "total_pages": 1, "total_count": 2}  # fmt: skip
    assert types(body) == ["customer.created", "api_key.created"]


def test_console_changes_are_front_with_the_agents_email_and_others_are_system(
    api_client, agent_client, org
):
    customer = factories.make_customer(org, external_id="acme")
    agent_client.post("/settings", data={
        "name": org.name, "timezone": "Europe/Paris", "document_locale": "en",
        "invoice_grace_period": "0", "net_payment_term": "0", "brand_color": "#2f5bd3",
        "finalize_zero_amount_invoice": "finalize",
    })  # fmt: skip
    portal = audit.Actor(type="portal", source="portal", label="portal")
    record(org, portal, "customer.updated", T0, resource_type="customer",
           resource_id=str(customer.lago_id), customer_id=customer.id)  # fmt: skip

    items = {item["activity_type"]: item for item in logs(api_client)["activity_logs"]}

    updated = items["organization.updated"]
    assert (updated["activity_source"], updated["user_email"]) == (
        "front",
        agent_client.agent.email,
    )
    assert updated["resource_type"] == "Organization"
    assert updated["activity_object_changes"] == {"timezone": ["UTC", "Europe/Paris"]}
    assert items["agent.created"]["activity_source"] == "system"  # made by the test set-up
    assert items["customer.updated"]["activity_source"] == "system"
    assert items["api_key.created"]["resource_type"] == "ApiKey"


@pytest.fixture
def history(api_client, agent_client, org):
    """Entries from the API, the console and the system over four days."""
    set_clock(lambda: T0)
    upsert(api_client, external_id="acme", name="Acme")
    set_clock(lambda: T0 + timedelta(days=1))
    upsert(api_client, external_id="globex", name="Globex")
    upsert(api_client, external_id="acme", name="Acme Inc")
    set_clock(None)
    console = audit.Actor(type="agent", source="console", id=str(agent_client.agent.lago_id),
                          label=agent_client.agent.email)  # fmt: skip
    record(org, console, "organization.updated", T0 + timedelta(days=2),
           changes={"net_payment_term": [0, 30]})  # fmt: skip
    record(org, factories.TEST_ACTOR, "organization.updated", T0 + timedelta(days=3))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?activity_types[]=customer.updated", ["customer.updated"]),
        ("?activity_types[]=customer.updated&activity_types[]=organization.updated",
         ["organization.updated", "organization.updated", "customer.updated"]),
        ("?activity_types=customer.created,customer.updated",
         ["customer.updated", "customer.created", "customer.created"]),
        ("?activity_sources[]=front", ["organization.updated"]),
        ("?activity_sources[]=api&resource_types[]=Customer",
         ["customer.updated", "customer.created", "customer.created"]),
        ("?activity_sources[]=system&activity_types[]=organization.updated",
         ["organization.updated"]),
        ("?user_emails[]={email}", ["organization.updated"]),
        ("?user_emails[]=nobody@example.com", []),
        ("?external_customer_id=acme", ["customer.updated", "customer.created"]),
        ("?external_customer_id=acme&from_date=2026-03-11", ["customer.updated"]),
        ("?resource_types[]=organization", ["organization.updated", "organization.updated"]),
        ("?from_date=2026-03-11&to_date=2026-03-12",
         ["organization.updated", "customer.updated", "customer.created"]),
        ("?from_date=2026-03-12T12:00:00Z&to_date=2026-03-12T12:00:00Z", ["organization.updated"]),
        ("?to_date=2026-03-12T11:59:59%2B00:00&activity_types[]=organization.updated", []),
        ("?to_date=2026-03-10T13:59:59 02:00&activity_types[]=customer.created", []),
        ("?to_date=2026-03-10T14:00:00 02:00&activity_types[]=customer.created",
         ["customer.created"]),
        ("?external_subscription_id=sub-1", []),
    ],
)  # fmt: skip
def test_filters(api_client, agent_client, history, query, expected):
    query = query.replace("{email}", agent_client.agent.email.upper())
    assert types(logs(api_client, query)) == expected


def test_filter_by_resource_id(api_client, history):
    acme = api_client.get("/api/v1/customers/acme").json["customer"]

    body = logs(api_client, f"?resource_ids[]={acme['lago_id']}")

    assert types(body) == ["customer.updated", "customer.created"]
    assert {item["resource_id"] for item in body["activity_logs"]} == {acme["lago_id"]}


@pytest.mark.parametrize(
    ("query", "details"),
    [
        ("?from_date=yesterday", {"from_date": ["invalid_date"]}),
        ("?to_date=2026-13-01", {"to_date": ["invalid_date"]}),
        # before year 1 or after 9999 in UTC: was a 500 (OverflowError)
        ("?from_date=0001-01-01T00:00:00%2B05:00", {"from_date": ["invalid_date"]}),
        ("?to_date=9999-12-31T23:59:59Z", {"to_date": ["invalid_date"]}),
        ("?to_date=9999-12-31", {"to_date": ["invalid_date"]}),
        ("?activity_sources[]=console", {"activity_sources": ["value_is_invalid"]}),
    ],
)
def test_bad_filters_are_lagos_422(api_client, query, details):
    response = api_client.get(f"/api/v1/activity_logs{query}")

    assert response.status_code == 422
    assert response.json == {"status": 422, "error": "Unprocessable Entity",
                             "code": "validation_errors", "error_details": details}  # fmt: skip


def test_pagination_meta(api_client, history):
    first = logs(api_client, "?per_page=3")
    last = logs(api_client, "?per_page=3&page=3")
    beyond = logs(api_client, "?per_page=3&page=9")

    assert first["meta"] == {"current_page": 1, "next_page": 2, "prev_page": None,
                             "total_pages": 3, "total_count": 7}  # fmt: skip
    assert len(first["activity_logs"]) == 3
    assert last["meta"]["next_page"] is None and last["meta"]["prev_page"] == 2
    all_ids = [i["activity_id"] for i in logs(api_client)["activity_logs"]]
    assert [i["activity_id"] for i in last["activity_logs"]] == all_ids[6:]
    assert beyond["activity_logs"] == [] and beyond["meta"]["total_count"] == 7


def test_show_one_entry(api_client, org):
    upsert(api_client, external_id="acme", name="Acme")
    item = logs(api_client)["activity_logs"][0]

    response = api_client.get(f"/api/v1/activity_logs/{item['activity_id']}")

    assert response.status_code == 200
    assert response.json == {"activity_log": item}


@pytest.mark.parametrize("activity_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_an_unknown_entry_is_lagos_404(api_client, activity_id):
    response = api_client.get(f"/api/v1/activity_logs/{activity_id}")

    assert response.status_code == 404
    assert response.json == {"status": 404, "error": "Not Found", "code": "activity_log_not_found"}


def test_another_organizations_entries_never_appear(api_client, org):
    other = factories.make_organization()
    other_key = factories.make_api_key(other)
    factories.make_customer(other, external_id="acme", name="Theirs")
    upsert(api_client, external_id="acme", name="Ours")
    from tests.conftest import ApiClient

    theirs = logs(ApiClient(api_client.client, other_key))["activity_logs"]
    ours = logs(api_client)

    assert ours["meta"]["total_count"] == 2  # our key and our customer
    assert "Theirs" not in str(ours)
    assert types(logs(api_client, "?external_customer_id=acme")) == ["customer.created"]
    for item in theirs:
        response = api_client.get(f"/api/v1/activity_logs/{item['activity_id']}")
        assert response.status_code == 404


def test_a_revoked_or_missing_key_gets_401(client, api_client, org):
    assert client.get("/api/v1/activity_logs").status_code == 401
    api_key = db.session.scalar(select(ApiKey).where(ApiKey.organization_id == org.id))
    from billing.services.organizations import revoke_api_key

    revoke_api_key(api_key, factories.TEST_ACTOR)

    response = api_client.get("/api/v1/activity_logs")
    assert response.status_code == 401
    assert response.json == {"status": 401, "error": "Unauthorized"}


def test_subscription_entries_carry_and_filter_by_the_external_subscription_id(api_client, org):
    factories.make_plan(org, code="basic")
    api_client.post(
        "/api/v1/subscriptions",
        json={"subscription": {"external_customer_id": "acme", "plan_code": "basic",
                               "external_id": "sub-acme"}},
    )  # fmt: skip
    api_client.delete("/api/v1/subscriptions/sub-acme")

    body = logs(api_client, "?external_subscription_id=sub-acme")

    assert types(body) == ["subscription.terminated", "subscription.started",
                           "subscription.created"]  # fmt: skip
    assert {item["external_subscription_id"] for item in body["activity_logs"]} == {"sub-acme"}
    assert types(logs(api_client, "?external_subscription_id=sub-other")) == []
