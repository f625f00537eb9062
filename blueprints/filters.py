"""Jinja filters: time in a zone (with UTC and the organization's zone on hover), countries,
money in minor units, tax rates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import Flask
from markupsafe import Markup

from billing.money import format_money
from billing.reference import country_name
from billing.timeutil import as_utc, in_zone


def local_time(
    value: datetime | None,
    timezone: str,
    org_timezone: str | None = None,
    fmt: str = "%Y-%m-%d %H:%M",
) -> Markup:
    """`<time>` in `timezone`; hovering shows UTC and the organization's zone."""
    if value is None:
        return Markup('<span class="muted">—</span>')
    utc = as_utc(value)
    title = f"{utc:%Y-%m-%d %H:%M} UTC"
    if org_timezone and org_timezone != "UTC":
        title += f" · {in_zone(utc, org_timezone):%Y-%m-%d %H:%M} {org_timezone}"
    local = in_zone(utc, timezone)
    return Markup('<time datetime="{}" title="{}">{} <small>{}</small></time>').format(
        utc.isoformat(), title, local.strftime(fmt), local.tzname() or timezone
    )


def tax_rate(rate: Decimal) -> str:
    """A tax rate in percent without trailing zeros: 20 %, 5.5 %, 0 %."""
    return f"{format(Decimal(rate).normalize(), 'f')}\u00a0%"


def register_filters(app: Flask) -> None:
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(country_name, "country_name")
    app.add_template_filter(format_money, "money")
    app.add_template_filter(tax_rate, "tax_rate")
