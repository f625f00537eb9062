"""Add-ons as Lago's v1 API shows them (lago-api.md §11)."""

from __future__ import annotations

from typing import Any

from billing.models import AddOn
from billing.serializers_taxes import serialize_tax
from billing.timeutil import iso_utc


def serialize_add_on(add_on: AddOn) -> dict[str, Any]:
    """Lago's add-on object; `taxes` are its own (its `tax_codes`), as plans show theirs."""
    return {
        "lago_id": str(add_on.lago_id),
        "name": add_on.name,
        "invoice_display_name": add_on.invoice_display_name,
        "code": add_on.code,
        "amount_cents": add_on.amount_cents,
        "amount_currency": add_on.amount_currency,
        "description": add_on.description,
        "created_at": iso_utc(add_on.created_at),
        "taxes": [serialize_tax(tax) for tax in add_on.taxes],
    }
