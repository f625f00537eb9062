"""Analytics (lago-api.md §13): gross revenue, overdue balance, invoiced usage, MRR and invoice
collection by month, and a customer's balances (the figures of the customer page's header).

One definition of each figure, shared by the API, the console and the customer list:

- revenue counts **finalized** invoices only (drafts are not issued yet, voided ones were
  cancelled), by the month of their issuing date (the customer's local date of finalization);
- overdue counts finalized invoices flagged `payment_overdue` (see `OVERDUE`), by the month of
  their due date, for what is still due on them;
- MRR is the base fee of the subscriptions active at the end of each month (now, for the current
  month), normalised to a month: weekly × 52/12, quarterly / 3, semiannual / 6, yearly / 12,
  summed exactly and rounded once per currency.

Months are those of the organization's timezone: `months=N` is the current month there and the
N - 1 before it. An invoice belongs to the month of its own dates (issuing or due), which are
local dates of its customer's timezone. Each figure is one grouped query; rows come back oldest
month first.

Gross revenue is net of credit-note refunds, as Lago's: what credit notes paid back on revenue
invoices counts against the month (and currency) of the credit note, whose own issuing date is
a local date too; a month with refunds but no invoices has a negative amount and no invoices.
A refund counts even once the credit note's remaining credit was voided: voiding takes away
the credit left, not the money already paid back. A voided invoice's credit notes do not count,
as the invoice itself no longer does. Lago also adds pay-in-advance fees not yet invoiced:
Ledgerline refuses pay-in-advance charges, so they are nothing here.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    extract,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import joinedload

from billing.models import (
    BillableMetric,
    Charge,
    CreditNote,
    Customer,
    Fee,
    FeeType,
    Invoice,
    InvoiceStatus,
    Organization,
    PaymentStatus,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from billing.models.invoices import OVERDUE_PREDICATE
from billing.models.plans import PlanInterval
from billing.money import currency_exponent, to_minor_units
from billing.periods import local_date
from billing.timeutil import now_utc
from extensions import db

#: the most months a query may ask for (a hundred years)
MAX_MONTHS = 1200

#: what revenue counts: issued invoices, not drafts, not voided ones
REVENUE: ColumnElement[bool] = Invoice.status == InvoiceStatus.FINALIZED
#: an overdue invoice: issued, past its due date and unpaid (the overdue job flags it; a payment
#: clears the flag). Written as the predicate of the partial index ix_invoices_overdue_customer,
#: constants inline: neither database can use a partial index for a bound parameter.
OVERDUE: ColumnElement[bool] = and_(
    Invoice.payment_overdue == true(),
    Invoice.status == literal_column(f"'{InvoiceStatus.FINALIZED}'"),
)
#: what is still due on an invoice, in its minor units (Invoice.total_due_amount_cents in SQL)
_DUE = Invoice.total_amount_cents - Invoice.total_paid_amount_cents - Invoice.offset_amount_cents

#: a plan interval's base fee → a month's share of it
MONTHLY_SHARE = {
    PlanInterval.WEEKLY: Fraction(52, 12),
    PlanInterval.MONTHLY: Fraction(1),
    PlanInterval.QUARTERLY: Fraction(1, 3),
    PlanInterval.SEMIANNUAL: Fraction(1, 6),
    PlanInterval.YEARLY: Fraction(1, 12),
}


def overdue_customer_ids(dialect: str) -> Select[Any]:
    """The ids of the customers with overdue invoices, read from ix_invoices_overdue_customer
    alone. SQLite, without statistics, would rather read every finalized invoice through
    ix_invoices_status_grace, and SQLAlchemy renders no index hint for it: it is named there."""
    if dialect != "sqlite":
        return select(Invoice.customer_id).where(OVERDUE)
    return (
        select(literal_column("customer_id"))
        .select_from(text("invoices INDEXED BY ix_invoices_overdue_customer"))
        .where(text(OVERDUE_PREDICATE["sqlite"]))
    )


@dataclass(frozen=True)
class AnalyticsFilters:
    """What to count: one currency, one customer (by id or external id), the last `months`
    months (None: every month; MRR then shows 12)."""

    currency: str | None = None
    external_customer_id: str | None = None
    customer_id: int | None = None
    months: int | None = None


@dataclass(frozen=True)
class GrossRevenue:
    month: date
    currency: str
    amount_cents: int
    invoices_count: int


@dataclass(frozen=True)
class OverdueBalance:
    month: date
    currency: str
    amount_cents: int
    lago_invoice_ids: list[str]


@dataclass(frozen=True)
class InvoicedUsage:
    month: date
    code: str
    currency: str
    amount_cents: int


@dataclass(frozen=True)
class Mrr:
    month: date
    currency: str
    amount_cents: int


@dataclass(frozen=True)
class InvoiceCollection:
    month: date
    payment_status: str
    currency: str
    invoices_count: int
    amount_cents: int


# ---------------------------------------------------------------------------------------------
# Months


def current_month(organization: Organization, at: datetime | None = None) -> date:
    """The first day of the organization's current month (in its timezone)."""
    return local_date(at or now_utc(), organization.timezone).replace(day=1)


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after (or before) `month`'s."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_range(organization: Organization, months: int, at: datetime | None = None) -> list[date]:
    """The first days of the last `months` months, oldest first, the current one last."""
    last = current_month(organization, at)
    return [add_months(last, offset) for offset in range(1 - months, 1)]


