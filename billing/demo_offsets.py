"""Demo data for credit note offsets: the overdue customer's latest unpaid invoice gets a
credit note whose part is taken off what it still owes on that invoice (an agent settling a
disputed line), so its amount due, the customer header and the finance figures show less."""

from __future__ import annotations

from sqlalchemy import exists, select

from billing.demo_credit_notes import SEED
from billing.models import CreditNote, Invoice, Organization, PaymentStatus
from billing.services.credit_notes import build_credit_note, create_credit_note, creditable_by_fee
from extensions import db


def seed_offset(organization: Organization) -> CreditNote | None:
    """Once: offset half of the first fee of the latest overdue invoice (nothing when none is
    overdue or an offset exists already)."""
    if db.session.scalar(
        select(
            exists().where(
                CreditNote.organization_id == organization.id, CreditNote.offset_amount_cents > 0
            )
        )
    ):
        return None
    invoice = db.session.scalar(
        select(Invoice)
        .where(
            Invoice.organization_id == organization.id,
            Invoice.status == "finalized",
            Invoice.payment_status == PaymentStatus.PENDING,
            Invoice.payment_overdue.is_(True),
            Invoice.invoice_type != "credit",
        )
        .order_by(Invoice.finalized_at.desc(), Invoice.id.desc())
        .limit(1)
    )
    if invoice is None:
        return None
    left = creditable_by_fee(invoice)
    fee = next((fee for fee in invoice.fees if left.get(fee.id, 0) >= 2), None)
    if fee is None:
        return None
    items = [{"fee_id": str(fee.lago_id), "amount_cents": left[fee.id] // 2}]
    total = build_credit_note(invoice, {"items": items}).total_cents
    if total > invoice.total_due_amount_cents:
        return None
    return create_credit_note(
        invoice,
        {
            "reason": "order_change",
            "description": "Disputed usage: half of the line is taken off what is owed.",
            "items": items,
            "offset_amount_cents": total,
        },
        SEED,
    )
