"""Contract tests: add-ons and one-off invoices driven only through the official SDK
(lago-python-client 1.55.0) against a live Ledgerline (lago-sdk-notes.md §4.9, and
`client.invoices.create(OneOffInvoice(...))`). Each test works in an organization of its own."""

from __future__ import annotations

from typing import Any

import pytest
from lago_python_client.client import Client
from lago_python_client.models import AddOn, Customer, Tax
from lago_python_client.models.invoice import InvoiceFee, InvoiceFeesList, OneOffInvoice

from tests.test_sdk_contract import api_error, validation_body

pytestmark = pytest.mark.live


@pytest.fixture
def sdk(live_server: Any) -> Client:
    _organization_id, raw_key = live_server.new_organization()
    return Client(api_key=raw_key, api_url=live_server.url)


def new_add_on(sdk: Client, **fields: Any) -> Any:
    return sdk.add_ons.create(
        AddOn(
            **{
                "name": "Onboarding",
                "code": "onboarding",
                "amount_cents": 49900,
                "amount_currency": "EUR",
                **fields,
            }
        )
    )


def test_add_on_create_find_update_destroy(sdk):
    created = new_add_on(sdk, description="Kick-off", invoice_display_name="Onboarding fee")
    new_add_on(sdk, name="Support", code="support", amount_cents=1500)

    found = sdk.add_ons.find("onboarding")
    listed = sdk.add_ons.find_all({"per_page": 1})
    updated = sdk.add_ons.update(AddOn(amount_cents=59900), "onboarding")
    destroyed = sdk.add_ons.destroy("onboarding")

    assert created.code == "onboarding" and created.amount_cents == 49900
    assert created.amount_currency == "EUR" and created.description == "Kick-off"
    assert found.lago_id == created.lago_id and found.invoice_display_name == "Onboarding fee"
    assert [a.code for a in listed["add_ons"]] == ["support"]
    assert listed["meta"]["total_count"] == 2
    assert updated.amount_cents == 59900 and updated.name == "Onboarding"
    assert destroyed.code == "onboarding"
    missing = api_error(lambda: sdk.add_ons.find("onboarding"))
    assert missing.status_code == 404 and missing.response["code"] == "add_on_not_found"


def test_add_on_errors(sdk):
    new_add_on(sdk)
    duplicate = api_error(lambda: new_add_on(sdk))
    invalid = api_error(lambda: new_add_on(sdk, code="other", amount_currency="XYZ"))
    assert duplicate.response == validation_body({"code": ["value_already_exist"]})
    assert invalid.response == validation_body({"amount_currency": ["value_is_invalid"]})


def bill_acme(sdk: Client, *fees: InvoiceFee) -> Any:
    """A one-off invoice in euros for the customer `acme`."""
    return sdk.invoices.create(
        OneOffInvoice(
            external_customer_id="acme",
            currency="EUR",
            fees=InvoiceFeesList(__root__=list(fees)),
        )
    )


def test_one_off_invoice_through_the_sdk(sdk):
    sdk.customers.create(Customer(external_id="acme", currency="EUR"))
    new_add_on(sdk, amount_cents=1999)

    invoice = bill_acme(
        sdk,
        InvoiceFee(add_on_code="onboarding", units=2.5, description="Workshop"),
        InvoiceFee(add_on_code="onboarding", unit_amount_cents=1000),
    )

    assert invoice.invoice_type == "one_off" and invoice.status == "finalized"
    assert invoice.number.endswith("-001")
    # 2.5 × €19.99 = €49.975 → €49.98, then one unit at €10.00
    assert [fee.amount_cents for fee in invoice.fees.__root__] == [4998, 1000]
    assert (
        invoice.fees.__root__[0].item.type == "add_on"
        and invoice.fees.__root__[0].item.code == "onboarding"
    )
    assert invoice.total_amount_cents == 5998
    assert sdk.invoices.find(invoice.lago_id).total_amount_cents == 5998


def test_one_off_invoice_errors_through_the_sdk(sdk):
    sdk.customers.create(Customer(external_id="acme", currency="EUR"))
    new_add_on(sdk)

    def one_off(customer: str, currency: str, *codes: str) -> Any:
        fees = InvoiceFeesList(__root__=[InvoiceFee(add_on_code=c) for c in codes])
        return sdk.invoices.create(
            OneOffInvoice(external_customer_id=customer, currency=currency, fees=fees)
        )

    assert api_error(lambda: one_off("nobody", "EUR", "onboarding")).response["code"] == (
        "customer_not_found"
    )
    assert api_error(lambda: one_off("acme", "EUR")).response["code"] == "fees_not_found"
    assert api_error(lambda: one_off("acme", "EUR", "nope")).response["code"] == (
        "add_on_not_found"
    )
    assert api_error(lambda: one_off("acme", "USD", "onboarding")).response == validation_body(
        {"currency": ["currencies_does_not_match"]}
    )


def test_add_on_taxes_through_the_sdk(sdk):
    sdk.taxes.create(Tax(name="VAT", code="vat", rate=20.0))
    sdk.taxes.create(Tax(name="Reduced VAT", code="reduced", rate=5.5))
    sdk.taxes.create(Tax(name="Levy", code="levy", rate=2.5))
    sdk.customers.create(Customer(external_id="acme", currency="EUR", tax_codes=["vat"]))

    created = new_add_on(sdk, amount_cents=1999, tax_codes=["reduced"])
    new_add_on(sdk, code="support", name="Support", amount_cents=15000)
    missing = api_error(lambda: new_add_on(sdk, code="other", tax_codes=["nope"]))
    invoice = bill_acme(
        sdk,
        InvoiceFee(add_on_code="onboarding"),  # the add-on's 5.5 %: €1.09945
        InvoiceFee(add_on_code="support"),  # the customer's 20 %: €30.00
        InvoiceFee(add_on_code="onboarding", tax_codes=["levy"]),  # €0.49975
    )

    assert [(tax.code, tax.rate) for tax in created.taxes.__root__] == [("reduced", 5.5)]
    assert sdk.add_ons.find("onboarding").taxes.__root__[0].code == "reduced"
    assert missing.status_code == 404 and missing.response["code"] == "tax_not_found"
    assert [fee.taxes_amount_cents for fee in invoice.fees.__root__] == [110, 3000, 50]
    assert invoice.taxes_amount_cents == 3160
    assert invoice.total_amount_cents == 1999 + 15000 + 1999 + 3160
