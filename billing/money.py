"""Money: integer minor units plus an ISO 4217 currency. All money rounding lives here.

Amounts are computed in `Decimal` major units (prices are decimal strings such as "0.5") and turned
into integer minor units once, at the end, with ROUND_HALF_UP (Ruby's BigDecimal default, which
Lago uses). Money is never a float.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision, is_currency

# What Lago's BigDecimal accepts in an API decimal string: optional sign, digits with an optional
# fraction, optional exponent. Python's Decimal also takes "1_000", "NaN" and "Infinity"; we do not.
_DECIMAL_STRING = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def currency_exponent(currency: str) -> int:
    """Number of minor-unit digits of `currency` (EUR 2, JPY 0, KWD 3), from CLDR via Babel.

    Raises ValueError for a code that is not an ISO 4217 currency.
    """
    if not isinstance(currency, str) or not is_currency(currency):
        raise ValueError(f"unknown currency {currency!r}")
    return int(get_currency_precision(currency))


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Major units → integer minor units of `currency`, rounding half up (2.345 EUR → 235)."""
    if not amount.is_finite():
        raise ValueError(f"amount is not finite: {amount!r}")
    scaled = amount.scaleb(currency_exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def round_minor_units(amount: Decimal) -> int:
    """An exact amount already in minor units (a share of a fee's taxes: 33.3333…) as an
    integer, rounding half up like `to_minor_units`."""
    if not amount.is_finite():
        raise ValueError(f"amount is not finite: {amount!r}")
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor_units(cents: int, currency: str) -> Decimal:
    """Integer minor units → Decimal major units with the currency's exponent (1234 EUR → 12.34)."""
    exponent = currency_exponent(currency)
    return Decimal(cents).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def parse_decimal(value: object) -> Decimal | None:
    """An API decimal (string, int, float or Decimal) as a finite Decimal; None when invalid.

    Booleans, NaN, infinities, blank strings and anything else unparseable give None. Floats go
    through their shortest repr ("0.1", not 0.1000000000000000055…), since JSON numbers arrive as
    floats and the client meant the digits it wrote.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _DECIMAL_STRING.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        return None


def format_money(cents: int, currency: str, locale: str = "en") -> str:
    """Minor units for display with the currency's own precision (€19.99, ¥1,000, KWD 1.500)."""
    text = format_currency(from_minor_units(cents, currency), currency, locale=locale)
    # CLDR glues a currency code to the number ("KWD12.345"); a no-break space reads better.
    return re.sub(r"^([A-Z]{3})(?=[-\d])", "\\1\u00a0", text)


def percentage_of(cents: int, rate: Decimal) -> int:
    """`rate` percent of `cents`, in whole minor units rounded half up (12.5 % of 999 → 125)."""
    return int((Decimal(cents) * rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


#: the precision of pro rata shares: fine enough for any amount, coarse enough that adding
#: shares together never rounds (10 decimals beside at most 17 digits of minor units)
SHARE_QUANTUM = Decimal("1e-10")


def pro_rata(amount: int, weights: list[Decimal]) -> list[Decimal]:
    """`amount` split in proportion to `weights` (not all zero), exactly: the shares are kept
    to 10 decimals and the largest weight's share takes what is left, so they add up to
    `amount` (and a tiny weight never gets a negative remainder)."""
    total = sum(weights, Decimal(0))
    shares = [
        (Decimal(amount) * weight / total).quantize(SHARE_QUANTUM, rounding=ROUND_HALF_UP)
        for weight in weights
    ]
    largest = weights.index(max(weights))
    shares[largest] = Decimal(amount) - sum(shares[:largest] + shares[largest + 1 :], Decimal(0))
    return shares
