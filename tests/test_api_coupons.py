"""/api/v1/coupons and /api/v1/applied_coupons: Lago's shapes and error codes, the invoice's
coupon credits; nothing changes on an error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import AppliedCoupon, Coupon
from billing.services import invoicing
from billing.timeutil import set_clock
from extensions import db
from tests import factories

COUPON_KEYS = {
    "lago_id", "name", "code", "description", "coupon_type", "amount_cents", "amount_currency",
    "percentage_rate", "frequency", "frequency_duration", "reusable", "limited_plans",
    "plan_codes", "limited_billable_metrics", "billable_metric_codes", "created_at",
    "expiration", "expiration_at", "terminated_at",
}  # fmt: skip
APPLIED_KEYS = {
    "lago_id", "lago_coupon_id", "coupon_code", "coupon_name", "lago_customer_id",
    "external_customer_id", "status", "amount_cents", "amount_cents_remaining",
    "amount_currency", "percentage_rate", "frequency", "frequency_duration",
    "frequency_duration_remaining", "expiration_at", "created_at", "terminated_at", "credits",
}  # fmt: skip
FIXED = {"name": "Welcome", "code": "welcome", "coupon_type": "fixed_amount",
         "amount_cents": 500, "amount_currency": "EUR", "frequency": "once",
         "expiration": "no_expiration"}  # fmt: skip


def count(model: Any, org: Any) -> int:
    """The organization's rows (live-server tests commit theirs to the shared database)."""
    return db.session.scalar(select(func.count(model.id)).where(model.organization_id == org.id))


def create(api_client: Any, **fields: Any) -> Any:
    return api_client.post("/api/v1/coupons", json={"coupon": FIXED | fields})


def test_create_show_list_fixed_coupon(api_client):
    response = create(api_client)

    assert response.status_code == 200, response.get_json()
    coupon = response.get_json()["coupon"]
    assert set(coupon) == COUPON_KEYS
    assert (coupon["amount_cents"], coupon["amount_currency"], coupon["percentage_rate"]) == (
        500,
        "EUR",
        None,
    )
    assert (coupon["reusable"], coupon["limited_plans"], coupon["plan_codes"]) == (True, False, [])
    assert api_client.get("/api/v1/coupons/welcome").get_json()["coupon"] == coupon
    listed = api_client.get("/api/v1/coupons").get_json()
    assert [c["code"] for c in listed["coupons"]] == ["welcome"]
    assert listed["meta"]["total_count"] == 1


def test_percentage_coupon_limited_to_plans_and_metrics(api_client, org):
    plan = factories.make_plan(org)
    metric = plan.charges[0].billable_metric
    response = create(
        api_client,
        code="half",
        coupon_type="percentage",
        percentage_rate="12.5",
        amount_cents=None,
        amount_currency=None,
        frequency="recurring",
        frequency_duration=3,
        applies_to={"plan_codes": [plan.code], "billable_metric_codes": [metric.code]},
    )

    coupon = response.get_json()["coupon"]
    assert response.status_code == 200, coupon
    assert (coupon["percentage_rate"], coupon["amount_cents"]) == ("12.5", None)
    assert (coupon["frequency"], coupon["frequency_duration"]) == ("recurring", 3)
    assert (coupon["limited_plans"], coupon["plan_codes"]) == (True, [plan.code])
    assert (coupon["limited_billable_metrics"], coupon["billable_metric_codes"]) == (
        True,
        [metric.code],
    )


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        ({"name": ""}, {"name": ["value_is_mandatory"]}),
        ({"code": None}, {"code": ["value_is_mandatory"]}),
        ({"coupon_type": "gift"}, {"coupon_type": ["value_is_invalid"]}),
        ({"amount_cents": None}, {"amount_cents": ["value_is_mandatory"]}),
        ({"amount_cents": -1}, {"amount_cents": ["value_is_out_of_range"]}),
        ({"amount_currency": "XYZ"}, {"amount_currency": ["value_is_invalid"]}),
        ({"coupon_type": "percentage", "percentage_rate": "abc"},
         {"percentage_rate": ["value_is_invalid"]}),
        ({"coupon_type": "percentage", "percentage_rate": "120"},
         {"percentage_rate": ["value_is_out_of_range"]}),
        ({"coupon_type": "percentage"}, {"percentage_rate": ["value_is_mandatory"]}),
        ({"frequency": "weekly"}, {"frequency": ["value_is_invalid"]}),
        ({"frequency": "recurring"}, {"frequency_duration": ["value_is_mandatory"]}),
        ({"frequency": "recurring", "frequency_duration": 0},
         {"frequency_duration": ["value_is_out_of_range"]}),
        ({"expiration": "time_limit"}, {"expiration_at": ["value_is_mandatory"]}),
        ({"expiration": "time_limit", "expiration_at": "2020-01-01T00:00:00Z"},
         {"expiration_at": ["invalid_date"]}),
        ({"expiration": "time_limit", "expiration_at": "soon"},
         {"expiration_at": ["invalid_date"]}),
        # year 1 moved to UTC overflowed: a 500
        ({"expiration": "time_limit", "expiration_at": "0001-01-01T00:00:00+05:00"},
         {"expiration_at": ["invalid_date"]}),
        ({"reusable": "maybe"}, {"reusable": ["value_is_invalid"]}),
        ({"applies_to": {"plan_codes": "p"}}, {"plan_codes": ["value_is_invalid"]}),
    ],
)  # fmt: skip
def test_create_validation_errors_change_nothing(api_client, org, fields, details):
    before = count(Coupon, org)

    response = create(api_client, **fields)

    assert response.status_code == 422
    assert response.get_json() == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }
    assert count(Coupon, org) == before


