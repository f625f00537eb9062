"""Contract tests: the official Lago SDK (lago-python-client 1.55.0) against a live Ledgerline.

Every call goes through the SDK exactly as an integrator would make it, over real HTTP, so the
tests see what the SDK's models and LagoApiError make of each answer (see lago-sdk-notes.md).
Each test works in an organization of its own (`live_server.new_organization()`).

The SDK drops `None` fields from request bodies, so explicit nulls cannot be sent through it;
where its pydantic models refuse a payload outright, `Model.construct(...)` builds it anyway.
`sequential_id` is not in the SDK's CustomerResponse model (extra keys are dropped), so it is
read with the SDK's own transport helpers (same URL building, headers and response checks).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from lago_python_client.client import Client
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import (
    Address,
    Customer,
    CustomerBillingConfiguration,
    Metadata,
)
from lago_python_client.models.customer import CustomerResponse
from lago_python_client.services.request import make_headers, make_url, send_get_request
from lago_python_client.services.response import get_response_data

pytestmark = pytest.mark.live

ISO_UTC_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UNAUTHORIZED = {"status": 401, "error": "Unauthorized"}
CUSTOMER_NOT_FOUND = {"status": 404, "error": "Not Found", "code": "customer_not_found"}


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def new_client(live_server: Any) -> Callable[[], Client]:
    """Makes an SDK client for a fresh organization of its own on each call."""

    def make() -> Client:
        _organization_id, raw_key = live_server.new_organization()
        return Client(api_key=raw_key, api_url=live_server.url)

    return make


@pytest.fixture
def sdk(new_client: Callable[[], Client]) -> Client:
    """An SDK client for this test's own organization."""
    return new_client()


def ext_id(prefix: str = "cus") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def api_error(call: Callable[[], Any]) -> LagoApiError:
    """Run an SDK call that must fail and return the LagoApiError it raised."""
    with pytest.raises(LagoApiError) as info:
        call()
    return info.value


def validation_body(details: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }


def raw_customer(sdk: Client, external_id: str) -> dict[str, Any]:
    """`GET /customers/{id}` as JSON, through the SDK's transport (for keys its model drops)."""
    customers = sdk.customers
    response = send_get_request(
        url=make_url(origin=customers.base_url, path_parts=("customers", external_id)),
        headers=make_headers(api_key=customers.api_key),
    )
    data = get_response_data(response=response, key="customer")
    assert isinstance(data, dict)
    return data


def parse_timestamp(value: str) -> datetime:
    assert ISO_UTC_SECONDS.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def metadata_of(customer: CustomerResponse) -> list[tuple[str | None, str | None, bool | None]]:
    assert customer.metadata is not None
    return [(m.key, m.value, m.display_in_invoice) for m in customer.metadata.__root__]


def metadata_ids(customer: CustomerResponse) -> dict[str | None, str | None]:
    assert customer.metadata is not None
    return {m.key: m.lago_id for m in customer.metadata.__root__}


def external_ids(result: Any) -> list[str]:
    return [c.external_id for c in result["customers"]]


def full_customer(external_id: str) -> Customer:
    return Customer(
        external_id=external_id,
        name="Acme Rockets SAS",
        firstname="Wile",
        lastname="Coyote",
        customer_type="company",
        email="billing@acme.test, finance@acme.test",
        phone="+33 1 23 45 67 89",
        url="https://acme.test",
        logo_url="https://acme.test/logo.png",
        legal_name="Acme Rockets",
        legal_number="RCS 123 456 789",
        tax_identification_number="FR12345678901",
        address_line1="1 rue de la Paix",
        address_line2="Bâtiment B",
        city="Paris",
        state="IDF",
        zipcode="75002",
        country="fr",
        currency="EUR",
        timezone="Europe/Paris",
        net_payment_term=30,
        finalize_zero_amount_invoice="skip",
        billing_configuration=CustomerBillingConfiguration(
            invoice_grace_period=3,
            document_locale="fr",
            subscription_invoice_issuing_date_anchor="current_period_end",
            subscription_invoice_issuing_date_adjustment="keep_anchor",
        ),
        shipping_address=Address(
            address_line1="9 Hafenstraße",
            city="Hamburg",
            zipcode="20457",
            state="HH",
            country="de",
        ),
        metadata=[
            Metadata(key="segment", value="enterprise-platinum", display_in_invoice=True),
            Metadata(key="crm_owner", value="alice"),
        ],
    )


