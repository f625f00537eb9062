"""/api/v1/invoices and the customer's invoices and past usage: shapes, filters, actions and
Lago's exact error codes; nothing changes on an error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import Invoice, OutboxEvent
from billing.services import invoicing
from billing.timeutil import set_clock
from extensions import db
from tests import factories
from tests.factories import invoices_of

INVOICE_NOT_FOUND = {"status": 404, "error": "Not Found", "code": "invoice_not_found"}
#: every key of Lago's invoice object in a list (lago-api.md §10.1)
LIST_KEYS = {
    "lago_id", "billing_entity_code", "sequential_id", "number", "issuing_date",
    "payment_due_date", "net_payment_term", "invoice_type", "status", "payment_status",
    "payment_dispute_lost_at", "payment_overdue", "purchase_order_number", "currency",
    "fees_amount_cents", "coupons_amount_cents", "taxes_amount_cents",
    "credit_notes_amount_cents", "progressive_billing_credit_amount_cents",
    "sub_total_excluding_taxes_amount_cents", "sub_total_including_taxes_amount_cents",
    "total_amount_cents", "total_due_amount_cents", "total_paid_amount_cents",
    "total_offsetted_credit_note_amount_cents", "prepaid_credit_amount_cents",
    "prepaid_granted_credit_amount_cents", "prepaid_purchased_credit_amount_cents",
    "file_url", "xml_url", "web_url", "version_number", "self_billed", "created_at",
    "updated_at", "voided_at", "customer", "metadata", "applied_taxes",
    "applied_invoice_custom_sections", "error_details",
}  # fmt: skip
SHOW_KEYS = LIST_KEYS | {
    "billing_periods", "subscriptions", "fees", "credits", "applied_usage_thresholds",
}  # fmt: skip


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def billed(db_session: Any, org: Any) -> dict[str, Any]:
    """Acme (no grace period): two finalized invoices, January and February, with usage.
    Globex (3 days of grace): a draft for January."""
    now = [at("2024-01-01T00:00:00")]
    set_clock(lambda: now[0])
    acme = factories.make_customer(org, external_id="acme", name="Acme Corp", currency="EUR")
    globex = factories.make_customer(
        org,
        external_id="globex",
        name="Globex",
        currency="EUR",
        billing_configuration={"invoice_grace_period": 3},
    )
    plan = factories.make_plan(org)
    acme_sub = factories.make_subscription(org, acme, plan, external_id="acme-sub")
    globex_sub = factories.make_subscription(org, globex, plan, external_id="globex-sub")
    factories.send_event(org, acme_sub, at("2024-01-10T00:00:00"), value=4)
    now[0] = at("2024-02-01T00:00:10")
    invoicing.close_periods()
    now[0] = at("2024-03-01T00:00:10")
    globex_sub.next_invoice_at = at("2099-01-01T00:00:00")  # only Acme's February is closed
    db.session.commit()
    invoicing.close_periods()
    invoices = invoices_of(org)
    acme_invoices = [i for i in invoices if i.customer_id == acme.id]
    [draft] = [i for i in invoices if i.customer_id == globex.id and i.status == "draft"]
    return {"acme": acme, "january": acme_invoices[0], "february": acme_invoices[1],
            "draft": draft, "clock": now}  # fmt: skip


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [invoice["lago_id"] for invoice in response.get_json()["invoices"]]


def test_list_shape_and_newest_first(api_client, billed):
    response = api_client.get("/api/v1/invoices")

    body = response.get_json()
    assert response.status_code == 200
    assert body["meta"]["total_count"] >= 3
    first = body["invoices"][0]
    assert set(first) == LIST_KEYS
    assert "taxes" not in first["customer"] and first["customer"]["applicable_timezone"]
    january = next(i for i in body["invoices"] if i["lago_id"] == str(billed["january"].lago_id))
    assert january["number"].endswith("-001") and january["sequential_id"] == 1
    assert (january["fees_amount_cents"], january["total_amount_cents"]) == (1200, 1200)
    assert january["total_due_amount_cents"] == 1200
    assert (january["status"], january["payment_status"], january["version_number"]) == (
        "finalized",
        "pending",
        4,
    )
    assert january["issuing_date"] == "2024-02-01"
    assert january["file_url"] is None and january["applied_taxes"] == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("external_customer_id=acme", ["february", "january"]),
        ("customer_external_id=acme", ["february", "january"]),
        ("external_customer_id=nobody", []),
        ("status=draft", ["draft"]),
        ("statuses[]=draft&statuses[]=voided", ["draft"]),
        ("external_customer_id=acme&payment_status=pending", ["february", "january"]),
        ("payment_statuses[]=succeeded", []),
        ("external_customer_id=acme&payment_overdue=false", ["february", "january"]),
        ("payment_overdue=true", []),
        ("external_customer_id=acme&invoice_type=subscription", ["february", "january"]),
        ("external_customer_id=acme&currency=usd", []),
        ("external_customer_id=acme&issuing_date_from=2024-03-01", ["february"]),
        ("external_customer_id=acme&issuing_date_to=2024-02-28", ["january"]),
        ("external_customer_id=acme&amount_from=1000&amount_to=1000", ["february"]),
        ("search_term=acme corp", ["february", "january"]),
        ("search_term=001-002", ["february"]),
    ],
)
def test_list_filters(api_client, billed, query, expected):
    response = api_client.get(f"/api/v1/invoices?{query}")

    assert ids(response) == [str(billed[name].lago_id) for name in expected]


@pytest.mark.parametrize(
    ("query", "details"),
    [
        ("status=paid", {"status": ["value_is_invalid"]}),
        ("payment_status=paid", {"payment_status": ["value_is_invalid"]}),
        ("payment_overdue=maybe", {"payment_overdue": ["value_is_invalid"]}),
        ("issuing_date_from=yesterday", {"issuing_date_from": ["invalid_date"]}),
        ("amount_to=ten", {"amount_to": ["value_is_invalid"]}),
        # beyond a database BIGINT: was a 500 (found by the fuzzer)
        (f"amount_to=-{10**22}", {"amount_to": ["value_is_invalid"]}),
        (f"amount_from={2**63}", {"amount_from": ["value_is_invalid"]}),
        ("self_billed=maybe", {"self_billed": ["value_is_invalid"]}),
        ("payment_dispute_lost=lost", {"payment_dispute_lost": ["value_is_invalid"]}),
        ("settlements[]=refund", {"settlements": ["value_is_invalid"]}),
        ("settlements[]=payment&settlements[]=cash", {"settlements": ["value_is_invalid"]}),
    ],
)
def test_list_refuses_unreadable_filters(api_client, billed, query, details):
    response = api_client.get(f"/api/v1/invoices?{query}")

    assert response.status_code == 422
    assert response.get_json()["error_details"] == details


@pytest.fixture
def settled(api_client: Any, billed: dict[str, Any]) -> dict[str, Any]:
    """`billed`, plus metadata on both of Acme's invoices, a partial payment of January's and a
    credit note offsetting part of February's."""
    for name, metadata in (("january", {"po": "A-1", "team": "ops"}), ("february", {"po": "B-2"})):
        items = [{"key": key, "value": value} for key, value in metadata.items()]
        response = api_client.put(
            f"/api/v1/invoices/{billed[name].lago_id}", json={"invoice": {"metadata": items}}
        )
        assert response.status_code == 200, response.get_json()
    payment = {"invoice_id": str(billed["january"].lago_id), "amount_cents": 500,
               "reference": "wire-1"}  # fmt: skip
    assert api_client.post("/api/v1/payments", json={"payment": payment}).status_code == 200
    fee = billed["february"].fees[0]
    credit_note = {"invoice_id": str(billed["february"].lago_id), "reason": "other",
                   "items": [{"fee_id": str(fee.lago_id), "amount_cents": 100}],
                   "offset_amount_cents": 100}  # fmt: skip
    response = api_client.post("/api/v1/credit_notes", json={"credit_note": credit_note})
    assert response.status_code == 200, response.get_json()
    return billed


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("metadata[po]=A-1", ["january"]),
        ("metadata[po]=a-1", []),
        ("metadata[po]=A-1&metadata[team]=ops", ["january"]),
        ("metadata[po]=B-2&metadata[team]=ops", []),
        ("metadata[nothing]=A-1", []),
        # an empty value: the key is absent (as the customers list)
        ("external_customer_id=acme&metadata[team]=", ["february"]),
        # Ledgerline has no self-billing, payment disputes nor purchase order numbers
        ("self_billed=true", []),
        ("external_customer_id=acme&self_billed=false", ["february", "january"]),
        ("payment_dispute_lost=true", []),
        ("external_customer_id=acme&payment_dispute_lost=false", ["february", "january"]),
        ("purchase_order_number=A-1", []),
        ("external_customer_id=acme&purchase_order_number=", ["february", "january"]),
        # settled by a recorded payment, by a credit note's offset
        ("settlements[]=payment", ["january"]),
        ("settlements=credit_note", ["february"]),
        ("settlements[]=payment&settlements[]=credit_note", ["february", "january"]),
        ("metadata[team]=ops&settlements[]=credit_note", []),
    ],
)
def test_list_filters_on_metadata_settlements_and_what_ledgerline_lacks(
    api_client, settled, query, expected
):
    response = api_client.get(f"/api/v1/invoices?{query}")

    assert ids(response) == [str(settled[name].lago_id) for name in expected]
    customer = api_client.get(f"/api/v1/customers/acme/invoices?{query}")
    assert ids(customer) == [str(settled[name].lago_id) for name in expected]