def test_duplicate_code_unknown_plan_and_missing_root(api_client, org):
    assert create(api_client).status_code == 200

    duplicate = create(api_client)
    assert duplicate.status_code == 422
    assert duplicate.get_json()["error_details"] == {"code": ["value_already_exist"]}
    unknown = create(api_client, code="other", applies_to={"plan_codes": ["nope"]})
    assert (unknown.status_code, unknown.get_json()["code"]) == (404, "plan_not_found")
    assert api_client.post("/api/v1/coupons", json={}).status_code == 400
    assert count(Coupon, org) == 1


def test_update_and_delete_by_code(api_client, org):
    create(api_client)
    factories.make_customer(org, external_id="acme", currency="EUR")
    response = api_client.put(
        "/api/v1/coupons/welcome", json={"coupon": {"name": "Hello", "amount_cents": 700}}
    )
    assert response.get_json()["coupon"]["name"] == "Hello"
    assert response.get_json()["coupon"]["amount_cents"] == 700
    applied = api_client.post(
        "/api/v1/applied_coupons",
        json={"applied_coupon": {"external_customer_id": "acme", "coupon_code": "welcome"}},
    ).get_json()["applied_coupon"]
    # once applied, the terms stay (Lago ignores them); the name can change
    response = api_client.put(
        "/api/v1/coupons/welcome", json={"coupon": {"name": "Hi", "amount_cents": 900}}
    )
    assert (
        response.get_json()["coupon"]["name"],
        response.get_json()["coupon"]["amount_cents"],
    ) == (
        "Hi",
        700,
    )

    deleted = api_client.delete("/api/v1/coupons/welcome")

    assert deleted.status_code == 200
    assert deleted.get_json()["coupon"]["terminated_at"] is not None
    assert api_client.get("/api/v1/coupons/welcome").get_json() == {
        "status": 404,
        "error": "Not Found",
        "code": "coupon_not_found",
    }
    listed = api_client.get("/api/v1/applied_coupons?external_customer_id=acme").get_json()
    assert [(a["lago_id"], a["status"]) for a in listed["applied_coupons"]] == [
        (applied["lago_id"], "terminated")
    ]
    assert api_client.put("/api/v1/coupons/welcome", json={"coupon": {}}).status_code == 404
    assert api_client.delete("/api/v1/coupons/welcome").status_code == 404


def apply(api_client: Any, **fields: Any) -> Any:
    payload = {"external_customer_id": "acme", "coupon_code": "welcome"} | fields
    return api_client.post("/api/v1/applied_coupons", json={"applied_coupon": payload})


def test_apply_list_and_remove(api_client, org):
    create(api_client)
    customer = factories.make_customer(org, external_id="acme", currency="EUR")

    response = apply(api_client, amount_cents=250)

    assert response.status_code == 200, response.get_json()
    applied = response.get_json()["applied_coupon"]
    assert set(applied) == APPLIED_KEYS
    assert (applied["status"], applied["amount_cents"], applied["amount_cents_remaining"]) == (
        "active",
        250,
        250,
    )
    assert applied["lago_customer_id"] == str(customer.lago_id)
    assert (applied["coupon_code"], applied["coupon_name"], applied["credits"]) == (
        "welcome",
        "Welcome",
        [],
    )

    def listed(query: str) -> list[str]:
        body = api_client.get(f"/api/v1/applied_coupons?{query}").get_json()
        return [a["lago_id"] for a in body["applied_coupons"]]

    assert listed("external_customer_id=acme&status=active") == [applied["lago_id"]]
    assert listed("status=terminated") == []
    assert listed("external_customer_id=other") == []
    assert listed("coupon_code[]=welcome") == [applied["lago_id"]]
    own = api_client.get("/api/v1/customers/acme/applied_coupons").get_json()
    assert [a["lago_id"] for a in own["applied_coupons"]] == [applied["lago_id"]]
    assert api_client.get("/api/v1/customers/nobody/applied_coupons").status_code == 404
    assert api_client.get("/api/v1/applied_coupons?status=gone").status_code == 422

    removed = api_client.delete(f"/api/v1/customers/acme/applied_coupons/{applied['lago_id']}")

    assert removed.status_code == 200
    assert removed.get_json()["applied_coupon"]["status"] == "terminated"
    assert listed("status=terminated") == [applied["lago_id"]]
    again = api_client.delete(f"/api/v1/customers/acme/applied_coupons/{applied['lago_id']}")
    assert (again.status_code, again.get_json()["code"]) == (405, "applied_coupon_not_active")