# ---------------------------------------------------------------------------------------------
# Create, upsert, find


def test_create_with_many_fields_returns_the_customer(sdk: Client) -> None:
    ext = ext_id()
    customer = sdk.customers.create(full_customer(ext))

    assert isinstance(customer, CustomerResponse)
    assert uuid.UUID(customer.lago_id)
    assert customer.external_id == ext
    assert customer.name == "Acme Rockets SAS"
    assert (customer.firstname, customer.lastname) == ("Wile", "Coyote")
    assert customer.customer_type == "company"
    assert customer.email == "billing@acme.test, finance@acme.test"
    assert customer.legal_name == "Acme Rockets"
    assert customer.tax_identification_number == "FR12345678901"
    assert (customer.address_line1, customer.address_line2) == ("1 rue de la Paix", "Bâtiment B")
    assert (customer.city, customer.zipcode, customer.state) == ("Paris", "75002", "IDF")
    assert customer.country == "FR"  # sent as "fr"
    assert customer.currency == "EUR"
    assert customer.timezone == "Europe/Paris"
    assert customer.applicable_timezone == "Europe/Paris"
    assert customer.net_payment_term == 30
    assert customer.finalize_zero_amount_invoice == "skip"

    config = customer.billing_configuration
    assert config is not None
    assert config.invoice_grace_period == 3
    assert config.document_locale == "fr"
    assert config.subscription_invoice_issuing_date_anchor == "current_period_end"
    assert config.subscription_invoice_issuing_date_adjustment == "keep_anchor"

    shipping = customer.shipping_address
    assert shipping is not None
    assert (shipping.address_line1, shipping.city, shipping.zipcode) == (
        "9 Hafenstraße",
        "Hamburg",
        "20457",
    )
    assert shipping.country == "DE"  # sent as "de"

    # display_in_invoice defaults to false; every item gets its own lago_id
    assert metadata_of(customer) == [
        ("segment", "enterprise-platinum", True),
        ("crm_owner", "alice", False),
    ]
    assert all(uuid.UUID(lago_id or "") for lago_id in metadata_ids(customer).values())

    created_at = parse_timestamp(customer.created_at)
    updated_at = parse_timestamp(customer.updated_at)
    assert updated_at >= created_at

    # the same customer comes back from find
    assert sdk.customers.find(ext) == customer


def test_minimal_customer_gets_applicable_timezone_utc(sdk: Client) -> None:
    ext = ext_id()
    customer = sdk.customers.create(Customer(external_id=ext))

    assert customer is not None
    assert customer.external_id == ext
    assert customer.timezone is None
    assert customer.applicable_timezone == "UTC"
    assert customer.name is None
    assert customer.metadata is not None and customer.metadata.__root__ == []
    parse_timestamp(customer.created_at)
    parse_timestamp(customer.updated_at)


def test_upsert_with_some_fields_leaves_the_others_unchanged(sdk: Client) -> None:
    ext = ext_id()
    original = sdk.customers.create(full_customer(ext))
    assert original is not None

    # The SDK drops None fields, so only `name` and one billing_configuration key travel.
    updated = sdk.customers.create(
        Customer(
            external_id=ext,
            name="Acme Rockets Europe",
            billing_configuration=CustomerBillingConfiguration(invoice_grace_period=7),
        )
    )
    assert updated is not None
    assert updated.lago_id == original.lago_id
    assert updated.created_at == original.created_at
    assert updated.name == "Acme Rockets Europe"
    assert updated.billing_configuration is not None
    assert updated.billing_configuration.invoice_grace_period == 7
    assert updated.billing_configuration.document_locale == "fr"  # absent key: kept
    assert parse_timestamp(updated.updated_at) >= parse_timestamp(original.updated_at)

    unchanged = {"name", "billing_configuration", "updated_at"}
    assert updated.dict(exclude=unchanged) == original.dict(exclude=unchanged)
    assert metadata_ids(updated) == metadata_ids(original)  # metadata absent: untouched

    # The update is stored, and a second customer was not created.
    assert sdk.customers.find(ext) == updated
    listed = sdk.customers.find_all()
    assert external_ids(listed) == [ext]
    assert listed["meta"]["total_count"] == 1