# ---------------------------------------------------------------------------------------------
# Invoice figures


def _customer_conditions(
    customer_id: Any, organization: Organization, filters: AnalyticsFilters
) -> list[Any]:
    """`customer_id` (a column) is the filters' customer, by id or external id."""
    conditions: list[Any] = []
    if filters.customer_id is not None:
        conditions.append(customer_id == filters.customer_id)
    if filters.external_customer_id:
        conditions.append(
            customer_id.in_(
                Customer.ids_with_external_id(organization.id, filters.external_customer_id)
            )
        )
    return conditions


def _invoice_conditions(
    organization: Organization, filters: AnalyticsFilters, date_column: Any
) -> list[Any]:
    conditions: list[Any] = [
        Invoice.organization_id == organization.id,
        *_customer_conditions(Invoice.customer_id, organization, filters),
    ]
    if filters.currency:
        conditions.append(Invoice.currency == filters.currency)
    if filters.months is not None:
        this_month = current_month(organization)
        conditions.append(date_column >= add_months(this_month, 1 - filters.months))
        conditions.append(date_column < add_months(this_month, 1))
    return conditions


def _month_columns(date_column: Any) -> tuple[Any, Any]:
    """The year and the month of a date column (portable: EXTRACT, strftime on SQLite)."""
    return extract("year", date_column).label("year"), extract("month", date_column).label("month")


def _month(year: Any, month: Any) -> date:
    return date(int(year), int(month), 1)


def gross_revenue(organization: Organization, filters: AnalyticsFilters) -> list[GrossRevenue]:
    """Per month and currency: the total of the finalized invoices issued in it and their count,
    less the refunds of the credit notes issued in it (only months with either)."""
    year, month = _month_columns(Invoice.issuing_date)
    rows = db.session.execute(
        select(year, month, Invoice.currency, func.sum(Invoice.total_amount_cents), func.count())
        .where(REVENUE, *_invoice_conditions(organization, filters, Invoice.issuing_date))
        .group_by(year, month, Invoice.currency)
    )
    figures: dict[tuple[date, str], tuple[int, int]] = {
        (_month(y, m), currency): (int(amount), int(count))
        for y, m, currency, amount, count in rows
    }
    for key, refunded in _refunds(organization, filters).items():
        amount, count = figures.get(key, (0, 0))
        figures[key] = (amount - refunded, count)
    return [
        GrossRevenue(month_, currency, amount, count)
        for (month_, currency), (amount, count) in sorted(figures.items())
    ]


def _refunds(organization: Organization, filters: AnalyticsFilters) -> dict[tuple[date, str], int]:
    """What credit notes refunded on revenue invoices, per month of the credit note's issuing
    date and currency."""
    year, month = _month_columns(CreditNote.issuing_date)
    conditions: list[Any] = [
        CreditNote.organization_id == organization.id,
        CreditNote.refund_amount_cents > 0,
        *_customer_conditions(CreditNote.customer_id, organization, filters),
    ]
    if filters.currency:
        conditions.append(CreditNote.currency == filters.currency)
    if filters.months is not None:
        this_month = current_month(organization)
        conditions.append(CreditNote.issuing_date >= add_months(this_month, 1 - filters.months))
        conditions.append(CreditNote.issuing_date < add_months(this_month, 1))
    rows = db.session.execute(
        select(year, month, CreditNote.currency, func.sum(CreditNote.refund_amount_cents))
        .join(Invoice, Invoice.id == CreditNote.invoice_id)
        .where(REVENUE, *conditions)
        .group_by(year, month, CreditNote.currency)
    )
    return {(_month(y, m), currency): int(amount) for y, m, currency, amount in rows}


