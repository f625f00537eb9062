"""Payments against invoices (lago-api.md §10; Lago's manual payments and provider payments).

- A payment is recorded against one finalized invoice, under a row lock on the invoice (FOR
  UPDATE on PostgreSQL) that is taken before what is due is read: two payments at once are
  applied one after the other, and the second is refused if the first left less due than it
  brings, so an invoice is never overpaid.
- The invoice keeps `total_paid_amount_cents` = what its payments brought in (succeeded ones,
  less what the provider refunded), so `total_due_amount_cents` = total − paid − offset ≥ 0.
- The invoice's payment status follows: `succeeded` once nothing is due, `pending` while
  partially paid, `failed` after a provider's failed attempt that left something due. A change
  goes through `invoicing.payment_status_changed` (timeline, webhook
  `invoice.payment_status_updated`, a credit invoice's purchased credits settled).
- Lago's validations: a positive whole `amount_cents` that is at most what is due
  (`greater_than` beyond); a credit (wallet top-up) invoice is paid in one payment of its
  total (`invalid_amount`); a manual payment has a `reference` of at most 40 characters;
  `paid_at` an ISO 8601 date or date-time, not in the future (`invalid_date`, as the console's
  "cannot be dated in the future"; a few minutes ahead pass, as clocks differ, and a date passes
  while it is today anywhere). A draft, voided or closed invoice takes no payment (405).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from billing.errors import NotAllowed, NotFound, ValidationFailed
from billing.models import (
    PAYMENT_METHODS,
    Customer,
    Invoice,
    InvoiceStatus,
    Organization,
    Payment,
    PaymentRecordStatus,
    PaymentStatus,
    PaymentType,
)
from billing.money import format_money
from billing.services import audit, documents, invoicing
from billing.services.pagination import Page
from billing.timeutil import as_utc, now_utc
from extensions import db

REFERENCE_MAX_LENGTH = 40
#: the largest payment accepted (keeps sums inside a BIGINT)
MAX_AMOUNT_CENTS = 10**15
#: how far ahead of our clock a payment's `paid_at` may be (the sender's clock may be ahead)
PAID_AT_CLOCK_SKEW = timedelta(minutes=5)
#: 405 codes for the invoices that cannot take a payment, by status
NOT_PAYABLE = {
    InvoiceStatus.DRAFT: "payment_on_draft_invoice",
    InvoiceStatus.VOIDED: "payment_on_voided_invoice",
    InvoiceStatus.CLOSED: "payment_on_closed_invoice",
}


@dataclass(frozen=True)
class PaymentInput:
    """A manual payment as read from the API or the console form."""

    amount_cents: int
    reference: str
    paid_at: datetime | None
    method: str | None


def parse_manual_payment(data: dict[str, Any]) -> PaymentInput:
    """Lago's `{"invoice_id", "amount_cents", "reference", "paid_at"}` (plus Ledgerline's
    optional `method`) as values; ValidationFailed with every field's codes."""
    errors: dict[str, list[str]] = {}
    raw_amount = data.get("amount_cents")
    amount = 0
    if raw_amount is None or raw_amount == "":
        errors["amount_cents"] = ["value_is_mandatory"]
    else:
        parsed = _whole_number(raw_amount)
        if parsed is None:
            errors["amount_cents"] = ["value_is_invalid"]
        elif parsed <= 0 or parsed > MAX_AMOUNT_CENTS:
            errors["amount_cents"] = ["value_is_out_of_range"]
        else:
            amount = parsed
    reference = data.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        errors["reference"] = ["value_is_mandatory"]
        reference = ""
    elif len(reference.strip()) > REFERENCE_MAX_LENGTH:
        errors["reference"] = ["value_is_too_long"]
    paid_at = None
    raw_paid_at = data.get("paid_at")
    if raw_paid_at not in (None, ""):
        paid_at = _parse_paid_at(raw_paid_at)
        if paid_at is None:
            errors["paid_at"] = ["invalid_date"]
    method = data.get("method") or None
    if method is not None and (method not in PAYMENT_METHODS or method == "stripe"):
        errors["method"] = ["value_is_invalid"]
    if errors:
        raise ValidationFailed(errors)
    return PaymentInput(amount, str(reference).strip(), paid_at, method)


def _whole_number(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw.strip())
    return None


