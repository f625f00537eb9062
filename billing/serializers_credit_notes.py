"""Credit notes, estimated credit notes and an invoice's credits as Lago's v1 API shows them
(lago-api.md §14, §10.1 `credits`); the API and the outbox share these."""

from __future__ import annotations

from typing import Any

from billing.models import CreditNote, DocumentType, Invoice
from billing.serializers import serialize_customer
from billing.serializers_invoices import serialize_fee
from billing.services import documents
from billing.services.credit_notes import Estimate, invoice_credits
from billing.timeutil import iso_utc

#: keys Lago leaves out of the customer embedded in a credit note
_NOT_EMBEDDED = ("taxes", "applicable_invoice_custom_sections", "error_details")


def _taxes_rate(credit_note: CreditNote) -> float:
    if not credit_note.sub_total_excluding_taxes_amount_cents:
        return 0.0
    rate = credit_note.taxes_amount_cents * 100 / credit_note.sub_total_excluding_taxes_amount_cents
    return round(rate, 2)


def serialize_credit_note(credit_note: CreditNote) -> dict[str, Any]:
    """Lago's credit note object with its items (each with its fee) and customer."""
    invoice = credit_note.invoice
    customer = serialize_customer(credit_note.customer)
    for key in _NOT_EMBEDDED:
        customer.pop(key, None)
    return {
        "lago_id": str(credit_note.lago_id),
        "billing_entity_code": None,
        "sequential_id": credit_note.sequential_id,
        "number": credit_note.number,
        "lago_invoice_id": str(invoice.lago_id),
        "invoice_number": invoice.number,
        "issuing_date": credit_note.issuing_date.isoformat(),
        "credit_status": credit_note.credit_status,
        "refund_status": credit_note.refund_status,
        "reason": credit_note.reason,
        "description": credit_note.description,
        "currency": credit_note.currency,
        "total_amount_cents": credit_note.total_amount_cents,
        "taxes_amount_cents": credit_note.taxes_amount_cents,
        "taxes_rate": _taxes_rate(credit_note),
        "sub_total_excluding_taxes_amount_cents": (
            credit_note.sub_total_excluding_taxes_amount_cents
        ),
        "balance_amount_cents": credit_note.balance_amount_cents,
        "credit_amount_cents": credit_note.credit_amount_cents,
        "refund_amount_cents": credit_note.refund_amount_cents,
        "offset_amount_cents": credit_note.offset_amount_cents,
        "coupons_adjustment_amount_cents": 0,
        "created_at": iso_utc(credit_note.created_at),
        "updated_at": iso_utc(credit_note.updated_at),
        "voided_at": iso_utc(credit_note.voided_at),
        "refunded_at": iso_utc(credit_note.refunded_at),
        "file_url": documents.file_url(DocumentType.CREDIT_NOTE, credit_note),
        "self_billed": False,
        "items": [
            {
                "lago_id": str(item.lago_id),
                "amount_cents": item.amount_cents,
                "amount_currency": item.currency,
                "fee": serialize_fee(item.fee, invoice),
            }
            for item in credit_note.items
        ],
        "applied_taxes": [],
        "customer": customer,
        "metadata": dict(credit_note.metadata_ or {}),
        "error_details": [],
    }


def serialize_estimate(invoice: Invoice, estimate: Estimate) -> dict[str, Any]:
    """Lago's `estimated_credit_note`."""
    draft = estimate.draft
    return {
        "lago_invoice_id": str(invoice.lago_id),
        "invoice_number": invoice.number,
        "currency": invoice.currency,
        "taxes_amount_cents": draft.taxes_cents,
        "precise_taxes_amount_cents": f"{draft.taxes_cents}.0",
        "taxes_rate": draft.taxes_rate,
        "sub_total_excluding_taxes_amount_cents": draft.sub_total_cents,
        "max_creditable_amount_cents": estimate.max_creditable_cents,
        "max_refundable_amount_cents": estimate.max_refundable_cents,
        "max_offsettable_amount_cents": estimate.max_offsettable_cents,
        "coupons_adjustment_amount_cents": 0,
        "precise_coupons_adjustment_amount_cents": "0.0",
        "items": [
            {"amount_cents": amount, "lago_fee_id": str(fee.lago_id)} for fee, amount in draft.items
        ],
        "applied_taxes": [],
    }


def serialize_credits(invoice: Any) -> list[dict[str, Any]]:
    """An invoice's `credits`: the credit notes' credit it consumed (after taxes); no query
    for an invoice that consumed none."""
    if not invoice.credit_notes_amount_cents or invoice.status != "finalized":
        return []
    payload = []
    for credit in invoice_credits(invoice):
        credit_note = credit.credit_note
        payload.append(
            {
                "lago_id": str(credit.lago_id),
                "amount_cents": credit.amount_cents,
                "amount_currency": credit.currency,
                "before_taxes": False,
                "item": {
                    "lago_item_id": str(credit_note.lago_id),
                    "type": "credit_note",
                    "code": credit_note.number,
                    "name": credit_note.number,
                },
                "invoice": {
                    "lago_id": str(credit.invoice.lago_id),
                    "payment_status": credit.invoice.payment_status,
                },
            }
        )
    return payload