def overdue_balance(organization: Organization, filters: AnalyticsFilters) -> list[OverdueBalance]:
    """Per due-date month and currency: what is still due on the overdue invoices, and their
    lago ids."""
    year, month = _month_columns(Invoice.payment_due_date)
    rows = db.session.execute(
        select(
            year,
            month,
            Invoice.currency,
            func.sum(_DUE),
            func.aggregate_strings(cast(Invoice.lago_id, String), ","),
        )
        .where(OVERDUE, *_invoice_conditions(organization, filters, Invoice.payment_due_date))
        .group_by(year, month, Invoice.currency)
        .order_by(year, month, Invoice.currency)
    )
    return [
        OverdueBalance(
            _month(y, m),
            currency,
            int(amount),
            sorted(str(uuid.UUID(text)) for text in ids.split(",")),
        )
        for y, m, currency, amount, ids in rows
    ]


def invoiced_usage(organization: Organization, filters: AnalyticsFilters) -> list[InvoicedUsage]:
    """Per issuing month, billable metric and currency: the usage fees of finalized invoices."""
    year, month = _month_columns(Invoice.issuing_date)
    rows = db.session.execute(
        select(year, month, BillableMetric.code, Fee.currency, func.sum(Fee.amount_cents))
        .select_from(Fee)
        .join(Invoice, Invoice.id == Fee.invoice_id)
        .join(Charge, Charge.id == Fee.charge_id)
        .join(BillableMetric, BillableMetric.id == Charge.billable_metric_id)
        .where(
            REVENUE,
            Fee.fee_type == FeeType.CHARGE,
            *_invoice_conditions(organization, filters, Invoice.issuing_date),
        )
        .group_by(year, month, BillableMetric.code, Fee.currency)
        .order_by(year, month, BillableMetric.code, Fee.currency)
    )
    return [
        InvoicedUsage(_month(y, m), code, currency, int(amount))
        for y, m, code, currency, amount in rows
    ]


def invoice_collection(
    organization: Organization, filters: AnalyticsFilters
) -> list[InvoiceCollection]:
    """Per issuing month, payment status and currency: how many finalized invoices and their
    total."""
    year, month = _month_columns(Invoice.issuing_date)
    rows = db.session.execute(
        select(
            year,
            month,
            Invoice.payment_status,
            Invoice.currency,
            func.count(),
            func.sum(Invoice.total_amount_cents),
        )
        .where(REVENUE, *_invoice_conditions(organization, filters, Invoice.issuing_date))
        .group_by(year, month, Invoice.payment_status, Invoice.currency)
        .order_by(year, month, Invoice.payment_status, Invoice.currency)
    )
    return [
        InvoiceCollection(_month(y, m), status, currency, int(count), int(amount))
        for y, m, status, currency, count, amount in rows
    ]


# ---------------------------------------------------------------------------------------------
# MRR


def mrr(organization: Organization, filters: AnalyticsFilters) -> list[Mrr]:
    """Per month (every month of the window, 12 by default) and currency: the monthly share of
    the base fees of the subscriptions active at the end of the month (now, this month): started
    before that instant and not terminated before it."""
    now = now_utc()
    months = month_range(organization, filters.months or 12, now)
    zone = ZoneInfo(organization.timezone)
    # the instant each month is looked at: its end in the organization's timezone, or now
    instants = [min(now, datetime.combine(add_months(month, 1), time(), zone)) for month in months]
    started = datetime.combine(months[0], time(), zone)
    conditions: list[Any] = [
        Subscription.organization_id == organization.id,
        Subscription.status.in_((SubscriptionStatus.ACTIVE, SubscriptionStatus.TERMINATED)),
        Subscription.started_at.is_not(None),
        Subscription.started_at <= instants[-1],
        or_(Subscription.terminated_at.is_(None), Subscription.terminated_at > started),
    ]
    conditions += _customer_conditions(Subscription.customer_id, organization, filters)
    if filters.currency:
        conditions.append(Plan.amount_currency == filters.currency)
    rows = db.session.execute(
        select(
            Plan.amount_currency,
            Plan.interval,
            Subscription.started_at,
            Subscription.terminated_at,
            func.sum(Plan.amount_cents),
        )
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(*conditions)
        .group_by(
            Plan.amount_currency, Plan.interval, Subscription.started_at, Subscription.terminated_at
        )
    ).all()
    totals: dict[str, list[Fraction]] = defaultdict(lambda: [Fraction(0)] * len(months))
    for currency, interval, started_at, terminated_at, amount in rows:
        share = MONTHLY_SHARE[PlanInterval(interval)] * int(amount)
        for index, instant in enumerate(instants):
            if (
                started_at is not None
                and started_at < instant
                and (terminated_at is None or terminated_at >= instant)
            ):
                totals[currency][index] += share
    return [
        Mrr(month, currency, minor_units(totals[currency][index], currency))
        for index, month in enumerate(months)
        for currency in sorted(totals)
    ]


