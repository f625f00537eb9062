"""A credit note as billing.pdf's view model (`InvoiceDocument` of kind credit_note): the
seller, the customer, the credited items with their periods, taxes, credit and refund."""

from __future__ import annotations

from billing.models import CreditNote
from billing.pdf import InvoiceDocument, PdfLine
from billing.periods import Period, local_date
from billing.services.invoice_documents import _customer, _seller


def credit_note_document(credit_note: CreditNote) -> InvoiceDocument:
    """What the credit note's PDF prints, in the customer's document locale and timezone."""
    customer = credit_note.customer
    organization = customer.organization
    tz = customer.applicable_timezone
    lines = []
    for item in credit_note.items:
        fee = item.fee
        start = end = None
        if fee.from_datetime is not None and fee.to_datetime is not None:
            period = Period(fee.from_datetime, fee.to_datetime)
            start = local_date(period.start, tz)
            end = local_date(period.inclusive_end, tz)
        lines.append(
            PdfLine(
                fee.invoice_display_name or fee.fee_type,
                item.amount_cents,
                period_start=start,
                period_end=end,
            )
        )
    return InvoiceDocument(
        kind="credit_note",
        number=credit_note.number,
        issuing_date=credit_note.issuing_date,
        currency=credit_note.currency,
        seller=_seller(organization),
        customer=_customer(customer),
        lines=lines,
        total_cents=credit_note.total_amount_cents,
        locale=customer.document_locale or organization.document_locale,
        timezone=tz,
        brand_color=organization.brand_color,
        subtotal_excluding_taxes_cents=credit_note.sub_total_excluding_taxes_amount_cents,
        taxes_cents=credit_note.taxes_amount_cents,
        credited_invoice_number=credit_note.invoice.number,
        reason=credit_note.reason,
        description=credit_note.description,
        credit_amount_cents=credit_note.credit_amount_cents,
        refund_amount_cents=credit_note.refund_amount_cents,
        offset_amount_cents=credit_note.offset_amount_cents,
    )
