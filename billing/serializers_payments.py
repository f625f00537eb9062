"""Payments as Lago's v1 API shows them (V1::PaymentSerializer), plus Ledgerline's fields."""

from __future__ import annotations

from typing import Any

from billing.models import Payment
from billing.timeutil import iso_utc


def serialize_payment(payment: Payment) -> dict[str, Any]:
    """Lago's payment object; `external_payment_id` is the provider's id (Stripe's payment
    intent). The keys after `created_at` are Ledgerline's (the SDK ignores them)."""
    invoice = payment.invoice
    customer = payment.customer
    return {
        "lago_id": str(payment.lago_id),
        "invoice_ids": [str(invoice.lago_id)],
        "invoice_numbers": [invoice.number],
        "amount_cents": payment.amount_cents,
        "amount_currency": payment.currency,
        "payment_status": payment.status,
        "type": payment.payment_type,
        "reference": payment.reference or "",
        "external_payment_id": payment.provider_payment_id,
        "created_at": iso_utc(payment.created_at),
        "lago_customer_id": str(customer.lago_id),
        "external_customer_id": customer.external_id,
        "paid_at": iso_utc(payment.paid_at),
        "method": payment.method,
        "refunded_amount_cents": payment.refunded_amount_cents,
        "provider": payment.provider,
    }
