"""Coupons, applied coupons and coupon credits as Lago's v1 API shows them (lago-api.md §15,
the `credits` of §10.1)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing.models import AppliedCoupon, Coupon
from billing.serializers_usage import units_text
from billing.timeutil import iso_utc


def _rate(rate: Decimal | None) -> str | None:
    return units_text(rate) if rate is not None else None


def serialize_coupon(coupon: Coupon) -> dict[str, Any]:
    plan_codes = [plan.code for plan in coupon.plans]
    metric_codes = [metric.code for metric in coupon.billable_metrics]
    return {
        "lago_id": str(coupon.lago_id),
        "name": coupon.name,
        "code": coupon.code,
        "description": coupon.description,
        "coupon_type": coupon.coupon_type,
        "amount_cents": coupon.amount_cents,
        "amount_currency": coupon.amount_currency,
        "percentage_rate": _rate(coupon.percentage_rate),
        "frequency": coupon.frequency,
        "frequency_duration": coupon.frequency_duration,
        "reusable": coupon.reusable,
        "limited_plans": coupon.limited_plans,
        "plan_codes": plan_codes,
        "limited_billable_metrics": coupon.limited_billable_metrics,
        "billable_metric_codes": metric_codes,
        "created_at": iso_utc(coupon.created_at),
        "expiration": coupon.expiration,
        "expiration_at": iso_utc(coupon.expiration_at),
        "terminated_at": iso_utc(coupon.terminated_at),
    }


def serialize_credit(credit: Any, invoice: Any) -> dict[str, Any]:
    """One coupon credit of an invoice (an InvoiceCoupon, or a new invoice's line)."""
    coupon = credit.applied_coupon.coupon
    return {
        "lago_id": str(credit.lago_id),
        "amount_cents": credit.amount_cents,
        "amount_currency": credit.currency,
        "before_taxes": True,
        "item": {
            "lago_item_id": str(coupon.lago_id),
            "type": "coupon",
            "code": coupon.code,
            "name": coupon.name,
        },
        "invoice": {"lago_id": str(invoice.lago_id), "payment_status": invoice.payment_status},
    }


def serialize_applied_coupon(applied: AppliedCoupon) -> dict[str, Any]:
    coupon = applied.coupon
    customer = applied.customer
    return {
        "lago_id": str(applied.lago_id),
        "lago_coupon_id": str(coupon.lago_id),
        "coupon_code": coupon.code,
        "coupon_name": coupon.name,
        "lago_customer_id": str(customer.lago_id),
        "external_customer_id": customer.external_id,
        "status": applied.status,
        "amount_cents": applied.amount_cents,
        "amount_cents_remaining": applied.amount_cents_remaining,
        "amount_currency": applied.amount_currency,
        "percentage_rate": _rate(applied.percentage_rate),
        "frequency": applied.frequency,
        "frequency_duration": applied.frequency_duration,
        "frequency_duration_remaining": applied.frequency_duration_remaining,
        "expiration_at": iso_utc(coupon.expiration_at),
        "created_at": iso_utc(applied.created_at),
        "terminated_at": iso_utc(applied.terminated_at),
        "credits": [
            serialize_credit(credit, credit.invoice)
            for credit in applied.credits
            if credit.invoice.status != "draft"
        ],
    }