def test_upsert_changes_country_and_shipping_country_upper_cased(sdk: Client) -> None:
    ext = ext_id()
    sdk.customers.create(Customer(external_id=ext, country="FR"))

    updated = sdk.customers.create(
        Customer(external_id=ext, country="be", shipping_address=Address(country="nl"))
    )
    assert updated is not None
    assert updated.country == "BE"
    assert updated.shipping_address is not None
    assert updated.shipping_address.country == "NL"


def test_metadata_update_semantics(sdk: Client) -> None:
    ext = ext_id()
    created = sdk.customers.create(
        Customer(
            external_id=ext,
            metadata=[
                Metadata(key="plan", value="gold", display_in_invoice=False),
                Metadata(key="region", value="emea", display_in_invoice=True),
                Metadata(key="owner", value="bob", display_in_invoice=False),
            ],
        )
    )
    assert created is not None
    ids = metadata_ids(created)

    # `plan` is updated in place (same id), `shard` is new, `region` and `owner` are deleted.
    updated = sdk.customers.create(
        Customer(
            external_id=ext,
            metadata=[
                Metadata(id=ids["plan"], key="plan", value="platinum", display_in_invoice=True),
                Metadata(key="shard", value="eu-3", display_in_invoice=False),
            ],
        )
    )
    assert updated is not None
    assert sorted(metadata_of(updated)) == [("plan", "platinum", True), ("shard", "eu-3", False)]
    new_ids = metadata_ids(updated)
    assert new_ids["plan"] == ids["plan"]
    assert new_ids["shard"] not in ids.values()

    # An item can be renamed through its id.
    renamed = sdk.customers.create(
        Customer(
            external_id=ext,
            metadata=[
                Metadata(id=new_ids["plan"], key="tier", value="platinum", display_in_invoice=True),
                Metadata(id=new_ids["shard"], key="shard", value="eu-3", display_in_invoice=False),
            ],
        )
    )
    assert renamed is not None
    assert sorted(metadata_of(renamed)) == [("shard", "eu-3", False), ("tier", "platinum", True)]
    assert metadata_ids(renamed) == {"tier": new_ids["plan"], "shard": new_ids["shard"]}

    # No metadata key in the payload: metadata is left alone.
    untouched = sdk.customers.create(Customer(external_id=ext, name="Renamed"))
    assert untouched is not None
    assert metadata_ids(untouched) == metadata_ids(renamed)

    # An empty list removes every item.
    emptied = sdk.customers.create(Customer(external_id=ext, metadata=[]))
    assert emptied is not None
    assert emptied.metadata is not None and emptied.metadata.__root__ == []
    found = sdk.customers.find(ext)
    assert found.metadata is not None and found.metadata.__root__ == []


def test_metadata_limits_are_ledgerline_limits(sdk: Client) -> None:
    """Ledgerline allows 50 items, keys of 40 and values of 255 characters (lago-api.md)."""
    ext = ext_id()
    items = [Metadata(key=f"k{i:02d}".ljust(40, "x"), value="v" * 255) for i in range(50)]
    customer = sdk.customers.create(Customer(external_id=ext, metadata=items))
    assert customer is not None
    assert customer.metadata is not None and len(customer.metadata.__root__) == 50


def test_find_unknown_customer_is_404_customer_not_found(sdk: Client) -> None:
    error = api_error(lambda: sdk.customers.find("no-such-customer"))
    assert error.status_code == 404
    assert error.response == CUSTOMER_NOT_FOUND


# ---------------------------------------------------------------------------------------------
# Listing


@pytest.fixture
def three_customers(sdk: Client) -> dict[str, str]:
    """Three customers created in this order: acme, globex, initech (external ids by name)."""
    ids = {"acme": ext_id("acme"), "globex": ext_id("globex"), "initech": ext_id("initech")}
    sdk.customers.create(
        Customer(
            external_id=ids["acme"],
            name="Acme Rockets",
            country="fr",
            currency="EUR",
            customer_type="company",
            tax_identification_number="FR999",
            metadata=[Metadata(key="plan", value="gold")],
        )
    )
    sdk.customers.create(
        Customer(
            external_id=ids["globex"],
            name="Globex Corporation",
            country="US",
            currency="USD",
            customer_type="individual",
            metadata=[Metadata(key="segment", value="platinum-tier")],
        )
    )
    sdk.customers.create(
        Customer(external_id=ids["initech"], name="Initech", country="DE", currency="EUR")
    )
    return ids