@pytest.mark.parametrize("path", ["/api/v1/invoices", "/api/v1/customers/acme/invoices"])
def test_a_billing_entity_filter_is_404_as_on_customers(api_client, billed, path):
    response = api_client.get(f"{path}?billing_entity_codes[]=main")

    assert (response.status_code, response.get_json()) == (
        404,
        {"status": 404, "error": "Not Found", "code": "billing_entity_not_found"},
    )


def test_show_has_fees_billing_periods_and_subscriptions(api_client, billed):
    response = api_client.get(f"/api/v1/invoices/{billed['january'].lago_id}")

    body = response.get_json()["invoice"]
    assert set(body) == SHOW_KEYS
    assert body["billing_periods"] == [
        {
            "lago_subscription_id": body["subscriptions"][0]["lago_id"],
            "external_subscription_id": "acme-sub",
            "lago_plan_id": body["billing_periods"][0]["lago_plan_id"],
            "subscription_from_datetime": "2024-01-01T00:00:00Z",
            "subscription_to_datetime": "2024-01-31T23:59:59Z",
            "charges_from_datetime": "2024-01-01T00:00:00Z",
            "charges_to_datetime": "2024-01-31T23:59:59Z",
            "invoicing_reason": "subscription_periodic",
        }
    ]
    base, usage = body["fees"]
    assert (base["item"]["type"], base["amount_cents"], base["units"]) == (
        "subscription",
        1000,
        "1.0",
    )
    assert (usage["item"]["type"], usage["amount_cents"], usage["units"]) == ("charge", 200, "4.0")
    assert usage["events_count"] == 1 and usage["precise_unit_amount"] == "0.5"
    assert (
        usage["from_date"] == "2024-01-01T00:00:00Z" and usage["to_date"] == "2024-01-31T23:59:59Z"
    )


