"""An invoice as its PDF prints it: `invoice_document(invoice)` maps the rows onto billing.pdf's
`InvoiceDocument` view model (billing/pdf.py formats money, dates and labels in the locale).

What is printed and where it comes from:
- seller: the organization's name and, when the branding settings have one, its logo and colour;
- customer: its billing name, legal name, address, country, tax id and e-mail;
- the document's locale: the customer's document locale, else the organization's, else English
  (DESIGN.md, Locales); dates are the local dates of the customer's timezone;
- one line per fee: the base fee (units and the plan's price, its period when it differs from
  the invoice's) and each charge (per charge filter), with its units and unit price;
- totals from the invoice's amount columns: coupons, taxes, credit notes and prepaid credits
  are printed whenever they are not zero; due date, payment status, overdue flag;
- the customer's metadata marked `display_in_invoice`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from billing.models import Customer, Fee, FeeType, Invoice, InvoicingReason, Organization
from billing.pdf import InvoiceDocument, PdfLine, PdfMetadata, PdfParty, PdfTax, document_locale
from billing.periods import local_date

#: a unit price is printed to this precision at most (an average over tiers has 28 digits)
UNIT_PRICE_STEP = Decimal("0.000001")
_INSTANT = timedelta(microseconds=1)


def invoice_document(invoice: Invoice) -> InvoiceDocument:
    """The PDF view model of an invoice, in any status (a draft prints with its watermark)."""
    customer = invoice.customer
    organization = customer.organization
    timezone = customer.applicable_timezone
    period = _billing_period(invoice, timezone)
    return InvoiceDocument(
        kind="invoice",
        number=invoice.number,
        issuing_date=invoice.issuing_date,
        due_date=invoice.payment_due_date,
        currency=invoice.currency,
        seller=_seller(organization),
        customer=_customer(customer),
        lines=[_line(fee, timezone) for fee in invoice.fees],
        status=invoice.status,
        payment_status=invoice.payment_status,
        payment_overdue=invoice.payment_overdue,
        locale=document_locale(customer.document_locale or organization.document_locale),
        timezone=timezone,
        brand_color=organization.brand_color,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        subtotal_excluding_taxes_cents=invoice.sub_total_excluding_taxes_amount_cents,
        coupons_cents=invoice.coupons_amount_cents,
        taxes=[
            PdfTax(tax.tax_name, tax.tax_rate, tax.amount_cents) for tax in invoice.applied_taxes
        ],
        taxes_cents=invoice.taxes_amount_cents,
        credit_notes_cents=invoice.credit_notes_amount_cents,
        prepaid_credit_cents=invoice.prepaid_credit_amount_cents,
        total_cents=invoice.total_amount_cents,
        offset_amount_cents=invoice.offset_amount_cents,
        total_due_cents=invoice.total_due_amount_cents,
        metadata=[
            PdfMetadata(item.key, item.value)
            for item in customer.metadata_items
            if item.display_in_invoice
        ],
        net_payment_term_days=invoice.net_payment_term,
    )


def _seller(organization: Organization) -> PdfParty:
    return PdfParty(
        name=organization.name,
        logo=organization.logo,
        logo_content_type=organization.logo_content_type,
    )


def _customer(customer: Customer) -> PdfParty:
    name = customer.display_name
    emails = [part.strip() for part in (customer.email or "").split(",") if part.strip()]
    return PdfParty(
        name=name,
        legal_name=customer.legal_name if customer.legal_name != name else None,
        address_lines=address_lines(customer),
        country=customer.country,
        tax_id=customer.tax_identification_number,
        email=emails[0] if emails else None,
    )


def address_lines(customer: Customer) -> list[str]:
    """The billing address in print order: street lines, "zipcode city", state."""
    town = " ".join(part for part in (customer.zipcode, customer.city) if part)
    lines = (customer.address_line1, customer.address_line2, town, customer.state)
    return [line for line in lines if line]


def _days(start: datetime | None, end: datetime | None, timezone: str) -> tuple[date, date] | None:
    """A [start, end) period as its first and last local days, both included."""
    if start is None or end is None:
        return None
    return local_date(start, timezone), local_date(end - _INSTANT, timezone)


def _billing_period(invoice: Invoice, timezone: str) -> tuple[date, date] | None:
    """The period the invoice is for: the usage period of its first billing period (the base
    fee's period for a subscription start, which bills no usage)."""
    if not invoice.invoice_subscriptions:
        return None
    link = invoice.invoice_subscriptions[0]
    if link.invoicing_reason == InvoicingReason.SUBSCRIPTION_STARTING:
        return _days(link.from_datetime, link.to_datetime, timezone)
    return _days(link.charges_from_datetime, link.charges_to_datetime, timezone)


def _line(fee: Fee, timezone: str) -> PdfLine:
    period = _days(fee.from_datetime, fee.to_datetime, timezone)
    description = fee.invoice_display_name or fee.fee_type
    sub_description = None
    unit_amount: Decimal | None = _unit_price(fee.precise_unit_amount)
    if fee.charge is not None and fee.charge_filter is not None:
        # the charge on the line, the filter beneath it
        charge = fee.charge
        description = charge.invoice_display_name or charge.billable_metric.name
        sub_description = fee.charge_filter.invoice_display_name or " · ".join(
            f"{key}: {', '.join(values)}" for key, values in fee.charge_filter.values.items()
        )
    elif fee.fee_type == FeeType.SUBSCRIPTION and fee.units * fee.precise_unit_amount != (
        fee.precise_amount
    ):
        # a prorated base fee: "1 × the plan's price" would not add up; its period says why
        unit_amount = None
    return PdfLine(
        description=description,
        amount_cents=fee.amount_cents,
        sub_description=sub_description,
        units=fee.units,
        unit_amount=unit_amount,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
    )


def _unit_price(amount: Decimal) -> Decimal:
    rounded = amount.quantize(UNIT_PRICE_STEP, rounding=ROUND_HALF_UP).normalize()
    # normalize() writes 1000 as 1E+3; keep whole prices whole
    return rounded.quantize(Decimal(1)) if rounded == rounded.to_integral() else rounded