def test_find_all_lists_newest_first_with_meta(
    sdk: Client, three_customers: dict[str, str]
) -> None:
    result = sdk.customers.find_all()
    assert set(result) == {"customers", "meta"}
    assert all(isinstance(c, CustomerResponse) for c in result["customers"])
    assert external_ids(result) == [
        three_customers["initech"],
        three_customers["globex"],
        three_customers["acme"],
    ]
    assert result["meta"] == {
        "current_page": 1,
        "next_page": None,
        "prev_page": None,
        "total_pages": 1,
        "total_count": 3,
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"search_term": "ROCKET"}, {"acme"}, id="search-name-fragment-any-case"),
        pytest.param({"search_term": "platinum"}, {"globex"}, id="search-metadata-value"),
        pytest.param({"search_term": "globex-"}, {"globex"}, id="search-external-id-fragment"),
        pytest.param({"search_term": "rockets acme"}, {"acme"}, id="search-every-word"),
        pytest.param({"external_id": "<globex>"}, {"globex"}, id="external-id"),
        pytest.param({"countries[]": ["FR", "DE"]}, {"acme", "initech"}, id="countries"),
        pytest.param({"currencies[]": ["USD"]}, {"globex"}, id="currencies-one"),
        pytest.param(
            {"currencies[]": ["EUR", "USD"]}, {"acme", "globex", "initech"}, id="currencies-two"
        ),
        pytest.param({"customer_type": "company"}, {"acme"}, id="customer-type-company"),
        pytest.param({"customer_type": "individual"}, {"globex"}, id="customer-type-individual"),
        pytest.param({"metadata[plan]": "gold"}, {"acme"}, id="metadata-match"),
        pytest.param({"metadata[plan]": "silver"}, set(), id="metadata-no-match"),
        pytest.param({"has_tax_identification_number": "true"}, {"acme"}, id="has-tin-true"),
        pytest.param(
            {"has_tax_identification_number": False}, {"globex", "initech"}, id="has-tin-false"
        ),
        pytest.param(
            {"search_term": "initech", "currencies[]": ["EUR"]}, {"initech"}, id="combined"
        ),
        pytest.param(
            {"search_term": "initech", "currencies[]": ["USD"]}, set(), id="combined-no-match"
        ),
    ],
)
def test_find_all_filters(
    sdk: Client,
    three_customers: dict[str, str],
    options: dict[str, Any],
    expected: set[str],
) -> None:
    options = {
        key: (
            three_customers[value[1:-1]]
            if isinstance(value, str) and value.startswith("<")
            else value
        )
        for key, value in options.items()
    }
    result = sdk.customers.find_all(options)
    assert set(external_ids(result)) == {three_customers[name] for name in expected}
    assert result["meta"]["total_count"] == len(expected)


def test_find_all_pagination_meta(sdk: Client, three_customers: dict[str, str]) -> None:
    first = sdk.customers.find_all({"page": 1, "per_page": 2})
    assert external_ids(first) == [three_customers["initech"], three_customers["globex"]]
    assert first["meta"] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 2,
        "total_count": 3,
    }

    second = sdk.customers.find_all({"page": 2, "per_page": 2})
    assert external_ids(second) == [three_customers["acme"]]
    assert second["meta"] == {
        "current_page": 2,
        "next_page": None,
        "prev_page": 1,
        "total_pages": 2,
        "total_count": 3,
    }


def test_find_all_with_no_match_has_empty_meta(sdk: Client) -> None:
    result = sdk.customers.find_all({"search_term": "nothing-matches-this"})
    assert result["customers"] == []
    assert result["meta"] == {
        "current_page": 0,
        "next_page": None,
        "prev_page": None,
        "total_pages": 0,
        "total_count": 0,
    }


