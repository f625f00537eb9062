"""Demo data for credit notes: a support agent's credit note on one of Acme's invoices, which
the next invoice of the replayed history consumes (each demo invoice is larger than the one
before, so that one deduction spends the whole credit)."""

from __future__ import annotations

from sqlalchemy import exists, select

from billing.models import CreditNote, Customer, Invoice, Organization
from billing.services import audit
from billing.services.credit_notes import (
    build_credit_note,
    create_credit_note,
    creditable_by_fee,
)
from extensions import db

SEED = audit.Actor(type="system", source="cli", label="demo seed")
#: the customer whose invoice is credited
CUSTOMER = "acme-corp"


def seed_credit_note(organization: Organization) -> CreditNote | None:
    """Once, as soon as Acme has two finalized invoices: credit its second one (a full
    month) whole, as an agent would after a service outage. Called by the demo's history
    replay each simulated day, so later invoices consume the credit on their own dates."""
    if db.session.scalar(select(exists().where(CreditNote.organization_id == organization.id))):
        return None
    invoices = db.session.scalars(
        select(Invoice)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(
            Invoice.organization_id == organization.id,
            Customer.external_id == CUSTOMER,
            Invoice.status == "finalized",
        )
        .order_by(Invoice.finalized_at, Invoice.id)
        .limit(2)
    ).all()
    if len(invoices) < 2:
        return None
    invoice = invoices[1]
    left = creditable_by_fee(invoice)
    credited = [(fee, left[fee.id]) for fee in invoice.fees if left.get(fee.id)]
    items = [{"fee_id": str(fee.lago_id), "amount_cents": cents} for fee, cents in credited]
    if not credited:
        return None
    # the credit is the items and their taxes
    total = build_credit_note(invoice, {"items": items}).total_cents
    return create_credit_note(
        invoice,
        {
            "reason": "product_unsatisfactory",
            "description": "Service outage of the month: the whole invoice is credited.",
            "items": items,
            "credit_amount_cents": total,
        },
        SEED,
    )