def minor_units(cents: Fraction, currency: str) -> int:
    """An exact amount of minor units rounded to a whole one, as money.py rounds."""
    exponent = currency_exponent(currency)
    major = (Decimal(cents.numerator) / Decimal(cents.denominator)).scaleb(-exponent)
    return to_minor_units(major, currency)


# ---------------------------------------------------------------------------------------------
# A customer's balances


@dataclass
class CustomerBalance:
    """A customer's money in one currency, in its minor units."""

    currency: str
    #: finalized invoices not paid yet: what is still due on them
    outstanding_cents: int
    #: the part of `outstanding_cents` on overdue invoices (what overdue_balance sums)
    overdue_cents: int
    #: total of the finalized invoices, paid or not, less what credit notes refunded on them
    #: (what gross_revenue sums, over every month)
    gross_revenue_cents: int


def customer_balances(customer: Customer) -> list[CustomerBalance]:
    """The customer's outstanding, overdue and gross revenue amounts, one per invoice
    currency (by code)."""
    unpaid = Invoice.payment_status != PaymentStatus.SUCCEEDED
    rows = db.session.execute(
        select(
            Invoice.currency,
            func.coalesce(func.sum(_DUE).filter(unpaid), 0),
            func.coalesce(func.sum(_DUE).filter(unpaid, OVERDUE), 0),
            func.sum(Invoice.total_amount_cents),
        )
        .where(Invoice.customer_id == customer.id, REVENUE)
        .group_by(Invoice.currency)
        .order_by(Invoice.currency)
    )
    refunded: dict[str, int] = defaultdict(int)
    for (_, currency), amount in _refunds(
        customer.organization, AnalyticsFilters(customer_id=customer.id)
    ).items():
        refunded[currency] += amount
    return [
        CustomerBalance(currency, int(outstanding), int(overdue), int(gross) - refunded[currency])
        for currency, outstanding, overdue, gross in rows
    ]


def month_timestamp(month: date) -> str:
    """Lago's `month` field: the first day of the month as a UTC timestamp with milliseconds."""
    return f"{month.isoformat()}T00:00:00.000Z"


# ---------------------------------------------------------------------------------------------
# Invoices to review


@dataclass
class InvoicesToReview:
    """What the finance dashboard asks someone to look at, `REVIEW_LIMIT` of each (soonest
    first) with how many there are in all."""

    #: drafts still in their grace period (they finalize on their own at its end)
    drafts: list[Invoice]
    drafts_count: int
    overdue: list[Invoice]
    overdue_count: int
    #: finalized invoices whose payment failed
    failed: list[Invoice]
    failed_count: int


REVIEW_LIMIT = 10


def invoices_to_review(organization: Organization) -> InvoicesToReview:
    """Drafts in their grace period, overdue invoices and failed payments of the organization."""
    mine = Invoice.organization_id == organization.id
    draft = Invoice.status == InvoiceStatus.DRAFT
    failed = and_(REVENUE, Invoice.payment_status == PaymentStatus.FAILED)

    def first(condition: Any, *order: Any) -> list[Invoice]:
        query = (
            select(Invoice)
            .where(mine, condition)
            .order_by(*order, Invoice.id)
            .limit(REVIEW_LIMIT)
            .options(joinedload(Invoice.customer))
        )
        return list(db.session.scalars(query))

    counts = db.session.execute(
        select(
            func.count().filter(draft),
            func.count().filter(OVERDUE),
            func.count().filter(failed),
        ).where(mine)
    ).one()
    return InvoicesToReview(
        drafts=first(draft, Invoice.grace_period_ends_at),
        drafts_count=int(counts[0]),
        overdue=first(OVERDUE, Invoice.payment_due_date),
        overdue_count=int(counts[1]),
        failed=first(failed, Invoice.issuing_date),
        failed_count=int(counts[2]),
    )
