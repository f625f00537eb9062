"""Taxes of add-ons and of one-off invoices (lago-api.md §11, §17): an add-on's `tax_codes`,
which taxes an add-on fee pays (the line's own codes, else the add-on's, else the customer's,
else the organization's defaults), exact amounts, Lago's refusals with nothing written, credit
fees never taxed, and the console's add-on form and page."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import ActivityLog, AddOn, Customer, FeeType, Invoice, Tax
from billing.services.taxes import apply_invoice_taxes
from extensions import db
from tests import factories

TAX_NOT_FOUND = {"status": 404, "error": "Not Found", "code": "tax_not_found"}


@pytest.fixture
def taxes(org: Any) -> dict[str, Tax]:
    """VAT 20 % (customers'), reduced 5.5 % (add-ons'), a 2.5 % levy (lines'), and the
    organization's default 19 %."""
    return {
        "vat": factories.make_tax(org, code="vat", name="VAT", rate="20"),
        "reduced": factories.make_tax(org, code="reduced", name="Reduced VAT", rate="5.5"),
        "levy": factories.make_tax(org, code="levy", name="Levy", rate="2.5"),
        "default": factories.make_tax(
            org, code="default", name="Default", rate="19", applied_to_organization=True
        ),
    }


def add_on(api_client: Any, code: str = "setup", **fields: Any) -> Any:
    payload = {"name": code.title(), "code": code, "amount_cents": 1999, "amount_currency": "EUR"}
    return api_client.post("/api/v1/add_ons", json={"add_on": payload | fields})


def one_off(api_client: Any, fees: list[dict[str, Any]], customer: str = "acme") -> Any:
    payload = {"external_customer_id": customer, "currency": "EUR", "fees": fees}
    return api_client.post("/api/v1/invoices", json={"invoice": payload})


def count(model: Any) -> int:
    return db.session.scalar(select(func.count(model.id))) or 0


# --- which taxes an add-on fee pays ----------------------------------------------------------


@pytest.mark.parametrize(
    ("customer_codes", "add_on_codes", "line", "expected"),
    [
        # the add-on's own 5.5 % over the customer's 20 %: €19.99 × 5.5 % = €1.09945 → €1.10
        (["vat"], ["reduced"], {}, [("reduced", 110)]),
        # an add-on without taxes: the customer's 20 %: €3.998 → €4.00
        (["vat"], [], {}, [("vat", 400)]),
        # neither: the organization's default 19 %: €3.7981 → €3.80
        ([], [], {}, [("default", 380)]),
        # the line's own codes over the add-on's: 2.5 % = €0.49975 → €0.50
        (["vat"], ["reduced"], {"tax_codes": ["levy"]}, [("levy", 50)]),
        # several, each rounded on the fee: €1.10 + €0.50
        ([], [], {"tax_codes": ["reduced", "levy"]}, [("levy", 50), ("reduced", 110)]),
        # an empty list is no tax at all (Lago); null is no codes of its own
        (["vat"], ["reduced"], {"tax_codes": []}, []),
        (["vat"], ["reduced"], {"tax_codes": None}, [("reduced", 110)]),
    ],
)
def test_which_taxes_an_add_on_fee_pays(
    api_client, org, taxes, customer_codes, add_on_codes, line, expected
):
    factories.make_customer(org, external_id="acme", currency="EUR", tax_codes=customer_codes)
    assert add_on(api_client, tax_codes=add_on_codes).status_code == 200

    response = one_off(api_client, [{"add_on_code": "setup", **line}])

    assert response.status_code == 200, response.get_json()
    invoice = response.get_json()["invoice"]
    [fee] = invoice["fees"]
    assert [(t["tax_code"], t["amount_cents"]) for t in fee["applied_taxes"]] == expected
    total_taxes = sum(amount for _code, amount in expected)
    assert fee["taxes_amount_cents"] == invoice["taxes_amount_cents"] == total_taxes
    assert invoice["total_amount_cents"] == 1999 + total_taxes
    assert [(t["tax_code"], t["fees_amount_cents"]) for t in invoice["applied_taxes"]] == [
        (code, 1999) for code, _amount in expected
    ]


def test_an_invoice_sums_each_tax_over_its_lines(api_client, org, taxes):
    factories.make_customer(org, external_id="acme", currency="EUR", tax_codes=["vat"])
    add_on(api_client, "setup", tax_codes=["reduced"])
    add_on(api_client, "training", amount_cents=15000)

    response = one_off(
        api_client,
        [
            {"add_on_code": "setup", "units": 3},  # €59.97 at 5.5 %: €3.29835
            {"add_on_code": "setup", "unit_amount_cents": 1001},  # €10.01 at 5.5 %: €0.55055
            {"add_on_code": "training", "units": "2.5"},  # €375.00 at the customer's 20 %
            {"add_on_code": "training", "tax_codes": ["reduced"]},  # €150.00 at 5.5 %: €8.25
        ],
    )

    invoice = response.get_json()["invoice"]
    assert [fee["taxes_amount_cents"] for fee in invoice["fees"]] == [330, 55, 7500, 825]
    # per tax, the exact taxes summed then rounded once: €12.0989 → €12.10
    assert [
        (t["tax_code"], t["fees_amount_cents"], t["amount_cents"]) for t in invoice["applied_taxes"]
    ] == [("reduced", 21998, 1210), ("vat", 37500, 7500)]
    assert invoice["fees_amount_cents"] == 59498 and invoice["taxes_amount_cents"] == 8710
    assert invoice["total_amount_cents"] == 68208


def test_a_credit_fee_is_never_taxed(org, taxes):
    customer = factories.make_customer(org, currency="EUR", tax_codes=["vat"])
    credit = SimpleNamespace(fee_type=FeeType.CREDIT, charge=None, subscription=None,
                             amount_cents=10000)  # fmt: skip
    setup = SimpleNamespace(fee_type=FeeType.ADD_ON, add_on_id=None, charge=None,
                            subscription=None, amount_cents=1000)  # fmt: skip
    invoice = SimpleNamespace(
        currency="EUR", customer_id=customer.id, organization_id=org.id, applied_taxes=[],
        fees=[credit, setup],
    )  # fmt: skip

    apply_invoice_taxes(invoice)

    assert (credit.applied_taxes, credit.taxes_amount_cents) == ([], 0)
    assert setup.taxes_amount_cents == 200  # the same customer's 20 % on anything else
    assert invoice.taxes_amount_cents == 200


def test_a_wallet_purchase_stays_untaxed_with_default_taxes(api_client, org, taxes):
    factories.make_customer(org, external_id="acme", currency="EUR", tax_codes=["vat"])
    created = api_client.post(
        "/api/v1/wallets",
        json={"wallet": {"external_customer_id": "acme", "rate_amount": "1",
                         "paid_credits": "100", "currency": "EUR"}},
    )  # fmt: skip
    assert created.status_code == 200, created.get_json()
    [invoice] = db.session.scalars(select(Invoice).where(Invoice.invoice_type == "credit")).all()
    assert (invoice.fees_amount_cents, invoice.taxes_amount_cents) == (10000, 0)
    assert invoice.applied_taxes == [] and invoice.total_amount_cents == 10000


# --- an add-on's tax_codes -----------------------------------------------------------------


def test_add_on_tax_codes_create_update_clear_and_audit(api_client, org, taxes):
    created = add_on(api_client, tax_codes=["vat", "reduced", "vat"])
    assert created.status_code == 200, created.get_json()
    shown = created.get_json()["add_on"]["taxes"]
    assert [(t["code"], t["rate"], t["name"]) for t in shown] == [
        ("reduced", 5.5, "Reduced VAT"), ("vat", 20.0, "VAT"),
    ]  # fmt: skip
    assert set(shown[0]) >= {"lago_id", "name", "code", "rate", "description", "created_at"}

    kept = api_client.put("/api/v1/add_ons/setup", json={"add_on": {"amount_cents": 2500}})
    replaced = api_client.put("/api/v1/add_ons/setup", json={"add_on": {"tax_codes": ["levy"]}})
    listed = api_client.get("/api/v1/add_ons").get_json()["add_ons"]
    cleared = api_client.put("/api/v1/add_ons/setup", json={"add_on": {"tax_codes": None}})

    assert [t["code"] for t in kept.get_json()["add_on"]["taxes"]] == ["reduced", "vat"]
    assert [t["code"] for t in replaced.get_json()["add_on"]["taxes"]] == ["levy"]
    assert [t["code"] for t in listed[0]["taxes"]] == ["levy"]
    assert cleared.get_json()["add_on"]["taxes"] == []
    changes = db.session.scalars(
        select(ActivityLog.changes)
        .where(ActivityLog.organization_id == org.id, ActivityLog.resource_type == "add_on")
        .order_by(ActivityLog.id)
    ).all()
    assert changes[0]["tax_codes"] == [None, ["reduced", "vat"]]
    assert "tax_codes" not in changes[1] and changes[1]["amount_cents"] == [1999, 2500]
    assert changes[2] == {"tax_codes": [["reduced", "vat"], ["levy"]]}
    assert changes[3] == {"tax_codes": [["levy"], []]}


def test_unknown_or_invalid_tax_codes_write_nothing(api_client, org, taxes):
    add_on(api_client, tax_codes=["reduced"])
    before = (count(AddOn), count(ActivityLog))

    unknown_create = add_on(api_client, "other", tax_codes=["vat", "nope"])
    unknown_update = api_client.put(
        "/api/v1/add_ons/setup", json={"add_on": {"name": "Renamed", "tax_codes": ["nope"]}}
    )
    invalid = add_on(api_client, "other", tax_codes="vat")

    assert unknown_create.status_code == 404 and unknown_create.get_json() == TAX_NOT_FOUND
    assert unknown_update.status_code == 404 and unknown_update.get_json() == TAX_NOT_FOUND
    assert invalid.status_code == 422
    assert invalid.get_json()["error_details"] == {"tax_codes": ["value_is_invalid"]}
    db.session.expire_all()
    assert (count(AddOn), count(ActivityLog)) == before
    stored = api_client.get("/api/v1/add_ons/setup").get_json()["add_on"]
    assert stored["name"] == "Setup" and [t["code"] for t in stored["taxes"]] == ["reduced"]


def test_unknown_or_invalid_line_tax_codes_write_nothing(api_client, org, taxes):
    factories.make_customer(org, external_id="acme")  # no currency yet
    add_on(api_client)
    before = (count(Invoice), count(ActivityLog))

    unknown = one_off(api_client, [{"add_on_code": "setup", "tax_codes": ["vat", "nope"]}])
    unknown_add_on_first = one_off(
        api_client, [{"add_on_code": "setup", "tax_codes": ["nope"]}, {"add_on_code": "gone"}]
    )
    invalid = one_off(api_client, [{"add_on_code": "setup"}, {"add_on_code": "setup",
                                                              "tax_codes": [1]}])  # fmt: skip

    assert unknown.status_code == 404 and unknown.get_json() == TAX_NOT_FOUND
    assert unknown_add_on_first.get_json()["code"] == "add_on_not_found"
    assert invalid.status_code == 422
    assert invalid.get_json()["error_details"] == {"fees[1].tax_codes": ["value_is_invalid"]}
    db.session.expire_all()
    assert (count(Invoice), count(ActivityLog)) == before
    customer = db.session.scalar(select(Customer).where(Customer.external_id == "acme"))
    assert customer.currency is None


def test_deleting_a_tax_takes_it_off_its_add_ons(api_client, org, taxes):
    factories.make_customer(org, external_id="acme", currency="EUR", tax_codes=["vat"])
    add_on(api_client, tax_codes=["reduced", "levy"])

    assert api_client.delete("/api/v1/taxes/reduced").status_code == 200
    shown = api_client.get("/api/v1/add_ons/setup").get_json()["add_on"]
    invoice = one_off(api_client, [{"add_on_code": "setup"}]).get_json()["invoice"]

    assert [t["code"] for t in shown["taxes"]] == ["levy"]
    assert [(t["tax_code"], t["amount_cents"]) for t in invoice["applied_taxes"]] == [("levy", 50)]


# --- console ----------------------------------------------------------------------------------


def test_the_console_add_on_form_picks_taxes_and_the_page_shows_them(agent_client, org, taxes):
    form = agent_client.get("/add-ons/new")
    assert 'name="tax_codes"' in form.text and "Reduced VAT (reduced, 5.5 %)" in form.text

    data = {"name": "Onboarding", "code": "onboarding", "invoice_display_name": "",
            "description": "", "amount_currency": "EUR", "amount": "490",
            "tax_codes": ["reduced", "levy"]}  # fmt: skip
    created = agent_client.post("/add-ons/new", data=data)
    stored = db.session.scalar(select(AddOn).where(AddOn.code == "onboarding"))
    page = agent_client.get(f"/add-ons/{stored.lago_id}")
    edit = agent_client.get(f"/add-ons/{stored.lago_id}/edit")
    cleared = agent_client.post(f"/add-ons/{stored.lago_id}/edit", data={**data, "tax_codes": []})

    assert created.status_code == 302
    assert "Reduced VAT" in page.text and "Levy" in page.text
    assert '<option selected value="reduced">' in edit.text
    assert cleared.status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(AddOn).where(AddOn.code == "onboarding")).tax_codes == []
    assert "The customer’s" in agent_client.get(f"/add-ons/{stored.lago_id}").text


def test_the_console_says_when_a_chosen_tax_is_gone(agent_client, org, taxes):
    data = {"name": "Onboarding", "code": "onboarding", "invoice_display_name": "",
            "description": "", "amount_currency": "EUR", "amount": "490",
            "tax_codes": ["deleted_meanwhile"]}  # fmt: skip
    response = agent_client.post("/add-ons/new", data=data, htmx=True)
    assert response.status_code == 422
    assert "A chosen tax no longer exists" in response.text
    assert db.session.scalar(select(AddOn).where(AddOn.code == "onboarding")) is None


def test_the_tax_delete_preview_counts_its_add_ons(agent_client, api_client, org, taxes):
    add_on(api_client, "setup", tax_codes=["reduced"])
    add_on(api_client, "training", tax_codes=["reduced", "vat"])
    preview = agent_client.get(f"/taxes/{taxes['reduced'].lago_id}/delete")
    assert preview.status_code == 200 and "It is removed from 2 add-ons." in preview.text
