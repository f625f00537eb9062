"""/api/v1/add_ons and one-off invoices (`POST /invoices`, lago-api.md §11): shapes, exact
amounts in 0-, 2- and 3-decimal currencies with fractional units, Lago's error codes, and
nothing written on an error."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import ActivityLog, AddOn, Customer, Fee, Invoice, OutboxEvent
from extensions import db
from tests import factories
from tests.factories import invoices_of

ADD_ON_NOT_FOUND = {"status": 404, "error": "Not Found", "code": "add_on_not_found"}
ADD_ON_KEYS = {
    "lago_id", "name", "invoice_display_name", "code", "amount_cents", "amount_currency",
    "description", "created_at", "taxes",
}  # fmt: skip


def errors_of(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["status"] == 422 and body["code"] == "validation_errors"
    return body["error_details"]


def create(api_client: Any, **fields: Any) -> Any:
    payload = {"name": "Setup", "code": "setup", "amount_cents": 5000, "amount_currency": "EUR"}
    return api_client.post("/api/v1/add_ons", json={"add_on": payload | fields})


def count(model: Any) -> int:
    return db.session.scalar(select(func.count(model.id))) or 0


# --- add-ons -------------------------------------------------------------------------------


def test_create_show_list_update_delete(api_client, org):
    created = create(
        api_client, invoice_display_name="Setup fee", description="One-time setup", code="setup"
    )
    assert created.status_code == 200, created.get_json()
    add_on = created.get_json()["add_on"]
    assert set(add_on) == ADD_ON_KEYS
    assert add_on["code"] == "setup" and add_on["amount_cents"] == 5000
    assert add_on["amount_currency"] == "EUR" and add_on["taxes"] == []
    assert add_on["invoice_display_name"] == "Setup fee"
    create(api_client, name="Training", code="training", amount_currency="usd")

    shown = api_client.get("/api/v1/add_ons/setup").get_json()["add_on"]
    listed = api_client.get("/api/v1/add_ons?per_page=1").get_json()
    updated = api_client.put(
        "/api/v1/add_ons/setup", json={"add_on": {"amount_cents": 7500, "code": "onboarding"}}
    )
    deleted = api_client.delete("/api/v1/add_ons/onboarding")

    assert shown == add_on
    assert [a["code"] for a in listed["add_ons"]] == ["training"]  # newest first
    assert listed["meta"] == {
        "current_page": 1, "next_page": 2, "prev_page": None, "total_pages": 2, "total_count": 2,
    }  # fmt: skip
    assert updated.status_code == 200
    assert updated.get_json()["add_on"]["amount_cents"] == 7500
    assert updated.get_json()["add_on"]["name"] == "Setup"  # absent keys keep their value
    assert deleted.status_code == 200 and deleted.get_json()["add_on"]["code"] == "onboarding"
    assert api_client.get("/api/v1/add_ons/onboarding").get_json() == ADD_ON_NOT_FOUND
    assert create(api_client, code="onboarding").status_code == 200  # the code is free again
    activity = db.session.scalars(
        select(ActivityLog.activity_type).where(
            ActivityLog.organization_id == org.id, ActivityLog.resource_type == "add_on"
        )
    ).all()
    assert sorted(activity) == sorted(["add_on.created"] * 3 + ["add_on.updated", "add_on.deleted"])


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        (
            {"name": None, "code": ""},
            {"name": ["value_is_mandatory"], "code": ["value_is_mandatory"]},
        ),
        ({"amount_cents": -1}, {"amount_cents": ["value_is_out_of_range"]}),
        ({"amount_cents": "12.5"}, {"amount_cents": ["value_is_invalid"]}),
        ({"amount_cents": None}, {"amount_cents": ["value_is_invalid"]}),
        ({"amount_currency": "XYZ"}, {"amount_currency": ["value_is_invalid"]}),
        ({"amount_currency": None}, {"amount_currency": ["value_is_mandatory"]}),
        ({"code": "a/b"}, {"code": ["value_is_invalid"]}),
        ({"name": "x" * 256}, {"name": ["value_is_too_long"]}),
    ],
)
def test_create_refusals_write_nothing(api_client, fields, details):
    before = count(AddOn)
    assert errors_of(create(api_client, **fields)) == details
    assert count(AddOn) == before


def test_duplicate_code_on_create_and_update(api_client):
    create(api_client, code="setup")
    create(api_client, code="training")

    assert errors_of(create(api_client, code="setup")) == {"code": ["value_already_exist"]}
    renamed = api_client.put("/api/v1/add_ons/training", json={"add_on": {"code": "setup"}})
    assert errors_of(renamed) == {"code": ["value_already_exist"]}
    assert api_client.get("/api/v1/add_ons/training").status_code == 200


def test_unknown_add_on_and_missing_root(api_client):
    assert api_client.get("/api/v1/add_ons/nope").get_json() == ADD_ON_NOT_FOUND
    assert api_client.put("/api/v1/add_ons/nope", json={"add_on": {}}).status_code == 404
    assert api_client.delete("/api/v1/add_ons/nope").get_json() == ADD_ON_NOT_FOUND
    assert api_client.post("/api/v1/add_ons", json={"plan": {}}).status_code == 400


def test_add_ons_of_another_organization_do_not_exist(api_client, client):
    other = factories.make_organization()
    other_client = type(api_client)(client, factories.make_api_key(other))
    create(other_client, code="theirs")
    assert api_client.get("/api/v1/add_ons/theirs").status_code == 404
    assert create(api_client, code="theirs").status_code == 200  # codes are per organization


# --- one-off invoices ----------------------------------------------------------------------


def one_off(api_client: Any, customer: str = "acme", **fields: Any) -> Any:
    payload = {"external_customer_id": customer, **fields}
    return api_client.post("/api/v1/invoices", json={"invoice": payload})


@pytest.mark.parametrize(
    ("currency", "add_on_cents", "lines", "expected_fees", "expected_units"),
    [
        # 2 decimals: 2.5 × €19.99 = €49.975 → €49.98 (half up); 3 × €0.333 override → 0.999
        (
            "EUR",
            1999,
            [{"units": 2.5}, {"units": "3", "unit_amount_cents": 33}],
            [4998, 99],
            ["2.5", "3.0"],
        ),
        # 0 decimals: 1.5 × ¥999 = ¥1498.5 → ¥1499; default one unit
        ("JPY", 999, [{"units": "1.5"}, {}], [1499, 999], ["1.5", "1.0"]),
        # 3 decimals: 0.3333 × 10.001 KWD = 3.3333333 KWD → 3.333 KWD
        ("KWD", 10001, [{"units": "0.3333"}], [3333], ["0.3333"]),
        # a float's shortest repr is taken as written; -0 is 0
        (
            "EUR",
            1999,
            [{"units": 0.1 + 0.2}, {"units": "-0"}],
            [600, 0],
            ["0.30000000000000004", "0.0"],
        ),  # fmt: skip
        # more digits than Decimal's default precision, still exact: 20 decimals × €19.99
        (
            "EUR",
            1999,
            [{"units": "123456789012.12345678901234567890"}],
            [246790121235235],
            ["123456789012.1234567890123456789"],
        ),  # fmt: skip
        # fractional cents half up: 0.5 × €0.01 = €0.005 → €0.01; zero units bill nothing
        ("EUR", 1, [{"units": "0.5"}, {"units": 0}], [1, 0], ["0.5", "0.0"]),
    ],
)
def test_one_off_amounts_are_exact(
    api_client, org, currency, add_on_cents, lines, expected_fees, expected_units
):
    factories.make_customer(org, external_id="acme", currency=currency)
    create(api_client, code="item", amount_cents=add_on_cents, amount_currency=currency)

    response = one_off(
        api_client, currency=currency, fees=[{"add_on_code": "item", **line} for line in lines]
    )

    assert response.status_code == 200, response.get_json()
    invoice = response.get_json()["invoice"]
    assert invoice["invoice_type"] == "one_off" and invoice["status"] == "finalized"
    assert invoice["currency"] == currency
    assert [fee["amount_cents"] for fee in invoice["fees"]] == expected_fees
    assert [fee["units"] for fee in invoice["fees"]] == expected_units
    assert invoice["fees_amount_cents"] == invoice["total_amount_cents"] == sum(expected_fees)
    assert invoice["billing_periods"] == [] and invoice["subscriptions"] == []
    [stored] = invoices_of(org)  # the amount relations hold
    assert stored.number.endswith("-001") and stored.sequential_id == 1


def test_one_off_invoice_shape_events_and_audit(api_client, org):
    acme = factories.make_customer(org, external_id="acme", currency="EUR", net_payment_term=15)
    create(
        api_client, code="setup", name="Setup", invoice_display_name="Setup fee",
        description="Kick-off workshop",
    )  # fmt: skip
    create(api_client, code="training", name="Training", amount_cents=12000)

    response = one_off(
        api_client,
        fees=[
            {"add_on_code": "setup"},
            {
                "add_on_code": "training",
                "units": "2",
                "unit_amount_cents": 10000,
                "description": "Two days",
                "invoice_display_name": "On-site training",
            },
        ],  # fmt: skip
    )

    invoice = response.get_json()["invoice"]
    setup, training = invoice["fees"]
    assert setup["item"] == {
        "type": "add_on", "code": "setup", "name": "Setup", "invoice_display_name": "Setup fee",
        "filter_invoice_display_name": None, "filters": None,
        "lago_item_id": setup["item"]["lago_item_id"], "item_type": "AddOn", "grouped_by": {},
    }  # fmt: skip
    assert setup["description"] == "Kick-off workshop" and setup["amount_cents"] == 5000
    assert setup["precise_unit_amount"] == "50.0"
    assert training["item"]["invoice_display_name"] == "On-site training"
    assert training["description"] == "Two days" and training["amount_cents"] == 20000
    assert training["lago_subscription_id"] is None
    assert invoice["total_amount_cents"] == 25000 and invoice["payment_status"] == "pending"
    assert invoice["net_payment_term"] == 15
    assert invoice["customer"]["external_id"] == "acme"
    events = db.session.scalars(
        select(OutboxEvent.event_type).where(OutboxEvent.organization_id == org.id)
    ).all()
    assert events.count("invoice.one_off_created") == 1
    assert "invoice.created" not in events
    entry = db.session.scalar(
        select(ActivityLog).where(
            ActivityLog.organization_id == org.id,
            ActivityLog.activity_type == "invoice.one_off_created",
        )
    )
    assert entry is not None and entry.customer_id == acme.id
    assert entry.resource_label == invoice["number"]
    shown = api_client.get(f"/api/v1/invoices/{invoice['lago_id']}").get_json()["invoice"]
    assert shown["fees"] == invoice["fees"]
    listed = api_client.get("/api/v1/invoices?invoice_type=one_off").get_json()
    assert [i["lago_id"] for i in listed["invoices"]] == [invoice["lago_id"]]


def test_one_off_numbers_follow_the_customers_sequence(api_client, org):
    factories.make_customer(org, external_id="acme", currency="EUR")
    create(api_client, code="setup")
    numbers = [
        one_off(api_client, fees=[{"add_on_code": "setup"}]).get_json()["invoice"]["number"]
        for _ in range(2)
    ]
    assert [number[-4:] for number in numbers] == ["-001", "-002"]


def test_customer_without_currency_takes_the_invoices(api_client, org):
    factories.make_customer(org, external_id="acme")
    create(api_client, code="setup", amount_currency="USD")

    response = one_off(api_client, currency="USD", fees=[{"add_on_code": "setup"}])

    assert response.status_code == 200, response.get_json()
    customer = db.session.scalar(
        select(Customer).where(Customer.organization_id == org.id, Customer.external_id == "acme")
    )
    assert customer.currency == "USD"


def test_zero_total_is_paid(api_client, org):
    factories.make_customer(org, external_id="acme", currency="EUR")
    create(api_client, code="free", amount_cents=0)
    invoice = one_off(api_client, fees=[{"add_on_code": "free"}]).get_json()["invoice"]
    assert invoice["total_amount_cents"] == 0 and invoice["payment_status"] == "succeeded"


def not_found(code: str) -> dict[str, Any]:
    return {"status": 404, "error": "Not Found", "code": code}


@pytest.mark.parametrize(
    ("payload", "status", "body"),
    [
        (
            {"external_customer_id": "nobody", "fees": [{"add_on_code": "setup"}]},
            404,
            not_found("customer_not_found"),
        ),
        ({"external_customer_id": "acme", "fees": []}, 404, not_found("fees_not_found")),
        ({"external_customer_id": "acme"}, 404, not_found("fees_not_found")),
        (
            {
                "external_customer_id": "acme",
                "fees": [{"add_on_code": "setup"}, {"add_on_code": "x"}],
            },
            404,
            not_found("add_on_not_found"),
        ),
        (
            {"external_customer_id": "acme", "fees": [{"units": 1}]},
            404,
            not_found("add_on_not_found"),
        ),
        (
            {"external_customer_id": "acme", "currency": "USD", "fees": [{"add_on_code": "setup"}]},
            422,
            {"currency": ["currencies_does_not_match"]},
        ),
        (
            {
                "external_customer_id": "acme",
                "fees": [{"add_on_code": "setup", "unit_amount_cents": 2**62}] * 2,
            },
            422,
            {"fees": ["value_is_out_of_range"]},
        ),
        (
            {
                "external_customer_id": "acme",
                "fees": [{"add_on_code": "setup", "units": "1e12", "unit_amount_cents": 2**62}],
            },
            422,
            {"fees[0].units": ["value_is_out_of_range"]},
        ),  # fmt: skip
        (
            {"external_customer_id": "acme", "fees": [{"add_on_code": "setup", "units": "1e-21"}]},
            422,
            {"fees[0].units": ["value_is_invalid"]},
        ),  # fmt: skip
        (
            {"external_customer_id": "acme", "currency": "XYZ", "fees": [{"add_on_code": "setup"}]},
            422,
            {"currency": ["value_is_invalid"]},
        ),
        ({"external_customer_id": "acme", "fees": "setup"}, 422, {"fees": ["value_is_invalid"]}),
        (
            {
                "external_customer_id": "acme",
                "fees": [
                    {"add_on_code": "setup", "units": -1},
                    {"add_on_code": "setup", "unit_amount_cents": -5},
                    {"add_on_code": "setup", "units": "abc", "unit_amount_cents": 1.5},
                ],
            },
            422,
            {
                "fees[0].units": ["value_is_out_of_range"],
                "fees[1].unit_amount_cents": ["value_is_out_of_range"],
                "fees[2].units": ["value_is_invalid"],
                "fees[2].unit_amount_cents": ["value_is_invalid"],
            },
        ),
        (
            {"external_customer_id": "acme", "fees": [{"add_on_code": "setup", "units": "1e13"}]},
            422,
            {"fees[0].units": ["value_is_out_of_range"]},
        ),
        (
            {"external_customer_id": "acme", "fees": [{"add_on_code": "dollars"}]},
            422,
            {"fees[0].add_on_code": ["currencies_does_not_match"]},
        ),
    ],  # fmt: skip
)
def test_one_off_refusals_write_nothing(api_client, org, payload, status, body):
    factories.make_customer(org, external_id="acme", currency="EUR")
    create(api_client, code="setup")
    create(api_client, code="dollars", amount_currency="USD")
    before = (count(Invoice), count(Fee), count(OutboxEvent))

    response = api_client.post("/api/v1/invoices", json={"invoice": payload})

    assert response.status_code == status
    if status == 422:
        assert errors_of(response) == body
    else:
        assert response.get_json() == body
    assert (count(Invoice), count(Fee), count(OutboxEvent)) == before


def test_missing_currency_everywhere_is_mandatory(api_client, org):
    factories.make_customer(org, external_id="acme")
    create(api_client, code="setup")
    assert errors_of(one_off(api_client, fees=[{"add_on_code": "setup"}])) == {
        "currency": ["value_is_mandatory"]
    }
    customer = db.session.scalar(
        select(Customer).where(Customer.organization_id == org.id, Customer.external_id == "acme")
    )
    assert customer.currency is None


def test_a_priced_line_may_bill_an_add_on_of_another_currency(api_client, org):
    factories.make_customer(org, external_id="acme", currency="EUR")
    create(api_client, code="dollars", amount_currency="USD")
    response = one_off(api_client, fees=[{"add_on_code": "dollars", "unit_amount_cents": 700}])
    assert response.status_code == 200
    assert response.get_json()["invoice"]["total_amount_cents"] == 700


def test_deleted_add_on_stays_on_its_invoice(api_client, org):
    factories.make_customer(org, external_id="acme", currency="EUR")
    create(api_client, code="setup")
    invoice = one_off(api_client, fees=[{"add_on_code": "setup"}]).get_json()["invoice"]
    api_client.delete("/api/v1/add_ons/setup")

    shown = api_client.get(f"/api/v1/invoices/{invoice['lago_id']}").get_json()["invoice"]
    assert shown["fees"][0]["item"]["code"] == "setup"
    assert one_off(api_client, fees=[{"add_on_code": "setup"}]).status_code == 404


def test_a_one_off_invoice_locks_the_customers_currency(api_client, org):
    factories.make_customer(org, external_id="acme")
    create(api_client, code="setup", amount_currency="USD")
    one_off(api_client, currency="USD", fees=[{"add_on_code": "setup"}])

    changed = api_client.post(
        "/api/v1/customers", json={"customer": {"external_id": "acme", "currency": "EUR"}}
    )

    assert errors_of(changed) == {"currency": ["value_is_immutable"]}


def test_coupons_do_not_discount_one_off_invoices(api_client, org):
    factories.make_customer(org, external_id="acme", currency="EUR")
    create(api_client, code="setup", amount_cents=10000)
    api_client.post(
        "/api/v1/coupons",
        json={"coupon": {"name": "Ten off", "code": "ten", "coupon_type": "percentage",
                         "percentage_rate": "10", "frequency": "once"}},
    )  # fmt: skip
    applied = api_client.post(
        "/api/v1/applied_coupons",
        json={"applied_coupon": {"external_customer_id": "acme", "coupon_code": "ten"}},
    )
    assert applied.status_code == 200, applied.get_json()

    invoice = one_off(api_client, fees=[{"add_on_code": "setup"}]).get_json()["invoice"]

    assert (invoice["coupons_amount_cents"], invoice["total_amount_cents"]) == (0, 10000)
    still = api_client.get("/api/v1/applied_coupons?external_customer_id=acme").get_json()
    assert [a["status"] for a in still["applied_coupons"]] == ["active"]  # kept for a subscription