def test_search_follows_metadata_changes(sdk: Client) -> None:
    ext = ext_id()
    sdk.customers.create(Customer(external_id=ext, metadata=[Metadata(key="m", value="zebra")]))
    assert external_ids(sdk.customers.find_all({"search_term": "zebra"})) == [ext]

    sdk.customers.create(Customer(external_id=ext, metadata=[Metadata(key="m", value="okapi")]))
    assert sdk.customers.find_all({"search_term": "zebra"})["customers"] == []
    assert external_ids(sdk.customers.find_all({"search_term": "okapi"})) == [ext]

    sdk.customers.create(Customer(external_id=ext, metadata=[]))
    assert sdk.customers.find_all({"search_term": "okapi"})["customers"] == []


@pytest.mark.parametrize(
    ("term", "found"), [("gl", True), ("GL", True), ("g", True), ("lo", False)]
)
def test_short_search_terms_match_word_prefixes(sdk: Client, term: str, found: bool) -> None:
    # The issue wins over lago-api.md §3.4 here: terms of 1-2 characters match word prefixes
    # (an index answers them); 3+ characters match anywhere inside a field.
    ext = ext_id()
    sdk.customers.create(Customer(external_id=ext, name="Globex"))
    assert external_ids(sdk.customers.find_all({"search_term": term})) == ([ext] if found else [])


def test_url_safe_external_id_punctuation_round_trips(sdk: Client) -> None:
    # The SDK puts external ids in URL paths unencoded; `[A-Za-z0-9._:-]` must work.
    ext = f"acme.corp:eu_{uuid.uuid4().hex[:6]}-1"
    created = sdk.customers.create(Customer(external_id=ext, name="Punctuated"))
    assert created is not None and created.external_id == ext
    assert sdk.customers.find(ext).lago_id == created.lago_id
    assert external_ids(sdk.customers.find_all({"external_id": ext})) == [ext]
    assert sdk.customers.destroy(ext).lago_id == created.lago_id


# ---------------------------------------------------------------------------------------------
# Delete


def test_destroy_returns_the_customer_and_frees_the_external_id(sdk: Client) -> None:
    ext = ext_id()
    created = sdk.customers.create(
        Customer(external_id=ext, name="Soon Gone", metadata=[Metadata(key="k", value="v")])
    )
    assert created is not None
    old_sequential_id = raw_customer(sdk, ext)["sequential_id"]

    deleted = sdk.customers.destroy(ext)
    assert isinstance(deleted, CustomerResponse)
    assert deleted.lago_id == created.lago_id
    assert deleted.external_id == ext
    assert deleted.name == "Soon Gone"

    error = api_error(lambda: sdk.customers.find(ext))
    assert (error.status_code, error.response) == (404, CUSTOMER_NOT_FOUND)
    assert sdk.customers.find_all()["customers"] == []
    error = api_error(lambda: sdk.customers.destroy(ext))
    assert (error.status_code, error.response) == (404, CUSTOMER_NOT_FOUND)

    # The same external id now creates a brand-new customer, without the old metadata.
    recreated = sdk.customers.create(Customer(external_id=ext))
    assert recreated is not None
    assert recreated.lago_id != created.lago_id
    assert recreated.name is None
    assert recreated.metadata is not None and recreated.metadata.__root__ == []
    new_sequential_id = raw_customer(sdk, ext)["sequential_id"]
    assert isinstance(new_sequential_id, int)
    assert new_sequential_id == old_sequential_id + 1
    assert external_ids(sdk.customers.find_all()) == [ext]


# ---------------------------------------------------------------------------------------------
# Validation errors, and nothing changes after a refused upsert

TOO_MANY_METADATA = [Metadata(key=f"key{i}", value="v") for i in range(51)]

