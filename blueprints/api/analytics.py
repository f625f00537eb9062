"""/api/v1/analytics/*: gross revenue, overdue balance, invoiced usage, MRR and invoice
collection by month (lago-api.md §13). Not paginated; the list key is the plural name."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.errors import ValidationFailed
from billing.services import analytics
from blueprints.api import bp
from blueprints.api.auth import current_organization

_month = analytics.month_timestamp


def analytics_filters() -> analytics.AnalyticsFilters:
    """`currency`, `external_customer_id` and `months` from the query string; a `months` that
    is not a whole number from 1 to 1200 is 422. `billing_entity_code` is accepted and ignored
    (billing entities are out of scope)."""
    args = request.args
    months: int | None = None
    raw = (args.get("months") or "").strip()
    if raw:
        # isdecimal, not isdigit: int() refuses digits such as "²" that isdigit accepts
        if not (raw.isdecimal() and len(raw) <= 4 and 1 <= int(raw) <= analytics.MAX_MONTHS):
            raise ValidationFailed({"months": ["value_is_invalid"]})
        months = int(raw)
    return analytics.AnalyticsFilters(
        currency=(args.get("currency") or "").strip().upper() or None,
        external_customer_id=args.get("external_customer_id") or None,
        months=months,
    )


@bp.get("/analytics/gross_revenue")
def gross_revenue() -> ResponseReturnValue:
    """Finalized invoices' totals per issuing month and currency."""
    rows = analytics.gross_revenue(current_organization(), analytics_filters())
    return jsonify(
        gross_revenues=[
            {
                "month": _month(row.month),
                "amount_cents": row.amount_cents,
                "currency": row.currency,
                "invoices_count": row.invoices_count,
                "billing_entity_id": None,
            }
            for row in rows
        ]
    )


@bp.get("/analytics/overdue_balance")
def overdue_balance() -> ResponseReturnValue:
    """What is due on overdue invoices per due-date month and currency."""
    rows = analytics.overdue_balance(current_organization(), analytics_filters())
    return jsonify(
        overdue_balances=[
            {
                "month": _month(row.month),
                "amount_cents": row.amount_cents,
                "currency": row.currency,
                "lago_invoice_ids": row.lago_invoice_ids,
                "billing_entity_id": None,
            }
            for row in rows
        ]
    )


@bp.get("/analytics/invoiced_usage")
def invoiced_usage() -> ResponseReturnValue:
    """Usage fees of finalized invoices per issuing month, metric and currency."""
    rows = analytics.invoiced_usage(current_organization(), analytics_filters())
    return jsonify(
        invoiced_usages=[
            {
                "month": _month(row.month),
                "code": row.code,
                "amount_cents": row.amount_cents,
                "currency": row.currency,
            }
            for row in rows
        ]
    )


@bp.get("/analytics/mrr")
def mrr() -> ResponseReturnValue:
    """Monthly recurring revenue per month and currency."""
    rows = analytics.mrr(current_organization(), analytics_filters())
    return jsonify(
        mrrs=[
            {"month": _month(row.month), "amount_cents": row.amount_cents, "currency": row.currency}
            for row in rows
        ]
    )


@bp.get("/analytics/invoice_collection")
def invoice_collection() -> ResponseReturnValue:
    """Finalized invoices per issuing month, payment status and currency."""
    rows = analytics.invoice_collection(current_organization(), analytics_filters())
    collections: list[dict[str, Any]] = [
        {
            "month": _month(row.month),
            "payment_status": row.payment_status,
            "invoices_count": row.invoices_count,
            "amount_cents": row.amount_cents,
            "currency": row.currency,
        }
        for row in rows
    ]
    return jsonify(invoice_collections=collections)