@pytest.mark.parametrize(
    ("case", "status", "body"),
    [
        ("unknown customer", 404, {"code": "customer_not_found"}),
        ("unknown coupon", 404, {"code": "coupon_not_found"}),
        ("terminated coupon", 404, {"code": "coupon_not_found"}),
        ("other currency", 422, {"error_details": {"currency": ["currencies_does_not_match"]}}),
        ("not reusable", 422, {"error_details": {"coupon": ["coupon_is_not_reusable"]}}),
        ("missing code", 422, {"error_details": {"coupon_code": ["value_is_mandatory"]}}),
        ("bad rate", 422, {"error_details": {"percentage_rate": ["value_is_invalid"]}}),
    ],
)
def test_apply_errors_change_nothing(api_client, org, case, status, body):
    from billing.services import coupons as coupon_service  # noqa: PLC0415

    create(api_client, reusable=False)
    factories.make_customer(org, external_id="acme", currency="EUR")
    fields: dict[str, Any] = {}
    if case == "unknown customer":
        fields = {"external_customer_id": "nobody"}
    elif case == "unknown coupon":
        fields = {"coupon_code": "nope"}
    elif case == "terminated coupon":
        coupon_service.terminate_coupon(
            coupon_service.get_coupon(org, "welcome"), factories.TEST_ACTOR
        )
        db.session.commit()
    elif case == "other currency":
        create(api_client, code="dollars", amount_currency="USD")
        fields = {"coupon_code": "dollars"}
    elif case == "not reusable":
        assert apply(api_client).status_code == 200
    elif case == "missing code":
        fields = {"coupon_code": ""}
    else:
        fields = {"percentage_rate": "x"}
    before = count(AppliedCoupon, org)

    response = apply(api_client, **fields)

    assert response.status_code == status
    assert body.items() <= response.get_json().items()
    assert count(AppliedCoupon, org) == before


def test_unknown_applied_coupon_and_customer_on_delete(api_client, org):
    factories.make_customer(org, external_id="acme", currency="EUR")
    missing = api_client.delete("/api/v1/customers/acme/applied_coupons/not-a-uuid")
    assert missing.get_json()["code"] == "applied_coupon_not_found"
    nobody = api_client.delete(
        "/api/v1/customers/nobody/applied_coupons/00000000-0000-0000-0000-000000000000"
    )
    assert nobody.get_json()["code"] == "customer_not_found"


def test_invoice_shows_coupons_and_credits(api_client, org):
    now = [datetime(2024, 1, 1, tzinfo=UTC)]
    set_clock(lambda: now[0])
    create(api_client)
    customer = factories.make_customer(org, external_id="acme", currency="EUR")
    factories.make_subscription(org, customer)  # 10.00 a month in arrears
    applied = apply(api_client).get_json()["applied_coupon"]
    now[0] = datetime(2024, 2, 1, 0, 0, 10, tzinfo=UTC)
    invoicing.close_periods()
    db.session.commit()

    [listed] = api_client.get("/api/v1/invoices?external_customer_id=acme").get_json()["invoices"]
    invoice = api_client.get(f"/api/v1/invoices/{listed['lago_id']}").get_json()["invoice"]

    assert (invoice["fees_amount_cents"], invoice["coupons_amount_cents"]) == (1000, 500)
    assert invoice["sub_total_excluding_taxes_amount_cents"] == 500
    assert invoice["total_amount_cents"] == 500
    [credit] = invoice["credits"]
    assert credit["amount_cents"] == 500 and credit["before_taxes"] is True
    assert credit["item"]["type"] == "coupon" and credit["item"]["code"] == "welcome"
    assert credit["invoice"] == {"lago_id": invoice["lago_id"], "payment_status": "pending"}
    body = api_client.get("/api/v1/applied_coupons?external_customer_id=acme").get_json()
    [shown] = body["applied_coupons"]
    assert shown["lago_id"] == applied["lago_id"]
    assert (shown["status"], shown["amount_cents_remaining"]) == ("terminated", 0)
    assert [c["amount_cents"] for c in shown["credits"]] == [500]
