"""Money: currency exponents from CLDR, half-up rounding to minor units, API decimal parsing."""

from decimal import Decimal

import pytest

from billing.money import (
    currency_exponent,
    format_money,
    from_minor_units,
    parse_decimal,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("EUR", 2), ("USD", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3), ("ISK", 0)],
)
def test_currency_exponent(currency, exponent):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize("currency", ["XYZ", "eur", "", "EURO"])
def test_unknown_currency_is_refused(currency):
    with pytest.raises(ValueError):
        currency_exponent(currency)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.34", "EUR", 1234),
        ("2.345", "EUR", 235),  # half up, not banker's (2.34)
        ("2.335", "EUR", 234),
        ("2.3449999", "EUR", 234),
        ("-2.345", "EUR", -235),  # half away from zero
        ("0.005", "EUR", 1),
        ("0.0049", "EUR", 0),
        ("1234.5", "JPY", 1235),
        ("1234.4999", "JPY", 1234),
        ("0.5", "JPY", 1),
        ("1.2345", "KWD", 1235),
        ("1.2344", "KWD", 1234),
        ("1", "KWD", 1000),
        ("0", "EUR", 0),
    ],
)
def test_to_minor_units_rounds_half_up(amount, currency, minor):
    assert to_minor_units(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [(1234, "EUR", "12.34"), (5, "EUR", "0.05"), (1234, "JPY", "1234"), (1235, "KWD", "1.235")],
)
def test_from_minor_units(minor, currency, amount):
    result = from_minor_units(minor, currency)
    assert result == Decimal(amount)
    assert str(result) == amount


def test_infinite_amount_is_refused():
    with pytest.raises(ValueError):
        to_minor_units(Decimal("Infinity"), "EUR")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.5", Decimal("0.5")),
        (" 12 ", Decimal("12")),
        ("-3.25", Decimal("-3.25")),
        ("1e3", Decimal("1000")),
        (".5", Decimal("0.5")),
        (7, Decimal(7)),
        (0.1, Decimal("0.1")),  # the digits the client wrote, not the binary float
        (Decimal("2.50"), Decimal("2.50")),
        ("NaN", None),
        ("Infinity", None),
        ("inf", None),
        (float("nan"), None),
        (float("inf"), None),
        (Decimal("NaN"), None),
        (True, None),
        (False, None),
        ("", None),
        ("abc", None),
        ("1_000", None),
        ("1,5", None),
        (None, None),
        ([1], None),
        ({"a": 1}, None),
    ],
)
def test_parse_decimal(value, expected):
    assert parse_decimal(value) == expected


@pytest.mark.parametrize(
    ("cents", "currency", "locale", "shown"),
    [
        (1999, "EUR", "en", "€19.99"),
        (1000, "JPY", "en", "¥1,000"),
        (12345, "KWD", "en", "KWD\u00a012.345"),
        (-500, "USD", "en", "-$5.00"),
        (123456, "EUR", "fr", "1\u202f234,56\u00a0€"),
    ],
)
def test_money_is_shown_with_the_currency_precision_and_the_locale(cents, currency, locale, shown):
    assert format_money(cents, currency, locale) == shown