@pytest.mark.parametrize("lago_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_unknown_invoices_are_404(api_client, billed, lago_id):
    for method, path in [
        ("get", ""),
        ("put", "/finalize"),
        ("put", "/refresh"),
        ("post", "/void"),
        ("post", "/download"),
    ]:
        response = getattr(api_client, method)(
            f"/api/v1/invoices/{lago_id}{path}", content_type="application/json"
        )
        assert (response.status_code, response.get_json()) == (404, INVOICE_NOT_FOUND)


def test_another_organizations_invoice_is_404(client, billed):
    other = factories.make_organization()
    headers = {"Authorization": f"Bearer {factories.make_api_key(other)}"}

    response = client.get(f"/api/v1/invoices/{billed['january'].lago_id}", headers=headers)

    assert (response.status_code, response.get_json()) == (404, INVOICE_NOT_FOUND)


def test_without_a_key_everything_is_401(client, billed):
    for path in ("/api/v1/invoices", "/api/v1/customers/acme/invoices"):
        response = client.get(path)
        assert (response.status_code, response.get_json()) == (
            401,
            {"status": 401, "error": "Unauthorized"},
        )


def outbox_count(event_type: str) -> int:
    return db.session.scalar(
        select(func.count(OutboxEvent.id)).where(OutboxEvent.event_type == event_type)
    )


def test_update_payment_status(api_client, billed):
    url = f"/api/v1/invoices/{billed['january'].lago_id}"
    before = outbox_count("invoice.payment_status_updated")

    response = api_client.put(url, json={"invoice": {"payment_status": "succeeded"}})

    body = response.get_json()["invoice"]
    assert response.status_code == 200
    assert (body["payment_status"], body["total_paid_amount_cents"]) == ("succeeded", 1200)
    assert body["total_due_amount_cents"] == 0
    assert outbox_count("invoice.payment_status_updated") == before + 1


@pytest.mark.parametrize(
    ("invoice", "payload", "status", "body"),
    [
        ("january", {"payment_status": "paid"}, 422,
         {"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
          "error_details": {"payment_status": ["value_is_invalid"]}}),
        ("draft", {"payment_status": "succeeded"}, 405,
         {"status": 405, "error": "Method Not Allowed",
          "code": "payment_status_update_on_draft_invoice"}),
        ("draft", {"metadata": [{"key": "po", "value": "1"}]}, 405,
         {"status": 405, "error": "Method Not Allowed", "code": "metadata_on_draft_invoice"}),
        ("january", {"metadata": [{"key": "", "value": "1"}]}, 422,
         {"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
          "error_details": {"key": ["value_is_mandatory"]}}),
    ],
)  # fmt: skip
def test_update_refusals_change_nothing(api_client, billed, invoice, payload, status, body):
    target = billed[invoice]
    response = api_client.put(f"/api/v1/invoices/{target.lago_id}", json={"invoice": payload})

    assert (response.status_code, response.get_json()) == (status, body)
    db.session.refresh(target)
    assert target.payment_status == "pending" and target.metadata_items == []


def test_update_without_the_root_key_is_400(api_client, billed):
    response = api_client.put(f"/api/v1/invoices/{billed['january'].lago_id}", json={})

    assert response.status_code == 400


def test_metadata_are_created_updated_and_removed(api_client, billed):
    url = f"/api/v1/invoices/{billed['january'].lago_id}"

    created = api_client.put(
        url,
        json={"invoice": {"metadata": [{"key": "po", "value": "123"}, {"key": "x", "value": "y"}]}},
    ).get_json()["invoice"]["metadata"]
    po = next(item for item in created if item["key"] == "po")
    updated = api_client.put(
        url, json={"invoice": {"metadata": [{"id": po["lago_id"], "key": "po", "value": "456"}]}}
    ).get_json()["invoice"]["metadata"]

    assert sorted(item["key"] for item in created) == ["po", "x"]
    assert set(po) == {"lago_id", "key", "value", "created_at"}
    assert [(m["lago_id"], m["value"]) for m in updated] == [(po["lago_id"], "456")]


def test_finalize_a_draft_numbers_it_and_a_second_time_is_404(api_client, billed):
    draft = billed["draft"]
    billed["clock"][0] = at("2024-02-02T09:00:00")

    response = api_client.put(
        f"/api/v1/invoices/{draft.lago_id}/finalize", content_type="application/json"
    )
    again = api_client.put(f"/api/v1/invoices/{draft.lago_id}/finalize")

    body = response.get_json()["invoice"]
    assert response.status_code == 200
    assert (body["status"], body["number"], body["issuing_date"]) == (
        "finalized",
        f"{draft.customer.slug}-001",
        "2024-02-02",
    )
    assert (again.status_code, again.get_json()) == (404, INVOICE_NOT_FOUND)


def test_refresh_recomputes_a_draft_and_leaves_others_alone(api_client, billed, org):
    draft = billed["draft"]
    subscription = draft.invoice_subscriptions[0].subscription
    factories.send_event(org, subscription, at("2024-01-20T00:00:00"), value=10)

    refreshed = api_client.put(f"/api/v1/invoices/{draft.lago_id}/refresh")
    untouched = api_client.put(f"/api/v1/invoices/{billed['january'].lago_id}/refresh")

    assert refreshed.get_json()["invoice"]["total_amount_cents"] == 1500
    assert untouched.status_code == 200
    assert untouched.get_json()["invoice"]["total_amount_cents"] == 1200


def test_void_a_finalized_invoice_once(api_client, billed):
    url = f"/api/v1/invoices/{billed['january'].lago_id}/void"

    response = api_client.post(url, content_type="application/json")
    again = api_client.post(url)
    draft = api_client.post(f"/api/v1/invoices/{billed['draft'].lago_id}/void")
    february = billed["february"]
    api_client.put(
        f"/api/v1/invoices/{february.lago_id}", json={"invoice": {"payment_status": "succeeded"}}
    )
    paid = api_client.post(f"/api/v1/invoices/{february.lago_id}/void")

    body = response.get_json()["invoice"]
    assert (body["status"], body["voided_at"] is not None) == ("voided", True)
    not_voidable = {"status": 405, "error": "Method Not Allowed", "code": "not_voidable"}
    assert (again.status_code, again.get_json()) == (405, not_voidable)
    assert (draft.status_code, draft.get_json()) == (405, not_voidable)
    assert (paid.status_code, paid.get_json()) == (405, not_voidable)  # Lago: pending or failed


def test_download_answers_the_invoice_with_its_pdf_link(api_client, billed):
    response = api_client.post(
        f"/api/v1/invoices/{billed['january'].lago_id}/download",
        content_type="application/json",
    )
    draft = api_client.post(f"/api/v1/invoices/{billed['draft'].lago_id}/download")

    assert response.status_code == 200
    assert response.get_json()["invoice"]["file_url"].startswith("http://testserver/documents/")
    assert (draft.status_code, draft.get_json()) == (404, INVOICE_NOT_FOUND)


def test_customer_invoices(api_client, billed):
    response = api_client.get("/api/v1/customers/acme/invoices?per_page=1")
    unknown = api_client.get("/api/v1/customers/nobody/invoices")

    assert ids(response) == [str(billed["february"].lago_id)]
    assert response.get_json()["meta"]["total_count"] == 2
    assert unknown.status_code == 404
    assert unknown.get_json()["code"] == "customer_not_found"


def test_past_usage_lists_invoiced_periods_newest_first(api_client, billed):
    response = api_client.get("/api/v1/customers/acme/past_usage?external_subscription_id=acme-sub")

    body = response.get_json()
    assert response.status_code == 200, body
    february, january = body["usage_periods"]
    assert (january["from_datetime"], january["to_datetime"]) == (
        "2024-01-01T00:00:00Z",
        "2024-01-31T23:59:59Z",
    )
    assert january["lago_invoice_id"] == str(billed["january"].lago_id)
    assert (january["amount_cents"], february["amount_cents"]) == (200, 0)
    assert january["charges_usage"][0]["units"] == "4.0"
    assert body["meta"]["total_count"] == 2
    one = api_client.get(
        "/api/v1/customers/acme/past_usage?external_subscription_id=acme-sub&periods_count=1"
    )
    assert len(one.get_json()["usage_periods"]) == 1
    # digits int() refuses ("²", 5000 of them) were a 500: they are ignored like any bad count
    for count in ("²", "9" * 5000):
        response = api_client.get(
            f"/api/v1/customers/acme/past_usage?external_subscription_id=acme-sub&periods_count={count}"
        )
        assert len(response.get_json()["usage_periods"]) == 2, count


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/customers/acme/past_usage", 422, "validation_errors"),
        ("/customers/nobody/past_usage?external_subscription_id=acme-sub", 404,
         "customer_not_found"),
        ("/customers/acme/past_usage?external_subscription_id=acme-sub&billable_metric_code=no",
         404, "billable_metric_not_found"),
    ],
)  # fmt: skip
def test_past_usage_refusals(api_client, billed, path, status, code):
    response = api_client.get(f"/api/v1{path}")

    assert (response.status_code, response.get_json()["code"]) == (status, code)


def test_invoices_lock_the_customers_currency(api_client, billed, org):
    customer = factories.make_customer(org, external_id="solo", currency="EUR")
    invoice = invoices_of(org)[0]
    db.session.execute(
        Invoice.__table__.update().where(Invoice.id == invoice.id).values(customer_id=customer.id)
    )
    db.session.commit()

    response = api_client.post(
        "/api/v1/customers", json={"customer": {"external_id": "solo", "currency": "USD"}}
    )

    assert response.status_code == 422
    assert response.get_json()["error_details"] == {"currency": ["value_is_immutable"]}