def _parse_paid_at(raw: Any) -> datetime | None:
    """An ISO 8601 date-time (a naive one is UTC; `Z` accepted) or date (its midnight UTC), not
    in the future: a date-time up to the clock skew ahead of now, a date while it is today
    wherever it is already latest (UTC+14), since a payer's "today" may be our tomorrow."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    now = now_utc()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if day > (now + timedelta(hours=14)).date():
                return None
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    paid_at = as_utc(value)
    return None if paid_at > now + PAID_AT_CLOCK_SKEW else paid_at


def lock_invoice(invoice: Invoice) -> None:
    """Take the invoice's row lock (FOR UPDATE on PostgreSQL; SQLite has one writer at a
    time) and read what it has been paid as committed: another payment may have landed."""
    db.session.flush()
    db.session.refresh(invoice, with_for_update=True)


def _check_payable(invoice: Invoice) -> None:
    code = NOT_PAYABLE.get(InvoiceStatus(invoice.status))
    if code is not None:
        raise NotAllowed(code)


def create_manual_payment(
    invoice: Invoice, data: dict[str, Any] | PaymentInput, actor: audit.Actor
) -> Payment:
    """Record money received for `invoice` outside any provider (Lago's manual payment):
    the invoice's paid and due amounts move, and its payment status follows."""
    entry = data if isinstance(data, PaymentInput) else parse_manual_payment(data)
    _check_payable(invoice)
    lock_invoice(invoice)
    _check_payable(invoice)  # voided meanwhile?
    due = invoice.total_due_amount_cents
    if invoice.invoice_type == "credit" and entry.amount_cents != due:
        # Lago: a wallet top-up is paid in one payment of its total
        raise ValidationFailed({"amount_cents": ["invalid_amount"]})
    if entry.amount_cents > due:
        raise ValidationFailed({"amount_cents": ["greater_than"]})
    now = now_utc()
    payment = Payment(
        organization_id=invoice.organization_id,
        customer_id=invoice.customer_id,
        invoice=invoice,
        invoice_id=invoice.id,
        amount_cents=entry.amount_cents,
        currency=invoice.currency,
        refunded_amount_cents=0,
        payment_type=PaymentType.MANUAL,
        status=PaymentRecordStatus.SUCCEEDED,
        method=entry.method,
        reference=entry.reference,
        paid_at=entry.paid_at or now,
        created_at=now,
        updated_at=now,
    )
    db.session.add(payment)
    invoice.total_paid_amount_cents += entry.amount_cents
    db.session.flush()
    record_payment_activity(payment, "payment.created", actor)
    settle_payment_status(invoice, actor)
    return payment


def settle_payment_status(
    invoice: Invoice, actor: audit.Actor, *, failed_attempt: bool = False
) -> None:
    """Set the invoice's payment status from what is due (the caller holds its lock and has
    moved its paid amount): `succeeded` when nothing is, else `failed` after a failed provider
    attempt, else `pending`; a change runs invoicing.payment_status_changed."""
    now = now_utc()
    due = invoice.total_due_amount_cents
    if due == 0:
        status = PaymentStatus.SUCCEEDED
    elif failed_attempt:
        status = PaymentStatus.FAILED
    else:
        status = PaymentStatus.PENDING
    invoice.updated_at = now
    if due == 0:
        invoice.payment_overdue = False
    before = invoice.payment_status
    invoice.payment_status = status
    db.session.flush()
    if before != status:
        invoicing.payment_status_changed(invoice, before, actor)
    else:
        documents.outdated("invoice", invoice)  # it prints what was paid


def record_payment_activity(
    payment: Payment, activity_type: str, actor: audit.Actor, changes: dict[str, Any] | None = None
) -> None:
    """The payment's entry on its customer's timeline (labelled with the amount and invoice)."""
    invoice = payment.invoice
    audit.record_activity(
        organization_id=payment.organization_id,
        actor=actor,
        activity_type=activity_type,
        resource_type="payment",
        resource_id=str(payment.lago_id),
        resource_label=f"{format_money(payment.amount_cents, payment.currency)} · {invoice.number}",
        changes=changes
        or {
            "amount_cents": [None, payment.amount_cents],
            "invoice": [None, invoice.number],
            "method": [None, payment.method],
            "reference": [None, payment.reference or payment.provider_payment_id],
            "paid_at": [None, payment.paid_at.isoformat()],
        },
        customer_id=payment.customer_id,
    )


# ---------------------------------------------------------------------------------------------
# Lookups and lists


@dataclass
class PaymentFilters:
    invoice_id: int | None = None
    customer_id: int | None = None
    external_customer_id: str | None = None


def get_payment(organization: Organization, lago_id: str) -> Payment:
    """The organization's payment with this lago id; NotFound("payment") else."""
    try:
        key = uuid.UUID(str(lago_id))
    except ValueError:
        raise NotFound("payment") from None
    payment = db.session.scalar(
        select(Payment).where(Payment.organization_id == organization.id, Payment.lago_id == key)
    )
    if payment is None:
        raise NotFound("payment")
    return payment


def list_payments(
    organization: Organization, filters: PaymentFilters, *, page: int = 1, per_page: int = 100
) -> Page[Payment]:
    """Payments newest first (Lago's order: created_at desc, then id)."""
    query = select(Payment).where(Payment.organization_id == organization.id)
    if filters.invoice_id is not None:
        query = query.where(Payment.invoice_id == filters.invoice_id)
    if filters.customer_id is not None:
        query = query.where(Payment.customer_id == filters.customer_id)
    if filters.external_customer_id is not None:
        query = query.join(Customer, Customer.id == Payment.customer_id).where(
            Customer.external_id == filters.external_customer_id
        )
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(
        db.session.scalars(
            query.options(joinedload(Payment.invoice))
            .order_by(Payment.created_at.desc(), Payment.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    return Page(items, total, page, per_page)


def invoice_payments(invoice: Invoice) -> list[Payment]:
    """The invoice's payments, oldest first (the invoice page's list)."""
    return list(
        db.session.scalars(
            select(Payment)
            .where(Payment.invoice_id == invoice.id)
            .order_by(Payment.paid_at, Payment.id)
        )
    )