#: (id, the invalid part of a Customer payload, the expected error_details)
INVALID_FIELDS: list[tuple[str, dict[str, Any], dict[str, list[str]]]] = [
    ("currency", {"currency": "XYZ"}, {"currency": ["value_is_invalid"]}),
    ("country", {"country": "ZZ"}, {"country": ["not_a_valid_country_code"]}),
    (
        "shipping-country",
        {"shipping_address": Address(city="Nowhere", country="XX")},
        {"shipping_country": ["not_a_valid_country_code"]},
    ),
    ("timezone", {"timezone": "Mars/Olympus_Mons"}, {"timezone": ["invalid_timezone"]}),
    ("email", {"email": "not-an-email"}, {"email": ["invalid_email_format"]}),
    (
        "email-list",
        {"email": "good@acme.test, bad@@acme"},
        {"email": ["invalid_email_format"]},
    ),
    (
        "document-locale",
        {"billing_configuration": CustomerBillingConfiguration(document_locale="klingon")},
        {"document_locale": ["not_a_valid_language_code"]},
    ),
    (
        "grace-period",
        {"billing_configuration": CustomerBillingConfiguration(invoice_grace_period=-1)},
        {"invoice_grace_period": ["value_is_out_of_range"]},
    ),
    ("net-payment-term", {"net_payment_term": -5}, {"net_payment_term": ["value_is_out_of_range"]}),
    ("customer-type", {"customer_type": "alien"}, {"customer_type": ["value_is_invalid"]}),
    (
        "finalize-zero",
        {"finalize_zero_amount_invoice": "sometimes"},
        {"finalize_zero_amount_invoice": ["invalid_value"]},
    ),
    ("metadata-count", {"metadata": TOO_MANY_METADATA}, {"metadata": ["invalid_count"]}),
    (
        "metadata-key-length",
        {"metadata": [Metadata(key="k" * 41, value="v")]},
        {"metadata": ["value_is_too_long"]},
    ),
    (
        "metadata-value-length",
        {"metadata": [Metadata(key="k", value="v" * 256)]},
        {"metadata": ["value_is_too_long"]},
    ),
    (
        "metadata-no-value",
        {"metadata": [Metadata(key="k")]},  # the SDK drops the None value
        {"metadata": ["value_is_mandatory"]},
    ),
    ("name-length", {"name": "n" * 256}, {"name": ["value_is_too_long"]}),
]


def test_blank_external_id_is_mandatory(sdk: Client) -> None:
    error = api_error(lambda: sdk.customers.create(Customer(external_id="")))
    assert error.status_code == 422
    assert error.response == validation_body({"external_id": ["value_is_mandatory"]})
    assert sdk.customers.find_all()["meta"]["total_count"] == 0


def test_missing_external_id_is_mandatory(sdk: Client) -> None:
    # The SDK model requires external_id; construct() skips validation to send it anyway.
    error = api_error(lambda: sdk.customers.create(Customer.construct(name="No Id")))
    assert error.status_code == 422
    assert error.response == validation_body({"external_id": ["value_is_mandatory"]})
    assert sdk.customers.find_all()["meta"]["total_count"] == 0


def test_non_integer_net_payment_term_is_refused(sdk: Client) -> None:
    # The SDK's pydantic model refuses "soon" for an int field, so construct() sends it.
    ext = ext_id()
    payload = Customer.construct(external_id=ext, net_payment_term="soon")
    error = api_error(lambda: sdk.customers.create(payload))
    assert error.status_code == 422
    assert error.response == validation_body({"net_payment_term": ["value_is_invalid"]})
    assert api_error(lambda: sdk.customers.find(ext)).status_code == 404


@pytest.mark.parametrize(
    ("invalid", "details"),
    [pytest.param(fields, details, id=case) for case, fields, details in INVALID_FIELDS],
)
def test_invalid_create_is_422_and_creates_nothing(
    sdk: Client, invalid: dict[str, Any], details: dict[str, list[str]]
) -> None:
    ext = ext_id()
    fields = {"name": "Valid Name", **invalid}
    error = api_error(lambda: sdk.customers.create(Customer(external_id=ext, **fields)))
    assert error.status_code == 422
    assert error.response == validation_body(details)

    error = api_error(lambda: sdk.customers.find(ext))
    assert (error.status_code, error.response) == (404, CUSTOMER_NOT_FOUND)
    listed = sdk.customers.find_all()
    assert listed["customers"] == []
    assert listed["meta"]["total_count"] == 0


