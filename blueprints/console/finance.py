"""Finance in the console: the organization's dashboard (MRR, gross revenue and overdue balance
by month, invoices to review) and a customer's Analytics tab (monthly revenue, usage by
metric). Every figure comes from the analytics service, as the API's do."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from flask import render_template
from flask.typing import ResponseReturnValue

from billing.models import Customer, Organization
from billing.money import format_money, from_minor_units, to_minor_units
from billing.services import analytics
from blueprints.console import bp
from blueprints.console.charts import MonthlyChart
from blueprints.console.helpers import current_organization

#: months the charts show
MONTHS = 12


def _charts(
    organization: Organization,
    title: str,
    rows: list[tuple[date, str, int]],
    months: list[date],
) -> list[MonthlyChart]:
    """A chart per currency of `rows` (month, currency, minor units), every month of `months`
    present (zero when it has no row)."""
    by_currency: dict[str, dict[date, int]] = defaultdict(dict)
    for month, currency, cents in rows:
        by_currency[currency][month] = by_currency[currency].get(month, 0) + cents
    this_month = analytics.current_month(organization)
    charts = []
    for currency, amounts in sorted(by_currency.items()):
        series = [(month, from_minor_units(amounts.get(month, 0), currency)) for month in months]
        charts.append(
            MonthlyChart.build(title, currency, series, this_month, _money_text(currency))
        )
    return charts


def _money_text(currency: str) -> Callable[[Decimal], str]:
    """An amount in major units of `currency`, as the console shows money."""

    def text(amount: Decimal) -> str:
        return format_money(to_minor_units(amount, currency), currency)

    return text


def customer_analytics_context(customer: Customer) -> dict[str, Any]:
    """The customer's Analytics tab: revenue per month and invoiced usage per metric, over the
    last twelve months of the organization's calendar."""
    organization = customer.organization
    months = analytics.month_range(organization, MONTHS)
    filters = analytics.AnalyticsFilters(customer_id=customer.id, months=MONTHS)
    revenue = analytics.gross_revenue(organization, filters)
    usage = analytics.invoiced_usage(organization, filters)
    by_metric: dict[str, list[tuple[date, str, int]]] = defaultdict(list)
    for row in usage:
        by_metric[row.code].append((row.month, row.currency, row.amount_cents))
    usage_totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in usage:
        usage_totals[(row.code, row.currency)] += row.amount_cents
    return {
        "revenue_charts": _charts(
            organization,
            "Revenue per month",
            [(row.month, row.currency, row.amount_cents) for row in revenue],
            months,
        ),
        "revenue_rows": revenue,
        "usage_charts": [
            (code, chart)
            for code, rows in sorted(by_metric.items())
            for chart in _charts(organization, f"{code} per month", rows, months)
        ],
        "usage_totals": sorted(usage_totals.items()),
        "months": months,
    }


@bp.get("/finance")
def finance() -> ResponseReturnValue:
    """The organization's finance dashboard: MRR, gross revenue and overdue balance by month,
    and the invoices that need a look."""
    organization = current_organization()
    months = analytics.month_range(organization, MONTHS)
    filters = analytics.AnalyticsFilters(months=MONTHS)
    mrr = analytics.mrr(organization, filters)
    revenue = analytics.gross_revenue(organization, filters)
    overdue = analytics.overdue_balance(organization, analytics.AnalyticsFilters())
    this_month = analytics.current_month(organization)
    return render_template(
        "console/finance.html",
        months=months,
        current_mrr=[row for row in mrr if row.month == this_month],
        mrr_charts=_charts(
            organization,
            "MRR",
            [(row.month, row.currency, row.amount_cents) for row in mrr],
            months,
        ),
        revenue_charts=_charts(
            organization,
            "Gross revenue per month",
            [(row.month, row.currency, row.amount_cents) for row in revenue],
            months,
        ),
        revenue_rows=revenue,
        overdue_rows=overdue,
        review=analytics.invoices_to_review(organization),
    )
