"""Billable metrics, plans, charges and charge filters as Lago's v1 API shows them (§6–7)."""

from __future__ import annotations

from typing import Any, NamedTuple

from billing.models import BillableMetric, Charge, ChargeFilter, Plan
from billing.serializers_taxes import serialize_tax
from billing.timeutil import iso_utc


class PlanCounts(NamedTuple):
    """What a plan's object reports about its subscribers (computed by services.plans)."""

    customers_count: int = 0
    active_subscriptions_count: int = 0
    draft_invoices_count: int = 0


def serialize_billable_metric(metric: BillableMetric) -> dict[str, Any]:
    """Lago's billable metric object; `filters` is always present (the SDK requires it)."""
    return {
        "lago_id": str(metric.lago_id),
        "name": metric.name,
        "code": metric.code,
        "description": metric.description,
        "aggregation_type": metric.aggregation_type,
        "weighted_interval": metric.weighted_interval,
        "recurring": metric.recurring,
        "rounding_function": metric.rounding_function,
        "rounding_precision": metric.rounding_precision,
        "created_at": iso_utc(metric.created_at),
        "field_name": metric.field_name,
        "expression": metric.expression,
        "filters": [
            {"key": item["key"], "values": list(item["values"])} for item in metric.filters or []
        ],
    }


def serialize_charge_filter(charge_filter: ChargeFilter) -> dict[str, Any]:
    return {
        "lago_id": str(charge_filter.lago_id),
        "invoice_display_name": charge_filter.invoice_display_name,
        "properties": charge_filter.properties or {},
        "values": charge_filter.values or {},
        "created_at": iso_utc(charge_filter.created_at),
    }


def serialize_charge(charge: Charge) -> dict[str, Any]:
    """Lago's charge object."""
    return {
        "lago_id": str(charge.lago_id),
        "lago_billable_metric_id": str(charge.billable_metric.lago_id),
        "billable_metric_code": charge.billable_metric.code,
        "code": charge.code,
        "invoice_display_name": charge.invoice_display_name,
        "created_at": iso_utc(charge.created_at),
        "charge_model": charge.charge_model,
        "invoiceable": charge.invoiceable,
        "regroup_paid_fees": charge.regroup_paid_fees,
        "pay_in_advance": charge.pay_in_advance,
        "prorated": charge.prorated,
        "min_amount_cents": charge.min_amount_cents,
        "accepts_target_wallet": False,
        "properties": charge.properties or {},
        "applied_pricing_unit": None,
        "lago_parent_id": None,
        "tax_codes": list(charge.tax_codes or []),
        "filters": [serialize_charge_filter(f) for f in charge.filters],
        "taxes": [serialize_tax(tax) for tax in charge.taxes],
    }


def serialize_plan(plan: Plan, counts: PlanCounts | None = None) -> dict[str, Any]:
    """Lago's plan object with its live charges."""
    counts = counts or PlanCounts()
    return {
        "lago_id": str(plan.lago_id),
        "name": plan.name,
        "invoice_display_name": plan.invoice_display_name,
        "created_at": iso_utc(plan.created_at),
        "code": plan.code,
        "interval": plan.interval,
        "description": plan.description,
        "amount_cents": plan.amount_cents,
        "amount_currency": plan.amount_currency,
        "trial_period": plan.trial_period,
        "pay_in_advance": plan.pay_in_advance,
        "bill_charges_monthly": plan.bill_charges_monthly,
        "bill_fixed_charges_monthly": None,
        "customers_count": counts.customers_count,
        "active_subscriptions_count": counts.active_subscriptions_count,
        "draft_invoices_count": counts.draft_invoices_count,
        "parent_id": None,
        "pending_deletion": False,
        "tax_codes": list(plan.tax_codes or []),
        "charges": [serialize_charge(c) for c in plan.charges],
        "fixed_charges": [],
        "usage_thresholds": [],
        "taxes": [serialize_tax(tax) for tax in plan.taxes],
        "minimum_commitment": None,
        "metadata": plan.plan_metadata,
    }
