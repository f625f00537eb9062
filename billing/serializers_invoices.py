"""Invoices, fees and past usage as Lago's v1 API shows them (lago-api.md §10.1, §5); the API
and the outbox share these. Every key is written; features not built yet (coupons, credits)
show as 0, [] or null; `file_url` is the PDF's signed link once it is stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing.errors import InvariantBroken
from billing.models import DocumentType, Fee, FeeType, Invoice, InvoiceSubscription
from billing.money import currency_exponent
from billing.periods import Period
from billing.serializers import serialize_customer
from billing.serializers_coupons import serialize_credit
from billing.serializers_subscriptions import serialize_subscription
from billing.serializers_taxes import (
    rate_number,
    serialize_fee_applied_tax,
    serialize_invoice_applied_tax,
)
from billing.serializers_usage import serialize_customer_usage, units_text
from billing.services import documents
from billing.timeutil import iso_utc

#: keys Lago leaves out of the customer embedded in an invoice
_NOT_EMBEDDED = ("taxes", "applicable_invoice_custom_sections", "error_details")


def _embedded_customer(invoice: Invoice) -> dict[str, Any]:
    payload = serialize_customer(invoice.customer)
    for key in _NOT_EMBEDDED:
        payload.pop(key, None)
    return payload


def serialize_metadata(invoice: Invoice) -> list[dict[str, Any]]:
    return [
        {
            "lago_id": str(item.lago_id),
            "key": item.key,
            "value": item.value,
            "created_at": iso_utc(item.created_at),
        }
        for item in invoice.metadata_items
    ]


def serialize_billing_period(link: InvoiceSubscription) -> dict[str, Any]:
    subscription = link.subscription
    return {
        "lago_subscription_id": str(subscription.lago_id),
        "external_subscription_id": subscription.external_id,
        "lago_plan_id": str(subscription.plan.lago_id),
        "subscription_from_datetime": iso_utc(link.from_datetime),
        "subscription_to_datetime": iso_utc(
            Period(link.from_datetime, link.to_datetime).inclusive_end
        ),
        "charges_from_datetime": iso_utc(link.charges_from_datetime),
        "charges_to_datetime": iso_utc(
            Period(link.charges_from_datetime, link.charges_to_datetime).inclusive_end
        ),
        "invoicing_reason": link.invoicing_reason,
    }


def _fee_item(fee: Fee) -> dict[str, Any]:
    if fee.fee_type == FeeType.CREDIT:
        from billing.services.wallets import credit_fee_item  # noqa: PLC0415

        return credit_fee_item(fee)
    if fee.charge is not None:
        metric = fee.charge.billable_metric
        return {
            "type": "charge",
            "code": metric.code,
            "name": metric.name,
            "invoice_display_name": fee.invoice_display_name,
            "filter_invoice_display_name": (
                fee.charge_filter.invoice_display_name if fee.charge_filter else None
            ),
            "filters": dict(fee.charge_filter.values) if fee.charge_filter else None,
            "lago_item_id": str(metric.lago_id),
            "item_type": "BillableMetric",
            "grouped_by": {},
        }
    if fee.add_on_id is not None:
        add_on = fee.add_on
        if add_on is None:
            raise InvariantBroken("expected add_on is not None")
        return {
            "type": "add_on",
            "code": add_on.code,
            "name": add_on.name,
            "invoice_display_name": fee.invoice_display_name,
            "filter_invoice_display_name": None,
            "filters": None,
            "lago_item_id": str(add_on.lago_id),
            "item_type": "AddOn",
            "grouped_by": {},
        }
    plan = fee.subscription.plan if fee.subscription is not None else None
    return {
        "type": fee.fee_type,
        "code": plan.code if plan else None,
        "name": plan.name if plan else None,
        "invoice_display_name": fee.invoice_display_name,
        "filter_invoice_display_name": None,
        "filters": None,
        "lago_item_id": str(fee.subscription.lago_id) if fee.subscription else None,
        "item_type": "Subscription",
        "grouped_by": {},
    }


def serialize_fee(fee: Fee, invoice: Invoice) -> dict[str, Any]:
    subscription = fee.subscription
    customer = invoice.customer
    return {
        "lago_id": str(fee.lago_id),
        "lago_charge_id": str(fee.charge.lago_id) if fee.charge else None,
        "lago_charge_filter_id": str(fee.charge_filter.lago_id) if fee.charge_filter else None,
        "lago_fixed_charge_id": None,
        "lago_invoice_id": str(invoice.lago_id),
        "lago_true_up_fee_id": None,
        "lago_true_up_parent_fee_id": None,
        "lago_subscription_id": str(subscription.lago_id) if subscription else None,
        "external_subscription_id": subscription.external_id if subscription else None,
        "lago_customer_id": str(customer.lago_id),
        "external_customer_id": customer.external_id,
        "amount_cents": fee.amount_cents,
        "precise_amount": units_text(fee.precise_amount),
        "precise_total_amount": units_text(fee.precise_amount),
        "amount_currency": fee.currency,
        "taxes_amount_cents": fee.taxes_amount_cents,
        "taxes_precise_amount": units_text(
            sum((a.precise_amount_cents for a in fee.applied_taxes), Decimal(0)).scaleb(
                -currency_exponent(fee.currency)
            )
        ),
        "taxes_rate": rate_number(fee.taxes_rate),
        "total_amount_cents": fee.amount_cents + fee.taxes_amount_cents,
        "total_amount_currency": fee.currency,
        "units": units_text(fee.units),
        "total_aggregated_units": units_text(fee.total_aggregated_units),
        "description": fee.description,
        "precise_unit_amount": units_text(fee.precise_unit_amount),
        "events_count": fee.events_count,
        "pay_in_advance": fee.pay_in_advance,
        "invoiceable": True,
        "from_date": iso_utc(fee.from_datetime),
        "to_date": iso_utc(
            Period(fee.from_datetime, fee.to_datetime).inclusive_end
            if fee.from_datetime and fee.to_datetime
            else None
        ),
        "payment_status": invoice.payment_status,
        "created_at": iso_utc(fee.created_at),
        "succeeded_at": None,
        "failed_at": None,
        "refunded_at": None,
        "amount_details": {},
        "self_billed": False,
        "item": _fee_item(fee),
        "applied_taxes": [
            serialize_fee_applied_tax(a, str(fee.lago_id)) for a in fee.applied_taxes
        ],
    }


def serialize_invoice(invoice: Invoice, *, include_fees: bool = False) -> dict[str, Any]:
    """Lago's invoice object: the list shape, or with `include_fees` the show shape (fees,
    billing periods, subscriptions)."""
    payload: dict[str, Any] = {
        "lago_id": str(invoice.lago_id),
        "billing_entity_code": None,
        "sequential_id": invoice.sequential_id,
        "number": invoice.number,
        "issuing_date": invoice.issuing_date.isoformat(),
        "payment_due_date": invoice.payment_due_date.isoformat(),
        "net_payment_term": invoice.net_payment_term,
        "invoice_type": invoice.invoice_type,
        "status": invoice.status,
        "payment_status": invoice.payment_status,
        "payment_dispute_lost_at": None,
        "payment_overdue": invoice.payment_overdue,
        "purchase_order_number": None,
        "currency": invoice.currency,
        "fees_amount_cents": invoice.fees_amount_cents,
        "coupons_amount_cents": invoice.coupons_amount_cents,
        "taxes_amount_cents": invoice.taxes_amount_cents,
        "credit_notes_amount_cents": invoice.credit_notes_amount_cents,
        "progressive_billing_credit_amount_cents": invoice.progressive_billing_credit_amount_cents,
        "sub_total_excluding_taxes_amount_cents": invoice.sub_total_excluding_taxes_amount_cents,
        "sub_total_including_taxes_amount_cents": invoice.sub_total_including_taxes_amount_cents,
        "total_amount_cents": invoice.total_amount_cents,
        "total_due_amount_cents": invoice.total_due_amount_cents,
        "total_paid_amount_cents": invoice.total_paid_amount_cents,
        "total_offsetted_credit_note_amount_cents": invoice.offset_amount_cents,
        "prepaid_credit_amount_cents": invoice.prepaid_credit_amount_cents,
        "prepaid_granted_credit_amount_cents": 0,
        "prepaid_purchased_credit_amount_cents": 0,
        "file_url": documents.file_url(DocumentType.INVOICE, invoice),
        "xml_url": None,
        "web_url": None,
        "version_number": invoice.version_number,
        "self_billed": False,
        "created_at": iso_utc(invoice.created_at),
        "updated_at": iso_utc(invoice.updated_at),
        "voided_at": iso_utc(invoice.voided_at),
        "customer": _embedded_customer(invoice),
        "metadata": serialize_metadata(invoice),
        "applied_taxes": [
            serialize_invoice_applied_tax(a, str(invoice.lago_id)) for a in invoice.applied_taxes
        ],
        "applied_invoice_custom_sections": [],
        "error_details": [],
    }
    if include_fees:
        links = invoice.invoice_subscriptions
        payload["billing_periods"] = [serialize_billing_period(link) for link in links]
        payload["subscriptions"] = [serialize_subscription(link.subscription) for link in links]
        payload["fees"] = [serialize_fee(fee, invoice) for fee in invoice.fees]
        # coupons (before taxes), then the credit notes' credit (after taxes)
        payload["credits"] = [
            serialize_credit(credit, invoice) for credit in getattr(invoice, "coupon_credits", [])
        ] + _credits(invoice)
        payload["applied_usage_thresholds"] = []
    return payload


def _credits(invoice: Invoice) -> list[dict[str, Any]]:
    from billing.serializers_credit_notes import serialize_credits  # noqa: PLC0415  (cycle)

    return serialize_credits(invoice)


def serialize_past_usage(link: InvoiceSubscription) -> dict[str, Any]:
    """One closed period's usage as Lago's past usage lists it: the current-usage shape, built
    from the charge fees of the invoice that billed it, with that invoice's id."""
    from billing.services.usage import ChargeUsage, FilterUsage, UsageSummary  # noqa: PLC0415

    invoice = link.invoice
    by_charge: dict[int, list[Fee]] = {}
    for fee in invoice.fees:
        if fee.charge_id is not None and fee.subscription_id == link.subscription_id:
            by_charge.setdefault(fee.charge_id, []).append(fee)
    charges = []
    for fees in by_charge.values():
        charge = fees[0].charge
        if charge is None:
            raise InvariantBroken("expected charge is not None")
        items = [
            FilterUsage(
                f.charge_filter, f.units, f.total_aggregated_units, f.events_count, f.amount_cents
            )
            for f in fees
        ]
        charges.append(
            ChargeUsage(
                charge=charge,
                billable_metric=charge.billable_metric,
                units=sum((item.units for item in items), Decimal(0)),
                total_aggregated_units=sum(
                    (item.total_aggregated_units for item in items), Decimal(0)
                ),
                events_count=sum(item.events_count for item in items),
                amount_cents=sum(item.amount_cents for item in items),
                filters=items if any(f.charge_filter_id for f in fees) else [],
            )
        )
    amount = sum(charge.amount_cents for charge in charges)
    taxes = sum(fee.taxes_amount_cents for fees in by_charge.values() for fee in fees)
    summary = UsageSummary(
        subscription=link.subscription,
        period=Period(link.charges_from_datetime, link.charges_to_datetime),
        issuing_date=invoice.issuing_date,
        currency=invoice.currency,
        amount_cents=amount,
        taxes_amount_cents=taxes,
        total_amount_cents=amount + taxes,
        charges=charges,
    )
    return {**serialize_customer_usage(summary), "lago_invoice_id": str(invoice.lago_id)}
