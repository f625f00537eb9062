"""Demo data for add-ons: two add-ons and a one-off invoice billing them to Globex. Onboarding
is taxed at the reduced VAT rate (its own taxes) when the demo taxes exist; priority support
pays the organization's default VAT.

Running it again adds nothing (add-ons by code, the invoice by its type and customer).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from billing.demo_taxes import REDUCED_RATE_CODE
from billing.models import Invoice, Organization
from billing.services import audit
from billing.services.add_ons import create_add_on, find_add_on
from billing.services.customers import find_customer
from billing.services.one_off_invoices import create_one_off_invoice
from billing.services.taxes import find_tax
from extensions import db

SEED = audit.Actor(type="system", source="cli", label="demo seed")
DEMO_ADD_ONS: list[dict[str, Any]] = [
    {"name": "Onboarding", "code": "onboarding", "amount_cents": 49000, "amount_currency": "EUR",
     "invoice_display_name": "Onboarding package",
     "description": "Kick-off workshop and account set-up"},
    {"name": "Priority support", "code": "priority_support", "amount_cents": 15000,
     "amount_currency": "EUR", "description": "Priority support, per hour"},
]  # fmt: skip
#: the demo customer billed once for them
ONE_OFF_CUSTOMER = "globex"
#: the add-on taxed at the reduced rate
REDUCED_RATE_ADD_ON = "onboarding"


def seed_add_ons(organization: Organization) -> None:
    """Create the demo add-ons and Globex's one-off invoice, if missing."""
    reduced = find_tax(organization, REDUCED_RATE_CODE) is not None
    for payload in DEMO_ADD_ONS:
        if find_add_on(organization, payload["code"]) is None:
            if reduced and payload["code"] == REDUCED_RATE_ADD_ON:
                payload = {**payload, "tax_codes": [REDUCED_RATE_CODE]}
            create_add_on(organization, payload, SEED)
    customer = find_customer(organization, ONE_OFF_CUSTOMER)
    if customer is None or db.session.scalar(
        select(Invoice.id).where(
            Invoice.customer_id == customer.id, Invoice.invoice_type == "one_off"
        )
    ):
        return
    create_one_off_invoice(
        organization,
        {
            "external_customer_id": customer.external_id,
            "currency": "EUR",
            "fees": [
                {"add_on_code": "onboarding"},
                {
                    "add_on_code": "priority_support",
                    "units": "2.5",
                    "description": "Data migration assistance",
                },
            ],  # fmt: skip
        },
        SEED,
    )
