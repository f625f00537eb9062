"""/api/v1/customers: Lago's upsert semantics, filters, soft delete, and its error shapes."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from billing.models import ActivityLog, ApiKey, Customer, OutboxEvent
from billing.services import customers as customer_service
from billing.timeutil import set_clock
from tests import factories
from tests.conftest import ApiClient

CUSTOMER_KEYS = {
    "lago_id", "external_id", "sequential_id", "slug", "billing_entity_code", "account_type",
    "name", "firstname", "lastname", "customer_type", "email", "phone", "url", "logo_url",
    "legal_name", "legal_number", "tax_identification_number", "address_line1", "address_line2",
    "city", "state", "zipcode", "country", "currency", "timezone", "applicable_timezone",
    "net_payment_term", "external_salesforce_id", "finalize_zero_amount_invoice",
    "skip_invoice_custom_sections", "created_at", "updated_at", "billing_configuration",
    "shipping_address", "metadata", "taxes", "integration_customers",
    "applicable_invoice_custom_sections", "error_details",
}  # fmt: skip

FULL_PAYLOAD = {
    "external_id": "hooli-1",
    "name": "Gavin Belson",
    "firstname": "Gavin",
    "lastname": "Belson",
    "customer_type": "company",
    "email": "gavin@hooli.test",
    "phone": "1-171-883-3711",
    "url": "http://hooli.com",
    "legal_name": "Hooli Inc.",
    "legal_number": "49-008-2965",
    "tax_identification_number": "EU123456789",
    "address_line1": "5230 Penfield Ave",
    "city": "Woodland Hills",
    "state": "CA",
    "zipcode": "91364",
    "country": "us",
    "currency": "USD",
    "timezone": "America/Los_Angeles",
    "net_payment_term": 30,
    "external_salesforce_id": "0015g00000XyZ",
    "billing_configuration": {
        "invoice_grace_period": 3,
        "document_locale": "fr",
        "payment_provider": "stripe",
        "provider_customer_id": "cus_12345",
        "sync": True,
        "sync_with_provider": True,
    },
    "shipping_address": {"address_line1": "1 Main St", "city": "Austin", "country": "us"},
    "metadata": [{"key": "Name", "value": "John", "display_in_invoice": True}],
    "integration_customers": [
        {"integration_type": "hubspot", "integration_code": "hs", "external_customer_id": "hs-9"}
    ],
    "tax_codes": [],
}


def upsert(api_client, **fields):
    return api_client.post("/api/v1/customers", json={"customer": fields})


def count(model, *where):
    from extensions import db

    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- create and upsert ---------------------------------------------------------------------


def test_create_returns_every_field_of_lagos_customer_object(api_client, org):
    response = upsert(api_client, **FULL_PAYLOAD)

    assert response.status_code == 200
    customer = response.get_json()["customer"]
    assert set(customer) >= CUSTOMER_KEYS
    assert customer["external_id"] == "hooli-1"
    assert customer["country"] == "US"
    assert customer["shipping_address"]["country"] == "US"
    assert customer["applicable_timezone"] == "America/Los_Angeles"
    assert customer["billing_configuration"]["document_locale"] == "fr"
    assert customer["billing_configuration"]["invoice_grace_period"] == 3
    assert customer["billing_configuration"]["provider_customer_id"] == "cus_12345"
    assert customer["metadata"][0]["key"] == "Name"
    assert customer["metadata"][0]["display_in_invoice"] is True
    assert customer["metadata"][0]["lago_id"]
    assert customer["integration_customers"][0]["external_customer_id"] == "hs-9"
    assert customer["finalize_zero_amount_invoice"] == "inherit"
    assert customer["taxes"] == []
    assert customer["created_at"].endswith("Z")


def test_billing_entity_and_invoice_custom_sections_are_accepted_and_echoed_empty(api_client):
    """Billing entities and invoice custom sections are out of scope (lago-api.md, deviations): a
    payload naming them is accepted, and the customer shows no entity and no sections."""
    response = upsert(
        api_client,
        external_id="acme",
        billing_entity_code="eu-entity",
        invoice_custom_section_codes=["bank_details", "footer"],
        skip_invoice_custom_sections=True,
    )

    assert response.status_code == 200, response.get_json()
    for customer in (
        response.get_json()["customer"],
        api_client.get("/api/v1/customers/acme").get_json()["customer"],
    ):
        assert customer["billing_entity_code"] is None
        assert customer["applicable_invoice_custom_sections"] == []
        assert customer["skip_invoice_custom_sections"] is True


@pytest.mark.parametrize(
    "fields",
    [
        {"billing_entity_code": 7},
        {"invoice_custom_section_codes": "footer"},
        {"invoice_custom_section_codes": [1, 2]},
    ],
)
def test_billing_entity_and_custom_section_codes_of_the_wrong_type_are_422(api_client, fields):
    response = upsert(api_client, external_id="acme", **fields)

    assert response.status_code == 422
    assert response.get_json()["error_details"] == {next(iter(fields)): ["value_is_invalid"]}
    assert api_client.get("/api/v1/customers/acme").status_code == 404


def test_slug_and_sequential_id_count_per_organization(api_client, org):
    first = upsert(api_client, external_id="a").get_json()["customer"]
    second = upsert(api_client, external_id="b").get_json()["customer"]
    other_org = factories.make_organization()
    elsewhere = factories.make_customer(other_org)

    assert (first["sequential_id"], second["sequential_id"]) == (1, 2)
    assert elsewhere.sequential_id == 1
    prefix = org.name.upper().replace(" ", "")[:3]
    assert first["slug"] == f"{prefix}-{org.lago_id.hex[-4:].upper()}-001"


def test_upsert_updates_only_the_fields_sent(api_client):
    upsert(api_client, **FULL_PAYLOAD)

    response = upsert(api_client, external_id="hooli-1", city="Palo Alto", phone=None)

    customer = response.get_json()["customer"]
    assert customer["city"] == "Palo Alto"
    assert customer["phone"] is None  # explicit null clears
    assert customer["name"] == "Gavin Belson"  # absent key keeps its value
    assert customer["billing_configuration"]["document_locale"] == "fr"
    assert [m["key"] for m in customer["metadata"]] == ["Name"]


def test_billing_configuration_keys_are_written_one_by_one(api_client):
    upsert(api_client, **FULL_PAYLOAD)

    response = upsert(
        api_client, external_id="hooli-1", billing_configuration={"invoice_grace_period": 7}
    )

    config = response.get_json()["customer"]["billing_configuration"]
    assert config["invoice_grace_period"] == 7
    assert config["document_locale"] == "fr"


def test_metadata_items_are_updated_by_id_created_without_and_deleted_when_unlisted(api_client):
    created = upsert(
        api_client,
        external_id="m1",
        metadata=[{"key": "keep", "value": "1"}, {"key": "drop", "value": "2"}],
    ).get_json()["customer"]
    keep = next(m for m in created["metadata"] if m["key"] == "keep")

    updated = upsert(
        api_client,
        external_id="m1",
        metadata=[
            {"id": keep["lago_id"], "key": "keep", "value": "changed", "display_in_invoice": True},
            {"key": "new", "value": "3"},
        ],
    ).get_json()["customer"]

    items = {m["key"]: m for m in updated["metadata"]}
    assert set(items) == {"keep", "new"}
    assert items["keep"]["lago_id"] == keep["lago_id"]
    assert items["keep"]["value"] == "changed"
    assert items["keep"]["display_in_invoice"] is True


def test_a_removed_metadata_key_can_come_back_as_a_new_item(api_client):
    upsert(api_client, external_id="m2", metadata=[{"key": "tier", "value": "gold"}])

    response = upsert(api_client, external_id="m2", metadata=[{"key": "tier", "value": "silver"}])

    assert response.status_code == 200
    assert [(m["key"], m["value"]) for m in response.get_json()["customer"]["metadata"]] == [
        ("tier", "silver")
    ]


def test_empty_metadata_list_removes_all_and_absent_key_keeps_them(api_client):
    upsert(api_client, external_id="m3", metadata=[{"key": "a", "value": "1"}])

    kept = upsert(api_client, external_id="m3", name="x").get_json()["customer"]
    cleared = upsert(api_client, external_id="m3", metadata=[]).get_json()["customer"]

    assert len(kept["metadata"]) == 1
    assert cleared["metadata"] == []


def test_applicable_timezone_falls_back_to_organization_then_utc(api_client, org):
    assert (
        upsert(api_client, external_id="t1").get_json()["customer"]["applicable_timezone"] == "UTC"
    )
    org.timezone = "Europe/Paris"
    customer = upsert(api_client, external_id="t2").get_json()["customer"]
    assert customer["timezone"] is None
    assert customer["applicable_timezone"] == "Europe/Paris"


def test_a_failed_upsert_changes_nothing(api_client):
    upsert(api_client, external_id="safe", name="Before", metadata=[{"key": "k", "value": "v"}])
    events_before = count(OutboxEvent)
    logs_before = count(ActivityLog)

    response = upsert(api_client, external_id="safe", name="After", metadata=[], currency="NOPE")

    assert response.status_code == 422
    customer = api_client.get("/api/v1/customers/safe").get_json()["customer"]
    assert customer["name"] == "Before"
    assert len(customer["metadata"]) == 1
    assert count(OutboxEvent) == events_before
    assert count(ActivityLog) == logs_before


def test_a_failed_create_creates_nothing(api_client, org):
    response = upsert(api_client, external_id="never", country="ZZ")

    assert response.status_code == 422
    assert api_client.get("/api/v1/customers/never").status_code == 404
    assert count(Customer, Customer.organization_id == org.id) == 0


def test_currency_is_locked_once_something_is_attached(api_client, monkeypatch):
    upsert(api_client, external_id="locked", currency="EUR")
    monkeypatch.setattr(customer_service, "customer_has_attachments", lambda customer: True)

    response = upsert(api_client, external_id="locked", currency="USD")
    same = upsert(api_client, external_id="locked", currency="EUR", name="ok")

    assert response.status_code == 422
    assert response.get_json()["error_details"] == {"currency": ["value_is_immutable"]}
    assert same.status_code == 200


def test_currency_can_change_while_nothing_is_attached(api_client):
    upsert(api_client, external_id="free", currency="EUR")
    assert upsert(api_client, external_id="free", currency="USD").status_code == 200


# --- outbox and audit ------------------------------------------------------------------------


def test_changes_write_outbox_events_and_audit_entries_with_diffs(api_client, org):
    upsert(api_client, external_id="audited", name="Old")
    upsert(api_client, external_id="audited", name="New")
    upsert(api_client, external_id="audited", name="New")  # no change, no event
    api_client.delete("/api/v1/customers/audited")

    from extensions import db

    events = db.session.scalars(
        select(OutboxEvent).where(OutboxEvent.organization_id == org.id).order_by(OutboxEvent.id)
    ).all()
    assert [e.event_type for e in events] == [
        "customer.created",
        "customer.updated",
        "customer.deleted",
    ]
    assert events[1].payload["name"] == "New"
    assert events[2].payload["external_id"] == "audited"

    logs = db.session.scalars(
        select(ActivityLog)
        .where(ActivityLog.organization_id == org.id, ActivityLog.resource_type == "customer")
        .order_by(ActivityLog.id)
    ).all()
    assert [log.activity_type for log in logs] == [
        "customer.created",
        "customer.updated",
        "customer.deleted",
    ]
    assert logs[1].changes == {"name": ["Old", "New"]}
    assert logs[1].actor_type == "api_key"
    assert logs[1].source == "api"


# --- show, list, delete ----------------------------------------------------------------------


def test_show_unknown_customer_is_404_customer_not_found(api_client):
    response = api_client.get("/api/v1/customers/nobody")
    assert response.status_code == 404
    assert response.get_json() == {
        "status": 404,
        "error": "Not Found",
        "code": "customer_not_found",
    }


def test_another_organizations_customer_is_not_found(api_client):
    factories.make_customer(factories.make_organization(), external_id="theirs")

    assert api_client.get("/api/v1/customers/theirs").status_code == 404
    assert api_client.delete("/api/v1/customers/theirs").status_code == 404
    assert api_client.get("/api/v1/customers").get_json()["customers"] == []


def test_list_is_newest_first_with_lago_pagination_meta(api_client, org):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(5):
        set_clock(lambda i=i: start + timedelta(minutes=i))
        factories.make_customer(org, external_id=f"c{i}")

    page1 = api_client.get("/api/v1/customers?per_page=2").get_json()
    page3 = api_client.get("/api/v1/customers?per_page=2&page=3").get_json()

    assert [c["external_id"] for c in page1["customers"]] == ["c4", "c3"]
    assert page1["meta"] == {
        "current_page": 1, "next_page": 2, "prev_page": None, "total_pages": 3, "total_count": 5,
    }  # fmt: skip
    assert [c["external_id"] for c in page3["customers"]] == ["c0"]
    assert page3["meta"]["next_page"] is None
    assert page3["meta"]["prev_page"] == 2


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?search_term=hooli",  # the matches first, then their page
        "?search_term=hooli&per_page=1&page=2",  # many matches: a walk in list order
        "?per_page=2&page=3",
        "?metadata[tier]=v1",
    ],
)
def test_a_listed_customer_is_exactly_the_shown_customer(api_client, org, query):
    """Lists read customers as rows, the show endpoint as models: the JSON is the same."""
    upsert(api_client, **FULL_PAYLOAD)
    second = dict(
        FULL_PAYLOAD,
        external_id="hooli-2",
        metadata=[
            {"key": key, "value": f"v{n}", "display_in_invoice": n % 2 == 0}
            for n, key in enumerate(["zeta", "tier", "alpha"])
        ],
        integration_customers=[
            {"integration_type": "netsuite", "integration_code": "ns", "subsidiary_id": "7",
             "external_customer_id": "ns-1", "sync_with_provider": True},
            {"integration_type": "hubspot", "integration_code": "hs", "external_customer_id": "h"},
        ],
    )  # fmt: skip
    upsert(api_client, **second)
    upsert(api_client, external_id="hooli-bare", name="Hooli Bare")
    for n in range(40):
        factories.make_customer(org, external_id=f"hooli-{n + 3}", name=f"Hooli {n}")
    api_client.post(
        "/api/v1/customers", json={"customer": {"external_id": "gone", "name": "Hooli"}}
    )
    api_client.delete("/api/v1/customers/gone")

    listed = api_client.get(f"/api/v1/customers{query}").get_json()["customers"]

    assert listed
    for customer in listed:
        shown = api_client.get(f"/api/v1/customers/{customer['external_id']}").get_json()
        assert json.dumps(customer, sort_keys=True) == json.dumps(shown["customer"], sort_keys=True)


def test_empty_list_has_current_page_zero(api_client):
    body = api_client.get("/api/v1/customers").get_json()
    assert body == {
        "customers": [],
        "meta": {
            "current_page": 0, "next_page": None, "prev_page": None,
            "total_pages": 0, "total_count": 0,
        },
    }  # fmt: skip


def test_a_nul_character_is_refused_before_the_database_sees_it(api_client, org):
    """PostgreSQL cannot store or compare text with a NUL: these were 500s there (the fuzzer)."""
    factories.make_customer(org, external_id="acme")

    in_query = api_client.get("/api/v1/customers?search_term=a%00b")
    in_path = api_client.get("/api/v1/customers/acme%00")
    in_body = api_client.post("/api/v1/customers", json={"customer": {"external_id": "a\x00"}})
    in_key = api_client.post(
        "/api/v1/customers", json={"customer": {"external_id": "b", "metadata": [{"key": "\x00"}]}}
    )
    in_utf16 = api_client.post(  # JSON in UTF-16, which the json module reads too
        "/api/v1/customers",
        data=json.dumps({"customer": {"external_id": "c\x00"}}).encode("utf-16"),
        content_type="application/json",
    )
    # a backslash followed by "u0000" is text, not a NUL
    escaped = api_client.post(
        "/api/v1/customers", json={"customer": {"external_id": "d", "name": "d\\u0000"}}
    )

    assert (in_query.status_code, in_query.get_json()["error_details"]) == (
        422,
        {"search_term": ["value_is_invalid"]},
    )
    assert in_path.get_json() == {"status": 404, "error": "Not Found", "code": "resource_not_found"}
    for response in (in_body, in_key, in_utf16):
        assert response.get_json() == {
            "status": 400,
            "error": "BadRequest: request body contains a NUL character",
        }
    assert escaped.get_json()["customer"]["name"] == "d\\u0000"
    assert api_client.get("/api/v1/customers").get_json()["meta"]["total_count"] == 2


def test_a_page_beyond_any_database_integer_is_an_empty_page(api_client, org):
    """The offset of such a page overflowed the database integer: a 500 (found by the fuzzer)."""
    factories.make_customer(org)
    response = api_client.get(f"/api/v1/customers?page={10**25}")

    assert response.status_code == 200
    body = response.get_json()
    assert body["customers"] == []
    assert body["meta"]["total_count"] == 1


@pytest.fixture
def varied_customers(org):
    factories.make_customer(
        org, external_id="fr-co", country="FR", currency="EUR", customer_type="company",
        state="IDF", zipcode="75001", tax_identification_number="FR123",
        metadata=[{"key": "tier", "value": "gold"}],
    )  # fmt: skip
    factories.make_customer(
        org, external_id="de-ind", country="DE", currency="EUR", customer_type="individual",
        metadata=[{"key": "tier", "value": "silver"}],
    )  # fmt: skip
    factories.make_customer(org, external_id="us-none", country="US", currency="USD")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("external_id=de-ind", {"de-ind"}),
        ("customer_type=company", {"fr-co"}),
        ("has_customer_type=false", {"us-none"}),
        ("has_customer_type=true", {"fr-co", "de-ind"}),
        ("countries[]=FR&countries[]=us", {"fr-co", "us-none"}),
        ("currencies[]=EUR", {"fr-co", "de-ind"}),
        ("states[]=IDF", {"fr-co"}),
        ("zipcodes[]=75001", {"fr-co"}),
        ("has_tax_identification_number=true", {"fr-co"}),
        ("has_tax_identification_number=false", {"de-ind", "us-none"}),
        ("metadata[tier]=gold", {"fr-co"}),
        ("metadata[tier]=", {"us-none"}),
        ("account_type[]=customer", {"fr-co", "de-ind", "us-none"}),
        ("currencies[]=EUR&customer_type=individual", {"de-ind"}),
        ("search_term=silver", {"de-ind"}),
        ("external_id=fr-co&search_term=silver", {"fr-co"}),  # external_id wins
    ],
)
def test_list_filters(api_client, varied_customers, query, expected):
    response = api_client.get(f"/api/v1/customers?{query}")

    assert response.status_code == 200
    body = response.get_json()
    assert {c["external_id"] for c in body["customers"]} == expected
    assert body["meta"]["total_count"] == len(expected)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("customer_type=alien", "customer_type"),
        ("has_customer_type=maybe", "has_customer_type"),
        ("has_tax_identification_number=perhaps", "has_tax_identification_number"),
        ("account_type[]=reseller", "account_type"),
    ],
)
def test_invalid_filters_are_422(api_client, query, field):
    response = api_client.get(f"/api/v1/customers?{query}")
    assert response.status_code == 422
    assert response.get_json()["error_details"] == {field: ["value_is_invalid"]}


def test_unknown_billing_entity_filter_is_404(api_client):
    response = api_client.get("/api/v1/customers?billing_entity_codes[]=eu")
    assert response.status_code == 404
    assert response.get_json()["code"] == "billing_entity_not_found"


def test_delete_is_soft_and_the_external_id_can_be_reused(api_client):
    original = upsert(
        api_client, external_id="again", name="First", metadata=[{"key": "k", "value": "v"}]
    ).get_json()["customer"]

    deleted = api_client.delete("/api/v1/customers/again")

    assert deleted.status_code == 200
    assert deleted.get_json()["customer"]["lago_id"] == original["lago_id"]
    assert deleted.get_json()["customer"]["deleted_at"] is not None
    assert api_client.get("/api/v1/customers/again").status_code == 404
    assert api_client.get("/api/v1/customers").get_json()["customers"] == []
    assert count(Customer, Customer.lago_id == uuid.UUID(original["lago_id"])) == 1  # still stored

    recreated = upsert(api_client, external_id="again", name="Second").get_json()["customer"]
    assert recreated["lago_id"] != original["lago_id"]
    assert recreated["sequential_id"] == original["sequential_id"] + 1
    assert recreated["metadata"] == []


def test_deleting_twice_is_404_the_second_time(api_client):
    upsert(api_client, external_id="gone")
    assert api_client.delete("/api/v1/customers/gone").status_code == 200
    assert api_client.delete("/api/v1/customers/gone").status_code == 404


# --- transport errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        ('{"name": "x"}', "application/json",
         "BadRequest: param is missing or the value is empty or invalid: customer"),
        ('{"customer": "x"}', "application/json",
         "BadRequest: param is missing or the value is empty or invalid: customer"),
        ("[1, 2]", "application/json",
         "BadRequest: param is missing or the value is empty or invalid: customer"),
        ("", "application/json", "BadRequest: request body is empty"),
        ("{not json", "application/json", "BadRequest: request body is not valid JSON"),
        ("customer=x", "application/x-www-form-urlencoded",
         "BadRequest: request body is not valid JSON"),
    ],
)  # fmt: skip
def test_bad_bodies_are_400_json(api_client, org, body, content_type, error):
    response = api_client.post("/api/v1/customers", data=body, content_type=content_type)
    assert response.status_code == 400
    assert response.get_json() == {"status": 400, "error": error}
    assert count(Customer, Customer.organization_id == org.id) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer ll_wrong_key_that_does_not_exist"},
        {"Authorization": "Bearer  two-spaces"},
    ],
)
def test_missing_or_wrong_key_is_exactly_lagos_401(client, org, headers):
    for method, url in [("get", "/api/v1/customers"), ("post", "/api/v1/customers"),
                        ("get", "/api/v1/customers/unknown")]:  # fmt: skip
        response = getattr(client, method)(url, headers=headers, json={"customer": {}})
        assert response.status_code == 401
        assert response.get_json() == {"status": 401, "error": "Unauthorized"}


def test_the_scheme_word_is_not_checked_like_lago(client, org):
    raw_key = factories.make_api_key(org)
    response = client.get("/api/v1/customers", headers={"Authorization": f"Token {raw_key}"})
    assert response.status_code == 200


def test_a_revoked_key_is_refused(client, org):
    from billing.services.organizations import authenticate_api_key, revoke_api_key

    raw_key = factories.make_api_key(org)
    revoke_api_key(authenticate_api_key(raw_key), factories.TEST_ACTOR)
    response = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {raw_key}"})
    assert response.status_code == 401


def test_api_key_last_use_is_written_at_most_once_a_minute(client, org):
    raw_key = factories.make_api_key(org)
    api = ApiClient(client, raw_key)
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    from extensions import db

    def last_used():
        db.session.expire_all()
        return db.session.scalar(select(ApiKey.last_used_at).where(ApiKey.prefix == raw_key[:12]))

    set_clock(lambda: t0)
    api.get("/api/v1/customers")
    assert last_used() == t0
    set_clock(lambda: t0 + timedelta(seconds=30))
    api.get("/api/v1/customers")
    assert last_used() == t0
    set_clock(lambda: t0 + timedelta(seconds=61))
    api.get("/api/v1/customers")
    assert last_used() == t0 + timedelta(seconds=61)


def test_unknown_routes_are_json_404_without_authentication(client):
    for url in ("/api/v1/nothing", "/api/v1/customers/a/b/c", "/api/v2/customers", "/api"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.get_json() == {
            "status": 404, "error": "Not Found", "code": "resource_not_found",
        }  # fmt: skip


def test_trailing_slash_is_not_redirected(api_client):
    response = api_client.get("/api/v1/customers/")
    assert response.status_code == 404
    assert response.is_json


def test_wrong_method_is_json_405(api_client):
    response = api_client.put("/api/v1/customers", json={})
    assert response.status_code == 405
    assert response.get_json()["status"] == 405
    assert "GET" in response.headers["Allow"]


def test_an_unexpected_failure_is_json_500_without_a_stack_trace(api_client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(customer_service, "list_customers", explode)

    response = api_client.get("/api/v1/customers")

    assert response.status_code == 500
    assert response.get_json() == {"status": 500, "error": "Internal Server Error"}
    assert b"on fire" not in response.data


def test_too_large_body_is_json_413(api_client):
    response = api_client.post(
        "/api/v1/customers", data="x" * (11 * 1024 * 1024), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json()["status"] == 413