@pytest.mark.parametrize(
    ("invalid", "details"),
    [pytest.param(fields, details, id=case) for case, fields, details in INVALID_FIELDS],
)
def test_invalid_update_is_422_and_changes_nothing(
    sdk: Client, invalid: dict[str, Any], details: dict[str, list[str]]
) -> None:
    ext = ext_id()
    before = sdk.customers.create(full_customer(ext))
    assert before is not None

    # Valid changes travel with the invalid field; none of them may be written.
    changes: dict[str, Any] = {
        "name": "Changed Name",
        "city": "Lyon",
        "metadata": [Metadata(key="replacement", value="x")],
        "billing_configuration": CustomerBillingConfiguration(invoice_grace_period=9),
    }
    changes.update(invalid)
    error = api_error(lambda: sdk.customers.create(Customer(external_id=ext, **changes)))
    assert error.status_code == 422
    assert error.response == validation_body(details)

    assert sdk.customers.find(ext) == before
    assert sdk.customers.find_all()["meta"]["total_count"] == 1


def test_all_field_errors_are_reported_together(sdk: Client) -> None:
    ext = ext_id()
    error = api_error(
        lambda: sdk.customers.create(
            Customer(external_id=ext, currency="XYZ", country="ZZ", timezone="Nowhere/City")
        )
    )
    assert error.status_code == 422
    assert error.response == validation_body(
        {
            "country": ["not_a_valid_country_code"],
            "currency": ["value_is_invalid"],
            "timezone": ["invalid_timezone"],
        }
    )


# ---------------------------------------------------------------------------------------------
# Authentication and organization isolation


def test_wrong_api_key_is_401_on_every_call(live_server: Any, sdk: Client) -> None:
    ext = ext_id()
    sdk.customers.create(Customer(external_id=ext, name="Protected"))
    intruder = Client(api_key="not-a-real-key", api_url=live_server.url)

    calls: list[Callable[[], Any]] = [
        lambda: intruder.customers.find(ext),
        lambda: intruder.customers.find("unknown-customer"),  # 401, not 404
        lambda: intruder.customers.find_all(),
        lambda: intruder.customers.find_all({"search_term": "Protected"}),
        lambda: intruder.customers.create(Customer(external_id=ext, name="Hijacked")),
        lambda: intruder.customers.create(Customer(external_id="", currency="XYZ")),  # not 422
        lambda: intruder.customers.destroy(ext),
    ]
    for call in calls:
        error = api_error(call)
        assert error.status_code == 401
        assert error.response == UNAUTHORIZED

    survivor = sdk.customers.find(ext)
    assert survivor.name == "Protected"


def test_another_organizations_customer_is_not_found(
    sdk: Client, new_client: Callable[[], Client]
) -> None:
    ext = ext_id("shared")
    mine = sdk.customers.create(
        Customer(external_id=ext, name="Mine", metadata=[Metadata(key="k", value="secret")])
    )
    assert mine is not None
    other = new_client()

    for call in (lambda: other.customers.find(ext), lambda: other.customers.destroy(ext)):
        error = api_error(call)
        assert (error.status_code, error.response) == (404, CUSTOMER_NOT_FOUND)
    for options in ({}, {"search_term": "Mine"}, {"search_term": "secret"}, {"external_id": ext}):
        assert other.customers.find_all(options)["customers"] == []

    # The same external id in the other organization is a different customer.
    theirs = other.customers.create(Customer(external_id=ext, name="Theirs"))
    assert theirs is not None
    assert theirs.lago_id != mine.lago_id
    assert sdk.customers.find(ext) == mine
    assert other.customers.find(ext).name == "Theirs"


CHILD_LISTS = [
    "customer_invoices",
    "customer_subscriptions",
    "customer_credit_notes",
    "customer_payments",
    "customer_payment_requests",
    "customer_applied_coupons",
    "customer_wallets",
]


@pytest.mark.parametrize("child_client", CHILD_LISTS)
def test_child_list_without_authorization_header_gets_a_json_error(
    sdk: Client, child_client: str
) -> None:
    """The SDK's child-list clients send no Authorization header (an SDK bug, lago-sdk-notes.md
    §2). Whatever the answer, it must be Lago's JSON error: an HTML or empty body would make the
    SDK raise a status-500 decode error with the real status lost (response None)."""
    ext = ext_id()
    sdk.customers.create(Customer(external_id=ext))

    error = api_error(lambda: getattr(sdk, child_client).find_all(ext))
    assert isinstance(error.response, dict)
    assert error.response["status"] == error.status_code
    assert error.status_code != 500
    assert isinstance(error.response["error"], str)
