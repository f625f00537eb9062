"""Taxes and applied taxes as Lago's v1 API shows them (lago-api.md §17, §4, §7, §10.1).

Rates are stored exact and shown as JSON numbers (Lago's `rate` is a float column and the SDK
reads a float); every amount stays an integer of minor units.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from billing.models import Tax
from billing.timeutil import iso_utc

if TYPE_CHECKING:
    from sqlalchemy import Row


def rate_number(rate: Decimal) -> float:
    """A percent rate as Lago's JSON shows it (20.0, 5.5). Display only, never computed on."""
    return float(rate)


def serialize_tax(tax: Tax | Row[Any]) -> dict[str, Any]:
    """Lago's tax object (also the items of a customer's, plan's or charge's `taxes`)."""
    return {
        "lago_id": str(tax.lago_id),
        "name": tax.name,
        "code": tax.code,
        "rate": rate_number(tax.rate),
        "description": tax.description,
        "applied_to_organization": tax.applied_to_organization,
        "created_at": iso_utc(tax.created_at),
    }


def _applied(applied: Any) -> dict[str, Any]:
    return {
        "lago_id": str(applied.lago_id),
        "lago_tax_id": str(applied.lago_tax_id),
        "tax_name": applied.tax_name,
        "tax_code": applied.tax_code,
        "tax_rate": rate_number(applied.tax_rate),
        "tax_description": applied.tax_description,
        "amount_cents": applied.amount_cents,
        "amount_currency": applied.currency,
        "created_at": iso_utc(applied.created_at),
    }


def serialize_fee_applied_tax(applied: Any, lago_fee_id: str) -> dict[str, Any]:
    """An item of a fee's `applied_taxes`."""
    return {**_applied(applied), "lago_fee_id": lago_fee_id}


def serialize_invoice_applied_tax(applied: Any, lago_invoice_id: str) -> dict[str, Any]:
    """An item of an invoice's `applied_taxes`: the tax on the fees it applies to."""
    return {
        **_applied(applied),
        "lago_invoice_id": lago_invoice_id,
        "fees_amount_cents": applied.fees_amount_cents,
    }
