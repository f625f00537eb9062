"""The customer payload parser: Lago's error codes, normalizations, and what counts as absent."""

import pytest

from billing.services.customer_input import parse_customer_input


def errors_of(payload):
    return parse_customer_input({"external_id": "c1", **payload}).errors


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({"external_id": ""}, "external_id", "value_is_mandatory"),
        ({"external_id": "   "}, "external_id", "value_is_mandatory"),
        ({"external_id": None}, "external_id", "value_is_mandatory"),
        ({"external_id": "a/b"}, "external_id", "value_is_invalid"),
        ({"external_id": "a?b"}, "external_id", "value_is_invalid"),
        ({"external_id": "x" * 256}, "external_id", "value_is_too_long"),
        ({"external_id": {"id": 1}}, "external_id", "value_is_invalid"),
        ({"currency": "XYZ"}, "currency", "value_is_invalid"),
        ({"currency": "XAU"}, "currency", "value_is_invalid"),
        ({"currency": 12}, "currency", "value_is_invalid"),
        ({"country": "ZZ"}, "country", "not_a_valid_country_code"),
        ({"country": "France"}, "country", "not_a_valid_country_code"),
        ({"timezone": "Mars/Olympus"}, "timezone", "invalid_timezone"),
        ({"email": "not-an-email"}, "email", "invalid_email_format"),
        ({"email": "ok@example.com, broken@"}, "email", "invalid_email_format"),
        ({"email": 42}, "email", "invalid_email_format"),
        ({"customer_type": "alien"}, "customer_type", "value_is_invalid"),
        ({"account_type": None}, "account_type", "value_is_invalid"),
        ({"name": "n" * 256}, "name", "value_is_too_long"),
        ({"name": ["a"]}, "name", "value_is_invalid"),
        ({"net_payment_term": -1}, "net_payment_term", "value_is_out_of_range"),
        ({"net_payment_term": "ten"}, "net_payment_term", "value_is_invalid"),
        ({"net_payment_term": True}, "net_payment_term", "value_is_invalid"),
        (
            {"finalize_zero_amount_invoice": "always"},
            "finalize_zero_amount_invoice",
            "invalid_value",
        ),
        ({"billing_configuration": "fr"}, "billing_configuration", "value_is_invalid"),
        (
            {"billing_configuration": {"document_locale": "xx"}},
            "document_locale",
            "not_a_valid_language_code",
        ),
        (
            {"billing_configuration": {"invoice_grace_period": -3}},
            "invoice_grace_period",
            "value_is_out_of_range",
        ),
        (
            {"billing_configuration": {"payment_provider": "paypal"}},
            "payment_provider",
            "value_is_invalid",
        ),
        ({"shipping_address": {"country": "XX"}}, "shipping_country", "not_a_valid_country_code"),
        ({"shipping_address": "Paris"}, "shipping_address", "value_is_invalid"),
        ({"metadata": {"key": "a"}}, "metadata", "value_is_invalid"),
        ({"metadata": [{"key": "a"}]}, "metadata", "value_is_mandatory"),
        ({"metadata": [{"value": "a"}]}, "metadata", "value_is_mandatory"),
        ({"metadata": [{"key": "k" * 41, "value": "v"}]}, "metadata", "value_is_too_long"),
        ({"metadata": [{"key": "k", "value": "v" * 256}]}, "metadata", "value_is_too_long"),
        (
            {"metadata": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]},
            "metadata",
            "value_already_exist",
        ),
        (
            {"metadata": [{"key": f"k{i}", "value": "v"} for i in range(51)]},
            "metadata",
            "invalid_count",
        ),
        (
            {"integration_customers": [{"integration_type": "myspace"}]},
            "integration_customers",
            "value_is_invalid",
        ),
        ({"tax_codes": "vat"}, "tax_codes", "value_is_invalid"),
    ],
)
def test_bad_input_gets_lagos_error_code(payload, field, code):
    assert errors_of(payload).get(field) == [code]


def test_every_bad_field_is_reported_at_once():
    errors = errors_of({"currency": "XYZ", "country": "ZZ", "timezone": "X/Y"})
    assert set(errors) == {"currency", "country", "timezone"}


def test_fifty_metadata_items_with_long_keys_and_values_are_accepted():
    items = [{"key": f"{i:02d}" + "k" * 38, "value": "v" * 255} for i in range(50)]
    parsed = parse_customer_input({"external_id": "c1", "metadata": items})
    assert parsed.errors == {}
    assert len(parsed.metadata) == 50


def test_codes_are_upper_cased_and_blank_values_mean_null():
    parsed = parse_customer_input(
        {
            "external_id": "c1",
            "country": "fr",
            "currency": "eur",
            "shipping_address": {"country": "de", "city": ""},
            "phone": "",
        }
    )
    assert parsed.errors == {}
    assert parsed.columns["country"] == "FR"
    assert parsed.columns["currency"] == "EUR"
    assert parsed.columns["shipping_country"] == "DE"
    assert parsed.columns["shipping_city"] is None
    assert parsed.columns["phone"] is None


def test_absent_keys_change_nothing_and_explicit_nulls_clear():
    parsed = parse_customer_input({"external_id": "c1", "name": None})
    assert parsed.columns == {"name": None}
    assert parsed.metadata is None
    assert parsed.integrations is None


def test_null_finalize_zero_amount_invoice_means_inherit():
    parsed = parse_customer_input({"external_id": "c1", "finalize_zero_amount_invoice": None})
    assert parsed.columns["finalize_zero_amount_invoice"] == "inherit"


def test_comma_separated_emails_are_each_checked_and_stored_as_sent():
    parsed = parse_customer_input({"external_id": "c1", "email": "a@example.com ,b@example.com"})
    assert parsed.errors == {}
    assert parsed.columns["email"] == "a@example.com ,b@example.com"


def test_numbers_are_accepted_where_lago_coerces_them():
    parsed = parse_customer_input({"external_id": 1234, "zipcode": 75001, "net_payment_term": "30"})
    assert parsed.errors == {}
    assert parsed.external_id == "1234"
    assert parsed.columns["zipcode"] == "75001"
    assert parsed.columns["net_payment_term"] == 30


def test_external_id_may_be_left_out_when_one_will_be_generated():
    assert parse_customer_input({}, require_external_id=False).errors == {}
