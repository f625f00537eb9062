"""Demo taxes for `make run`: French VAT as the organization's default (so every demo invoice
shows a tax line) and a reduced rate on the euro Starter plan (so one shows the plan's
precedence). Running it again adds nothing."""

from __future__ import annotations

from typing import Any

from billing.models import Organization
from billing.services import audit
from billing.services.taxes import create_tax, find_tax

SEED = audit.Actor(type="system", source="cli", label="demo seed")

#: the plan the demo bills at the reduced rate: see demo_metering's Starter in EUR
REDUCED_RATE_CODE = "vat_fr_reduced"
DEMO_TAXES: list[dict[str, Any]] = [
    {"name": "VAT FR 20%", "code": "vat_fr", "rate": "20", "applied_to_organization": True,
     "description": "French VAT, standard rate: the organization's default."},
    {"name": "VAT FR 10%", "code": REDUCED_RATE_CODE, "rate": "10",
     "description": "French VAT, intermediate rate: applied to the Starter plan in EUR."},
]  # fmt: skip


def seed_taxes(organization: Organization) -> int:
    """Create the demo taxes that are missing; how many were created."""
    created = 0
    for payload in DEMO_TAXES:
        if find_tax(organization, payload["code"]) is None:
            create_tax(organization, payload, SEED)
            created += 1
    return created
