"""Reference data: countries, currencies, time zones and the document locales we translate."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

import pycountry

#: document locales with full translations of the portal and PDFs (DESIGN.md, Locales)
DOCUMENT_LOCALES: tuple[str, ...] = ("en", "fr", "de", "es", "it", "nl", "nb", "sv", "pt-BR")
DEFAULT_LOCALE = "en"

#: ISO 4217 codes for precious metals, accounting units and testing, which nobody invoices in
NON_MONEY_CURRENCIES = frozenset(
    [
        "XAD",
        "XAG",
        "XAU",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XDR",
        "XPD",
        "XPT",
        "XSU",
        "XTS",
        "XUA",
        "XXX",
    ]
)


@cache
def country_codes() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


@cache
def currency_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies) - NON_MONEY_CURRENCIES


@cache
def timezones() -> frozenset[str]:
    return frozenset(available_timezones() | {"UTC"})


def country_name(code: str | None) -> str | None:
    if not code:
        return None
    country = pycountry.countries.get(alpha_2=code)
    return country.name if country else code
