"""Contract test: taxes driven only through the official SDK (lago-python-client 1.55.0,
`client.taxes`) against a live Ledgerline, and a customer's taxes as the SDK reads them."""

from __future__ import annotations

from typing import Any

import pytest
from lago_python_client.client import Client
from lago_python_client.models import Customer, Tax

from tests.test_sdk_contract import api_error, validation_body

pytestmark = pytest.mark.live


@pytest.fixture
def sdk(live_server: Any) -> Client:
    _organization_id, raw_key = live_server.new_organization()
    return Client(api_key=raw_key, api_url=live_server.url)


def test_taxes_through_the_sdk(sdk):
    created = sdk.taxes.create(
        Tax(
            name="VAT FR",
            code="vat_fr",
            rate=20.0,
            description="Standard",
            applied_to_organization=True,
        )
    )
    assert (created.code, created.rate, created.applied_to_organization) == ("vat_fr", 20.0, True)
    assert created.lago_id and created.created_at
    sdk.taxes.create(Tax(name="Reduced", code="vat_reduced", rate=5.5))

    assert sdk.taxes.find("vat_fr").lago_id == created.lago_id
    listed = sdk.taxes.find_all({"per_page": 10})
    assert {tax.code for tax in listed["taxes"]} == {"vat_fr", "vat_reduced"}
    assert listed["meta"]["total_count"] == 2

    updated = sdk.taxes.update(Tax(rate=10.0, name="Intermediate"), "vat_reduced")
    assert (updated.name, updated.rate) == ("Intermediate", 10.0)

    customer = sdk.customers.create(Customer(external_id="acme", tax_codes=["vat_reduced"]))
    # TaxesResponse is a pydantic root model: its items are under __root__
    assert [(tax.code, tax.rate) for tax in customer.taxes.__root__] == [("vat_reduced", 10.0)]

    assert sdk.taxes.destroy("vat_reduced").code == "vat_reduced"
    assert sdk.customers.find("acme").taxes.__root__ == []


def test_tax_errors_reach_the_sdk(sdk):
    sdk.taxes.create(Tax(name="VAT FR", code="vat_fr", rate=20.0))

    duplicate = api_error(lambda: sdk.taxes.create(Tax(name="Again", code="vat_fr", rate=1.0)))
    out_of_range = api_error(lambda: sdk.taxes.create(Tax(name="Too much", code="x", rate=120.0)))
    missing = api_error(lambda: sdk.taxes.find("nope"))
    unknown_code = api_error(
        lambda: sdk.customers.create(Customer(external_id="acme", tax_codes=["nope"]))
    )

    assert duplicate.response == validation_body({"code": ["value_already_exist"]})
    assert out_of_range.response == validation_body({"rate": ["value_is_out_of_range"]})
    assert missing.response == {"status": 404, "error": "Not Found", "code": "tax_not_found"}
    assert unknown_code.response["code"] == "tax_not_found"
    assert [tax.code for tax in sdk.taxes.find_all()["taxes"]] == ["vat_fr"]
