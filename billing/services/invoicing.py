"""Invoicing: closing billing periods into invoices, drafts, finalization, payment status.

What a subscription is billed (Lago's behaviour, lago-api.md §8, §10):

- ``subscription_starting``: when a subscription on a plan paid **in advance** starts, its
  first period's base fee (prorated when the calendar period is partial; no fee for trial days).
  Billed at activation, through `start_invoicing`, which the subscriptions service calls.
- ``subscription_periodic``: when a period has ended in the customer's timezone, its usage (one
  fee per charge, and per charge filter) plus the base fee: of the ended period in arrears, of
  the next period in advance. `close_periods` does it (the jobs process every minute, and
  ``flask --app app billing close-periods``); a subscription whose periods ended while nothing
  ran gets one invoice per period, oldest first.
- ``subscription_terminating``: when a subscription is terminated (by hand, at its
  ``ending_at``, by an upgrade or a downgrade), the usage of its last, partial period and, in
  arrears, the base fee prorated by days; in advance nothing more (the fee was billed). Skipped
  when ``on_termination_invoice`` is ``skip``. An upgrade is the termination of the old
  subscription plus the start of the new one, so it gets both invoices. A period that ends
  exactly when a subscription is terminated (a downgrade, an ``ending_at`` at the period end) is
  left to the termination: the periodic close skips it.

Exactly once: every invoice is born with its `InvoiceSubscription` rows, whose unique key
(subscription, reason, period bounds) refuses a second invoice of the same period, whichever
process (another jobs process, a rerun after a crash, the CLI) tries: the rows go in with
``ON CONFLICT DO NOTHING … RETURNING`` and an invoice whose row was refused is deleted at once.
The close claims subscriptions with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has one
writer) and commits per small batch, so a crash loses at most one batch and a rerun completes it.
A batch is invoiced together (one usage read, one insert per table, the numbers in one
statement); if it fails, its subscriptions are retried one by one so only the culprit fails.

Efficiency: `Subscription.next_invoice_at` is the end of the next period to close (UTC, indexed);
the close reads only the subscriptions whose value has passed, so 10,000 subscriptions in the
middle of their periods cost one index range scan. It is set at activation, moved at each
close, cleared at termination; a null on an active subscription (one started before invoicing
existed) is treated as due and initialized by the close.

Drafts: an invoice stays ``draft`` (number ``<customer slug>-DRAFT``) for the grace period
(customer's, else the organization's, in days); `refresh_invoice` recomputes its fees (late
events count); `finalize_invoice` numbers it under a row lock on the customer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import islice
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from billing.errors import InvariantBroken, NotAllowed, NotFound, ValidationFailed
from billing.ids import new_lago_id
from billing.models import (
    Charge,
    Customer,
    Fee,
    FeeType,
    Invoice,
    InvoiceMetadata,
    InvoiceStatus,
    InvoiceSubscription,
    InvoicingReason,
    Organization,
    Payment,
    PaymentRecordStatus,
    PaymentStatus,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from billing.money import from_minor_units, to_minor_units
from billing.periods import (
    Period,
    full_period_of,
    local_date,
    local_midnight,
    next_period,
    proration,
)
from billing.services import audit, credit_notes, documents, mail, outbox, wallets
from billing.services import coupons as coupon_service
from billing.services.pagination import Page
from billing.services.taxes import (
    apply_invoice_taxes,
    insert_applied_taxes,
    sources_read_once,
)
from billing.services.usage import UsageSummary, usage_for_period, usage_for_periods
from billing.timeutil import now_utc
from extensions import db

log = logging.getLogger(__name__)

#: subscriptions claimed and committed together by the close, by database: PostgreSQL locks
#: rows, so a large batch only makes its own customers wait a moment and saves statements (each
#: batch's COPY and look-ups cost the same whatever its size); SQLite has one writer, whose write
#: transactions stay short
CLOSE_BATCH = {"postgresql": 500, "sqlite": 50}
#: invoices one run of the finalize and overdue jobs handles at most (the next run takes more)
JOB_BATCH = 500
_INSTANT = timedelta(microseconds=1)

ACTIVE = SubscriptionStatus.ACTIVE
PENDING = SubscriptionStatus.PENDING
DRAFT = InvoiceStatus.DRAFT
FINALIZED = InvoiceStatus.FINALIZED
VOIDED = InvoiceStatus.VOIDED
CLOSED = InvoiceStatus.CLOSED


@dataclass
class CloseReport:
    """What a close run did."""

    #: subscriptions looked at (their next invoice time had passed)
    subscriptions: int = 0
    #: invoices created
    invoices: int = 0
    #: periods another process (or an earlier run) had invoiced already
    already_invoiced: int = 0
    #: lago ids of the subscriptions whose close failed (logged; the next run retries them)
    failed: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Periods


def _timezone(subscription: Subscription) -> str:
    return subscription.customer.applicable_timezone


def _clipped(subscription: Subscription, period: Period) -> Period:
    """`period` starting no earlier than the local day the subscription started (an upgraded
    anniversary subscription starts inside a period anchored earlier)."""
    tz = _timezone(subscription)
    started_at = subscription.started_at or subscription.subscription_at
    first_day = local_midnight(local_date(started_at, tz), tz)
    return Period(max(period.start, first_day), period.end) if period.end > first_day else period


def first_period(subscription: Subscription) -> Period:
    started_at = subscription.started_at or subscription.subscription_at
    return _clipped(subscription, subscription.period_at(started_at))


def _period_ending_at(subscription: Subscription, end: datetime) -> Period:
    return _clipped(subscription, subscription.period_at(end - _INSTANT))


def _following(subscription: Subscription, period: Period) -> Period:
    return next_period(
        period,
        interval=subscription.plan.interval,
        billing_time=subscription.billing_time,
        started_at=subscription.anchor,
        timezone=_timezone(subscription),
    )


def base_fee_share(subscription: Subscription, period: Period) -> Decimal:
    """The share of the plan's amount billed for `period`: its days over the days of the full
    period it belongs to (Lago's proration by days), without the trial's days."""
    tz = _timezone(subscription)
    plan = subscription.plan
    full = full_period_of(
        period,
        interval=plan.interval,
        billing_time=subscription.billing_time,
        started_at=subscription.anchor,
        timezone=tz,
    )
    billable = period
    if plan.trial_period and subscription.started_at is not None:
        trial_end = subscription.started_at + timedelta(days=plan.trial_period)
        if trial_end >= period.end:
            return Decimal(0)
        if trial_end > period.start:
            billable = Period(trial_end, period.end)
    return proration(billable, full, timezone=tz)


# ---------------------------------------------------------------------------------------------
# Hooks of the subscriptions service


def start_invoicing(subscription: Subscription) -> Invoice | None:
    """Called when a subscription becomes active: schedule its first close and, for a plan
    paid in advance, bill its first period now (``subscription_starting``). Idempotent."""
    period = first_period(subscription)
    subscription.next_invoice_at = period.end
    if not subscription.plan.pay_in_advance:
        db.session.flush()
        return None
    return _invoice_period(
        subscription, InvoicingReason.SUBSCRIPTION_STARTING, base=period, charges=period
    )


def reschedule_after_timezone_change(subscription_ids: Sequence[int]) -> None:
    """A customer's new zone moves its period boundaries: the open period now ends at the new
    zone's boundary that follows the last billed one, so no period is skipped (the hours
    between the two zones' midnights at that one boundary may count in both invoices)."""
    subscriptions = db.session.scalars(
        select(Subscription).where(
            Subscription.id.in_(subscription_ids),
            Subscription.status == ACTIVE,
            Subscription.next_invoice_at.is_not(None),
        )
    )
    for subscription in subscriptions:
        last_billed = db.session.scalar(
            select(func.max(InvoiceSubscription.charges_to_datetime)).where(
                InvoiceSubscription.subscription_id == subscription.id
            )
        )
        boundary = last_billed or subscription.started_at or subscription.subscription_at
        subscription.next_invoice_at = _clipped(subscription, subscription.period_at(boundary)).end
    db.session.flush()


def invoice_termination(subscription: Subscription) -> Invoice | None:
    """Called when a subscription is terminated: close the periods that ended before, then
    bill the partial last period (``subscription_terminating``) unless its termination
    invoice is skipped, or a periodic close has already billed that whole period."""
    terminated_at = subscription.terminated_at
    if terminated_at is None:
        raise InvariantBroken("expected terminated_at is not None")
    if subscription.started_at is None:
        return None
    if subscription.next_invoice_at is None:
        start_invoicing(subscription)
    _close_subscription(subscription, terminated_at, rotation=None, report=CloseReport())
    subscription.next_invoice_at = None
    db.session.flush()
    if subscription.on_termination_invoice == "skip":
        return None
    period = _period_ending_at(subscription, terminated_at)
    if period.end == terminated_at and _invoiced(
        subscription, InvoicingReason.SUBSCRIPTION_PERIODIC, period
    ):
        return None
    last = Period(period.start, terminated_at)
    return _invoice_period(
        subscription, InvoicingReason.SUBSCRIPTION_TERMINATING, base=last, charges=last
    )


def _invoiced(subscription: Subscription, reason: str, charges: Period) -> bool:
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    InvoiceSubscription.subscription_id == subscription.id,
                    InvoiceSubscription.invoicing_reason == reason,
                    InvoiceSubscription.charges_from_datetime == charges.start,
                    InvoiceSubscription.charges_to_datetime == charges.end,
                )
            )
        )
    )


# ---------------------------------------------------------------------------------------------
# Period close


def _due_query(at: datetime, organization_id: int | None = None) -> Select[Any]:
    query = select(Subscription.id).where(
        Subscription.status == ACTIVE,
        or_(Subscription.next_invoice_at <= at, Subscription.next_invoice_at.is_(None)),
    )
    if organization_id is not None:
        query = query.where(Subscription.organization_id == organization_id)
    return query


def periods_due(at: datetime | None = None) -> bool:
    """Whether any subscription has a period to close (a cheap read for the job)."""
    at = at or now_utc()
    return bool(db.session.scalar(select(exists(_due_query(at).subquery()))))


def count_due(at: datetime | None = None, organization_id: int | None = None) -> int:
    """How many subscriptions have a period to close (the CLI's progress bar)."""
    query = _due_query(at or now_utc(), organization_id)
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def close_periods(
    at: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    organization_id: int | None = None,
) -> CloseReport:
    """Invoice every period that has ended at `at` (default now) and has no invoice yet (of
    one organization's subscriptions only, with `organization_id`).

    Unlike other services this one commits, once per batch of subscriptions: a run is a job
    (or a command) of its own, and a crash must keep what the batches before it did.
    `progress(n)` is told after each batch how many subscriptions it handled.
    """
    at = at or now_utc()
    ids = list(db.session.scalars(_due_query(at, organization_id).order_by(Subscription.id)))
    db.session.commit()
    report = CloseReport()
    for batch in _batches(ids, CLOSE_BATCH[db.session.get_bind().dialect.name]):
        rotations = _downgrade_rotations(batch)
        subscriptions = _claim(batch, at)
        batch_report = CloseReport()
        try:
            with db.session.begin_nested():
                _close_batch(subscriptions, at, rotations, batch_report)
        except Exception:
            # find the culprit: the batch again, one subscription (and savepoint) at a time
            log.exception("period close of a batch failed; retrying its subscriptions one by one")
            batch_report = CloseReport()
            for subscription in subscriptions:
                try:
                    with db.session.begin_nested():
                        _close_batch([subscription], at, rotations, batch_report)
                except Exception:
                    log.exception(
                        "period close of subscription %r failed", str(subscription.lago_id)
                    )
                    batch_report.failed.append(str(subscription.lago_id))
        batch_report.subscriptions = len(subscriptions)
        report.subscriptions += batch_report.subscriptions
        report.invoices += batch_report.invoices
        report.already_invoiced += batch_report.already_invoiced
        report.failed.extend(batch_report.failed)
        db.session.commit()
        if progress is not None:
            progress(len(batch))
    return report


def _batches(ids: list[int], size: int) -> Iterator[list[int]]:
    iterator = iter(ids)
    while batch := list(islice(iterator, size)):
        yield batch


def _claim(ids: list[int], at: datetime) -> list[Subscription]:
    """The still-due subscriptions among `ids`, locked; rows another process holds are skipped
    (PostgreSQL), and a subscription closed meanwhile is no longer due."""
    query = (
        select(Subscription)
        .where(
            Subscription.id.in_(ids),
            Subscription.status == ACTIVE,
            or_(Subscription.next_invoice_at <= at, Subscription.next_invoice_at.is_(None)),
        )
        .order_by(Subscription.id)
        .options(
            joinedload(Subscription.customer, innerjoin=True).options(
                joinedload(Customer.organization, innerjoin=True),
                # the customer's metadata and links, for the invoice's embedded customer
                selectinload(Customer.metadata_items),
                selectinload(Customer.integration_customers),
                selectinload(Customer.taxes),
            ),
            joinedload(Subscription.plan, innerjoin=True)
            .selectinload(Plan.charges)
            .options(selectinload(Charge.billable_metric), selectinload(Charge.filters)),
        )
    )
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Subscription)
    return list(db.session.scalars(query).unique())


def _downgrade_rotations(ids: list[int]) -> dict[int, datetime]:
    """subscription id → when its pending downgrade replaces it (one query for a batch)."""
    rows = db.session.execute(
        select(Subscription.previous_subscription_id, Subscription.created_at).where(
            Subscription.previous_subscription_id.in_(ids), Subscription.status == PENDING
        )
    ).all()
    rotations: dict[int, datetime] = {}
    for previous_id, asked_at in rows:
        if previous_id is None:
            continue
        current = db.session.get_one(Subscription, previous_id)
        rotations[previous_id] = current.period_at(asked_at).end
    return rotations


@dataclass(frozen=True)
class _Billing:
    """One period of a subscription to invoice: the base fee's period and the usage's."""

    subscription: Subscription
    reason: str
    base: Period
    charges: Period


def _periods_to_close(
    subscription: Subscription, at: datetime, rotation: datetime | None
) -> tuple[list[_Billing], Period]:
    """The subscription's periods that ended at `at`, oldest first (up to its termination, end
    or downgrade), and the first period left open."""
    if subscription.next_invoice_at is None:
        start_invoicing(subscription)
    if subscription.next_invoice_at is None:
        raise InvariantBroken("expected subscription.next_invoice_at is not None")
    period = _period_ending_at(subscription, subscription.next_invoice_at)
    ends = [
        moment
        for moment in (subscription.terminated_at, subscription.ending_at, rotation)
        if moment is not None
    ]
    billings = []
    while period.end <= at and not any(moment <= period.end for moment in ends):
        following = _following(subscription, period)
        base = following if subscription.plan.pay_in_advance else period
        billings.append(_Billing(subscription, InvoicingReason.SUBSCRIPTION_PERIODIC, base, period))
        period = following
    return billings, period


def _close_batch(
    subscriptions: Sequence[Subscription],
    at: datetime,
    rotations: dict[int, datetime],
    report: CloseReport,
) -> None:
    """Invoice the periods of `subscriptions` that ended at `at` (all of them together: one
    usage read, one insert per table) and move each one's `next_invoice_at` to the end of its
    first period left open."""
    billings: list[_Billing] = []
    open_periods = []
    for subscription in subscriptions:
        due, open_period = _periods_to_close(subscription, at, rotations.get(subscription.id))
        billings.extend(due)
        open_periods.append((subscription, open_period))
    for invoice in _invoice_periods(billings):
        if invoice is None:
            report.already_invoiced += 1
        else:
            report.invoices += 1
    for subscription, open_period in open_periods:
        if subscription.status == ACTIVE:
            subscription.next_invoice_at = open_period.end


def _close_subscription(
    subscription: Subscription,
    at: datetime,
    *,
    rotation: datetime | None,
    report: CloseReport,
) -> None:
    """Invoice the subscription's periods that ended at `at`, oldest first, and move its
    `next_invoice_at` to the end of the first period left open."""
    rotations = {subscription.id: rotation} if rotation is not None else {}
    _close_batch([subscription], at, rotations, report)


# ---------------------------------------------------------------------------------------------
# Building an invoice


def _grace_period(customer: Customer) -> int:
    if customer.invoice_grace_period is not None:
        return customer.invoice_grace_period
    return customer.organization.invoice_grace_period


def _net_payment_term(customer: Customer) -> int:
    if customer.net_payment_term is not None:
        return customer.net_payment_term
    return customer.organization.net_payment_term


def _invoice_period(
    subscription: Subscription, reason: str, *, base: Period, charges: Period
) -> Invoice | None:
    """A new invoice for one period of the subscription, or None when that period has one
    already (see `_invoice_periods`)."""
    [created] = _invoice_periods([_Billing(subscription, reason, base, charges)])
    return None if created is None else db.session.get_one(Invoice, created.id)


_INVOICES: Table = Invoice.__table__  # type: ignore[assignment]
_LINKS: Table = InvoiceSubscription.__table__  # type: ignore[assignment]
_FEES: Table = Fee.__table__  # type: ignore[assignment]
_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
#: what finalization changes on an invoice (credit notes and prepaid credits are applied then)
_FINALIZED_COLUMNS = (
    "credit_notes_amount_cents",
    "prepaid_credit_amount_cents",
    "total_amount_cents",
    "sequential_id",
    "number",
    "status",
    "payment_status",
    "issuing_date",
    "payment_due_date",
    "grace_period_ends_at",
    "finalized_at",
    "updated_at",
)
#: built once: a new invoice finalized (executed with one parameter set per invoice)
_FINALIZE_NEW = (
    update(_INVOICES)
    .where(_INVOICES.c.id == bindparam("invoice_id"))
    .values({name: bindparam(f"new_{name}") for name in _FINALIZED_COLUMNS})
)


def _invoice_periods(billings: Sequence[_Billing]) -> list[Any]:
    """A new invoice for each billing period, or None for a period that has one already.

    Exactly once: each invoice is inserted with its InvoiceSubscription row, whose unique key
    (subscription, reason, period bounds) refuses a second invoice of the same period; the
    rows go in together with ON CONFLICT DO NOTHING and the invoices whose row was refused are
    deleted before anything else is written for them. (On PostgreSQL a row another transaction
    is inserting makes this wait for that transaction's outcome, like a unique index does.)

    The invoices are built in memory (usage read for all the periods in one query), inserted
    with one statement per table, numbered under each customer's row lock once known to be
    new, and returned as `_NewInvoice` objects (not in the session) with what the webhook
    payloads show.
    """
    if not billings:
        return []
    usages = iter(
        usage_for_periods(
            [
                (billing.subscription, billing.charges)
                for billing in billings
                if billing.reason != InvoicingReason.SUBSCRIPTION_STARTING
            ]
        )
    )
    customers = [billing.subscription.customer for billing in billings]
    ledger = coupon_service.ledger_for_new_invoices(
        customers, {customer.id for customer in customers if _grace_period(customer) == 0}
    )
    invoices = []
    with sources_read_once(billing.subscription for billing in billings):
        for billing in billings:
            reason = billing.reason
            usage = None if reason == InvoicingReason.SUBSCRIPTION_STARTING else next(usages)
            invoices.append(_new_invoice(billing, usage, ledger))
    credit_notes.apply_expected_credit(invoices)
    connection = db.session.connection()
    _insert_with_ids(_INVOICES, invoices)
    links = [link for invoice in invoices for link in invoice.invoice_subscriptions]
    for link in links:
        link.invoice_id = link.invoice.id
    new_ids = set(
        connection.scalars(
            _insert_unless_present(_LINKS).returning(_LINKS.c.invoice_id),
            [_row(link, _LINKS) for link in links],
        )
    )
    refused = [invoice.id for invoice in invoices if invoice.id not in new_ids]
    if refused:  # billed already
        connection.execute(delete(_INVOICES).where(_INVOICES.c.id.in_(refused)))
    created = [invoice for invoice in invoices if invoice.id in new_ids]
    fees = [fee for invoice in created for fee in invoice.fees]
    for fee in fees:
        fee.invoice_id = fee.invoice.id
    if fees:
        _insert_with_ids(_FEES, fees)
    insert_applied_taxes(created)
    at_once = [invoice for invoice in created if _grace_period(invoice.customer) == 0]
    coupon_service.record_new_credits(created, {invoice.id for invoice in at_once})
    _finalize_new(at_once)
    for invoice in created:
        if invoice.status == DRAFT:
            _record(invoice, "invoice.drafted", audit.SYSTEM)
            outbox.emit(invoice.organization_id, "invoice.drafted", "invoice", _payload(invoice))
        elif invoice.status == CLOSED:
            _record(invoice, "invoice.closed", audit.SYSTEM)
        else:
            _record(invoice, "invoice.finalized", audit.SYSTEM)
            outbox.emit(invoice.organization_id, "invoice.created", "invoice", _payload(invoice))
    mail.queue_invoice_emails(at_once)  # one statement for the lot; sent by the jobs process
    return [invoice if invoice.id in new_ids else None for invoice in invoices]


class _NewInvoice(SimpleNamespace):
    """An invoice being created, in memory: its model's attributes on a plain object (no
    attribute instrumentation, no session), inserted through Core and serialized as is."""

    total_due_amount_cents = Invoice.total_due_amount_cents
    transition = Invoice.transition


def _new(cls: type[SimpleNamespace], table: Table, **values: Any) -> Any:
    """A plain `cls` object with every column of `table` (scalar defaults, else None) and
    `values`."""
    return cls(**(_blank_row(table) | values))


@cache
def _blank_row(table: Table) -> dict[str, Any]:
    blank: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        scalar = default is not None and default.is_scalar
        blank[column.key] = default.arg if scalar else None  # type: ignore[union-attr]
    return blank


def _new_invoice(
    billing: _Billing, usage: UsageSummary | None, ledger: coupon_service.CouponLedger
) -> Any:
    """The draft invoice (a `_NewInvoice`) of one billing period with its billing period, its
    fees, its coupons (from `ledger`) and its totals, in memory only."""
    now = now_utc()  # each its own instant, as the lists order invoices by creation
    subscription = billing.subscription
    customer = subscription.customer
    tz = customer.applicable_timezone
    today = local_date(now, tz)
    term = _net_payment_term(customer)
    invoice = _new(
        _NewInvoice,
        _INVOICES,
        lago_id=new_lago_id(),
        organization_id=customer.organization_id,
        customer_id=customer.id,
        customer=customer,
        number=f"{customer.slug}-DRAFT",
        invoice_type="subscription",
        status=DRAFT,
        payment_status=PaymentStatus.PENDING,
        issuing_date=today,
        payment_due_date=today + timedelta(days=term),
        net_payment_term=term,
        grace_period_ends_at=local_midnight(today + timedelta(days=_grace_period(customer)), tz),
        currency=subscription.plan.amount_currency,
        created_at=now,
        updated_at=now,
        metadata_items=[],
    )
    link = _new(
        SimpleNamespace,
        _LINKS,
        invoice=invoice,
        subscription_id=subscription.id,
        subscription=subscription,
        invoicing_reason=billing.reason,
        from_datetime=billing.base.start,
        to_datetime=billing.base.end,
        charges_from_datetime=billing.charges.start,
        charges_to_datetime=billing.charges.end,
        created_at=now,
    )
    invoice.invoice_subscriptions = [link]

    def new_fee(**values: Any) -> Any:
        values = {"charge": None, "charge_filter": None} | values
        charge, charge_filter = values["charge"], values["charge_filter"]
        return _new(
            SimpleNamespace,
            _FEES,
            lago_id=new_lago_id(),
            invoice=invoice,
            subscription_id=subscription.id,
            charge_id=charge.id if charge else None,
            charge_filter_id=charge_filter.id if charge_filter else None,
            created_at=now,
            **values,
        )

    invoice.fees = _fees(link, usage, new_fee)
    ledger.discount(invoice, finalizing=_grace_period(customer) == 0)
    _totals(invoice)
    return invoice


@cache
def _inserted_columns(table: Table) -> tuple[str, ...]:
    return tuple(column.key for column in table.columns if column.key != "id")


def _row(item: Any, table: Table) -> dict[str, Any]:
    """The column values of a new row held in memory, for a Core insert."""
    return {key: getattr(item, key) for key in _inserted_columns(table)}


def _insert_with_ids(table: Table, items: Sequence[Any]) -> None:
    """Insert new rows held in memory and set each one's `id`.

    PostgreSQL: the ids are drawn from the table's sequence first (one query), then the rows
    are COPied in; an INSERT … RETURNING of many rows would be one huge statement per page
    that psycopg parses each time (a third of a period close's CPU). SQLite: INSERT …
    RETURNING, in parameter order."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        ids = connection.scalars(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            [_row(item, table) for item in items],
        ).all()
        for item, item_id in zip(items, ids, strict=True):
            item.id = item_id
        return
    ids = connection.scalars(
        select(func.nextval(func.pg_get_serial_sequence(table.name, "id"))).select_from(
            func.generate_series(1, len(items))
        )
    ).all()
    columns, processors = _copy_columns(table, connection.dialect)
    names = ", ".join(f'"{name}"' for name in columns)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for item, item_id in zip(items, ids, strict=True):
            item.id = item_id
            copy.write_row(
                [
                    process(getattr(item, name)) if process else getattr(item, name)
                    for name, process in zip(columns, processors, strict=True)
                ]
            )


@cache
def _copy_columns(table: Table, dialect: Any) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The columns a COPY of new rows writes (the id included) and each one's bind processor."""
    columns = tuple(column for column in table.columns)
    return (
        tuple(column.key for column in columns),
        tuple(column.type.bind_processor(dialect) for column in columns),
    )


def _insert_unless_present(table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING of the session's database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def _finalize_new(invoices: Sequence[Any]) -> None:
    """`_finalize`, at their creation, of invoices just inserted: the customers' numbers taken
    in one statement (their row locks, held until the commit, and their counters together;
    on PostgreSQL the rows are locked in id order first, so two closes wait for each other
    and never deadlock), the invoices updated in one. Zero-amount invoices of customers that
    skip them are closed, unnumbered."""
    if not invoices:
        return
    by_customer: dict[int, list[Any]] = {}
    for invoice in invoices:
        if _closes(invoice):
            _issue(invoice, CLOSED, invoice.created_at)
        else:
            by_customer.setdefault(invoice.customer_id, []).append(invoice)
    last_numbers = _take_numbers({customer: len(own) for customer, own in by_customer.items()})
    # under the customers' row locks
    finalized = [invoice for own in by_customer.values() for invoice in own]
    credit_notes.consume_credit(finalized)
    wallets.apply_prepaid_credits(finalized)  # after the credit notes, as Lago
    for customer_id, own in by_customer.items():
        last = last_numbers[customer_id]
        customer = own[0].customer
        set_committed_value(customer, "invoices_sequence", last)
        for sequence, invoice in enumerate(own, start=last - len(own) + 1):
            invoice.sequential_id = sequence
            invoice.number = f"{customer.slug}-{sequence:03d}"
            _issue(invoice, FINALIZED, invoice.created_at)
    db.session.connection().execute(
        _FINALIZE_NEW,
        [
            {"invoice_id": invoice.id}
            | {f"new_{name}": getattr(invoice, name) for name in _FINALIZED_COLUMNS}
            for invoice in invoices
        ],
    )


def _take_numbers(counts: dict[int, int]) -> dict[int, int]:
    """Take `counts[customer id]` invoice numbers of each customer in one statement; each
    customer's last number taken (none: nothing to take)."""
    if not counts:
        return {}
    connection = db.session.connection()
    customer_ids = sorted(counts)
    if connection.dialect.name == "postgresql":
        connection.execute(
            select(_CUSTOMERS.c.id)
            .where(_CUSTOMERS.c.id.in_(customer_ids))
            .order_by(_CUSTOMERS.c.id)
            .with_for_update()
        )
    return dict(
        connection.execute(
            update(_CUSTOMERS)
            .where(_CUSTOMERS.c.id.in_(customer_ids))
            .values(
                invoices_sequence=_CUSTOMERS.c.invoices_sequence
                + case(counts, value=_CUSTOMERS.c.id)
            )
            .returning(_CUSTOMERS.c.id, _CUSTOMERS.c.invoices_sequence)
        ).all()
    )


def finalizes_zero_amount(customer: Customer) -> bool:
    """Whether the customer's zero-amount invoices are finalized (else closed): its own
    `finalize_zero_amount_invoice`, or the organization's when it inherits."""
    if customer.finalize_zero_amount_invoice == "inherit":
        return customer.organization.finalize_zero_amount_invoice
    return customer.finalize_zero_amount_invoice == "finalize"


def _closes(invoice: Any) -> bool:
    """A zero-amount invoice of a customer that skips them: closed, not finalized (Lago)."""
    # the amount before credit notes: an invoice that consumes credit is finalized, so the
    # credit is spent
    owed = invoice.total_amount_cents + invoice.credit_notes_amount_cents
    return owed == 0 and not finalizes_zero_amount(invoice.customer)


def _issue(invoice: Any, status: InvoiceStatus, at: datetime) -> None:
    """The dates and status of an invoice leaving draft at `at` (finalized, or closed)."""
    invoice.issuing_date = local_date(at, invoice.customer.applicable_timezone)
    invoice.payment_due_date = invoice.issuing_date + timedelta(days=invoice.net_payment_term)
    invoice.grace_period_ends_at = None
    if invoice.total_amount_cents == 0:
        invoice.payment_status = PaymentStatus.SUCCEEDED
    invoice.transition(status, at)


def _compute(invoice: Invoice) -> None:
    """(Re)build the fees of the invoice from its billing periods, and its totals."""
    if invoice.fees:
        invoice.fees.clear()
        db.session.flush()
    for link in invoice.invoice_subscriptions:
        invoice.fees.extend(_fees(link))
    coupon_service.apply_to_invoice(invoice, finalizing=False)
    _totals(invoice)
    credit_notes.apply_expected_credit([invoice])


def _fees(
    link: InvoiceSubscription,
    usage: UsageSummary | None = None,
    make: Callable[..., Any] = Fee,
) -> list[Fee]:
    """The fees of one billing period; `usage` is the period's, when read already; `make`
    builds each fee from its attributes."""
    subscription = link.subscription
    plan = subscription.plan
    currency = plan.amount_currency
    reason = link.invoicing_reason
    fees = []
    bills_base_fee = reason != InvoicingReason.SUBSCRIPTION_TERMINATING or not plan.pay_in_advance
    if bills_base_fee:
        base = Period(link.from_datetime, link.to_datetime)
        precise = from_minor_units(plan.amount_cents, currency) * base_fee_share(subscription, base)
        fees.append(
            make(
                subscription=subscription,
                fee_type=FeeType.SUBSCRIPTION,
                amount_cents=to_minor_units(precise, currency),
                precise_amount=precise,
                currency=currency,
                units=Decimal(1),
                total_aggregated_units=Decimal(1),
                precise_unit_amount=from_minor_units(plan.amount_cents, currency),
                invoice_display_name=plan.invoice_display_name or plan.name,
                from_datetime=base.start,
                to_datetime=base.end,
                pay_in_advance=plan.pay_in_advance,
            )
        )
    if reason == InvoicingReason.SUBSCRIPTION_STARTING:
        return fees
    charges = Period(link.charges_from_datetime, link.charges_to_datetime)
    if usage is None:
        usage = usage_for_period(subscription, charges)
    for charge_usage in usage.charges:
        charge = charge_usage.charge
        if charge.pay_in_advance or not charge.invoiceable:
            # Not invoiceable: never billed. In advance: not built, so plans.py refuses such
            # charges; only rows stored before that refusal can still be in advance.
            continue
        items: Iterable[Any] = charge_usage.filters or [charge_usage]
        for item in items:
            charge_filter = getattr(item, "charge_filter", None)
            precise = from_minor_units(item.amount_cents, currency)
            fees.append(
                make(
                    subscription=subscription,
                    charge=charge,
                    charge_filter=charge_filter,
                    fee_type=FeeType.CHARGE,
                    amount_cents=item.amount_cents,
                    precise_amount=precise,
                    currency=currency,
                    units=item.units,
                    total_aggregated_units=item.total_aggregated_units,
                    events_count=item.events_count,
                    precise_unit_amount=precise / item.units if item.units else Decimal(0),
                    invoice_display_name=(
                        (charge_filter.invoice_display_name if charge_filter else None)
                        or charge.invoice_display_name
                        or charge_usage.billable_metric.name
                    ),
                    from_datetime=charges.start,
                    to_datetime=charges.end,
                    pay_in_advance=False,
                )
            )
    return fees


def _totals(invoice: Invoice) -> None:
    """Lago's amount relations (§10.1) from the fees and the coupons (set before), taxes
    included (services.taxes); the credit notes' and prepaid credits' amounts are what the
    invoice has of them so far (services.credit_notes and services.wallets set them after,
    keeping the relations)."""
    invoice.fees_amount_cents = sum(fee.amount_cents for fee in invoice.fees)
    invoice.sub_total_excluding_taxes_amount_cents = (
        invoice.fees_amount_cents
        - invoice.coupons_amount_cents
        - invoice.progressive_billing_credit_amount_cents
    )
    apply_invoice_taxes(invoice)
    invoice.sub_total_including_taxes_amount_cents = (
        invoice.sub_total_excluding_taxes_amount_cents + invoice.taxes_amount_cents
    )
    invoice.total_amount_cents = (
        invoice.sub_total_including_taxes_amount_cents
        - invoice.credit_notes_amount_cents
        - invoice.prepaid_credit_amount_cents
    )


# ---------------------------------------------------------------------------------------------
# Drafts and finalization


def refresh_invoice(invoice: Invoice, actor: audit.Actor = audit.SYSTEM) -> Invoice:
    """Recompute a draft from its periods' current usage (late events count); a no-op on any
    other status, as Lago. The audit entry says who refreshed it and how its total moved."""
    if invoice.status != DRAFT:
        return invoice
    before = invoice.total_amount_cents
    _compute(invoice)
    invoice.updated_at = now_utc()
    db.session.flush()
    _record(
        invoice,
        "invoice.refreshed",
        actor,
        audit.diff(
            {"total_amount_cents": before}, {"total_amount_cents": invoice.total_amount_cents}
        ),
    )
    return invoice


def finalize_invoice(
    invoice: Invoice, actor: audit.Actor = audit.SYSTEM, at: datetime | None = None
) -> Invoice:
    """Recompute a draft and finalize it: numbered, issued today in the customer's timezone,
    due after the net payment term, immutable; a zero-amount one of a customer that skips them
    is closed instead (not numbered, no invoice.created). NotAllowed when it is not a draft."""
    if invoice.status != DRAFT:
        raise NotAllowed("invoice_not_draft")
    _compute(invoice)
    _finalize(invoice, actor, at or now_utc())
    return invoice


def _finalize(
    invoice: Invoice,
    actor: audit.Actor,
    at: datetime,
    *,
    event: str = "invoice.created",
    activity: str = "invoice.finalized",
) -> None:
    """Number and finalize `invoice`; `event` is the outbox event announcing it, `activity`
    its audit entry (a one-off invoice has its own: invoice.one_off_created)."""
    customer = invoice.customer
    if _closes(invoice):
        _issue(invoice, CLOSED, at)
        db.session.flush()
        _record(invoice, "invoice.closed", actor)
        return
    # One statement takes the customer's row lock and the next number: two finalizations wait
    # for each other and never share a number.
    sequence = db.session.execute(
        update(Customer)
        .where(Customer.id == customer.id)
        .values(invoices_sequence=Customer.invoices_sequence + 1)
        .returning(Customer.invoices_sequence),
        execution_options={"synchronize_session": False},
    ).scalar_one()
    set_committed_value(customer, "invoices_sequence", sequence)
    if invoice.invoice_type == "subscription":
        # under that lock: the coupons again, now consumed (as Lago, coupons discount
        # subscription invoices only: not one-off or credit purchases)
        coupon_service.apply_to_invoice(invoice, finalizing=True)
        _totals(invoice)
    if invoice.invoice_type != "credit":
        # under the customer's row lock; a purchase of prepaid credits is paid, not credited
        credit_notes.consume_credit([invoice])
    invoice.sequential_id = sequence
    invoice.number = f"{customer.slug}-{invoice.sequential_id:03d}"
    wallets.apply_prepaid_credits([invoice], at)  # after the credit notes, as Lago
    _issue(invoice, FINALIZED, at)
    db.session.flush()
    _record(invoice, activity, actor)
    outbox.emit(invoice.organization_id, event, "invoice", _payload(invoice))
    mail.queue_invoice_emails([invoice])  # sent later by the jobs process, never blocking this
    credit_notes.credit_terminated_subscriptions(invoice, actor)


def _claim_invoices(query: Select[Any]) -> list[Invoice]:
    """The invoices of `query` (a job's batch), locked; rows another process holds are skipped
    on PostgreSQL (SQLite has one writer)."""
    query = query.limit(JOB_BATCH)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Invoice)
    return list(db.session.scalars(query).all())


def finalize_due_drafts(at: datetime | None = None) -> list[Invoice]:
    """Finalize the drafts whose grace period has ended (rows other processes hold are
    skipped on PostgreSQL)."""
    at = at or now_utc()
    query = (
        select(Invoice)
        .where(Invoice.status == DRAFT, Invoice.grace_period_ends_at <= at)
        .order_by(Invoice.grace_period_ends_at, Invoice.id)
    )
    finalized = []
    for invoice in _claim_invoices(query):
        finalize_invoice(invoice, audit.SYSTEM)
        finalized.append(invoice)
    return finalized


def mark_overdue_invoices(at: datetime | None = None) -> list[Invoice]:
    """Flag the finalized, unpaid invoices whose due date has passed in the customer's
    timezone, announcing each once (invoice.payment_overdue)."""
    at = at or now_utc()
    # Dates east of UTC run up to 14 hours ahead: read candidates by tomorrow's UTC date, then
    # check each against its customer's own today.
    horizon = local_date(at, "UTC") + timedelta(days=1)
    query = (
        select(Invoice)
        .where(
            Invoice.status == FINALIZED,
            Invoice.payment_status == PaymentStatus.PENDING,
            Invoice.payment_overdue.is_(False),
            Invoice.payment_due_date < horizon,
        )
        .order_by(Invoice.payment_due_date, Invoice.id)
    )
    marked = []
    for invoice in _claim_invoices(query):
        if invoice.payment_due_date >= local_date(at, invoice.customer.applicable_timezone):
            continue
        invoice.payment_overdue = True
        invoice.updated_at = at
        db.session.flush()
        outbox.emit(
            invoice.organization_id, "invoice.payment_overdue", "invoice", _payload(invoice)
        )
        marked.append(invoice)
    return marked


def reschedule_drafts(organization: Organization, customer: Customer | None = None) -> int:
    """After a grace period change, move the end of the drafts' grace period: `grace` days
    after each draft's issuing date (its local date of creation), at midnight of its customer's
    zone. Drafts of this customer, or (no customer: the organization's grace period changed)
    of every customer following the organization's. A draft whose new end has passed is
    finalized by the next run of the finalize job. Returns how many drafts moved."""
    query = (
        select(Invoice)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.organization_id == organization.id, Invoice.status == DRAFT)
        .options(joinedload(Invoice.customer))
    )
    if customer is not None:
        query = query.where(Invoice.customer_id == customer.id)
    else:
        query = query.where(Customer.invoice_grace_period.is_(None))
    moved = 0
    for invoice in db.session.scalars(query):
        owner = invoice.customer
        ends_at = local_midnight(
            invoice.issuing_date + timedelta(days=_grace_period(owner)), owner.applicable_timezone
        )
        if invoice.grace_period_ends_at != ends_at:
            invoice.grace_period_ends_at = ends_at
            invoice.updated_at = now_utc()
            moved += 1
    db.session.flush()
    return moved


def count_customer_drafts(customer: Customer) -> int:
    return (
        db.session.scalar(
            select(func.count(Invoice.id)).where(
                Invoice.customer_id == customer.id, Invoice.status == DRAFT
            )
        )
        or 0
    )


def finalize_customer_drafts(customer: Customer, actor: audit.Actor) -> list[Invoice]:
    """Finalize every draft of the customer (what deleting a customer does to them)."""
    drafts = db.session.scalars(
        select(Invoice)
        .where(Invoice.customer_id == customer.id, Invoice.status == DRAFT)
        .order_by(Invoice.id)
    ).all()
    return [finalize_invoice(invoice, actor) for invoice in drafts]


# ---------------------------------------------------------------------------------------------
# Update, void


PAYMENT_STATUSES = tuple(PaymentStatus)


def update_invoice(invoice: Invoice, data: dict[str, Any], actor: audit.Actor) -> Invoice:
    """Change the payment status and/or the metadata of a finalized invoice (Lago's
    Invoices::UpdateService): an invalid status is 422; either change on a draft is 405."""
    if "payment_status" in data and data["payment_status"] not in PAYMENT_STATUSES:
        raise ValidationFailed({"payment_status": ["value_is_invalid"]})
    if invoice.status == DRAFT and "payment_status" in data:
        raise NotAllowed("payment_status_update_on_draft_invoice")
    if invoice.status == DRAFT and data.get("metadata"):
        raise NotAllowed("metadata_on_draft_invoice")
    metadata = _parse_metadata(data["metadata"]) if data.get("metadata") is not None else None
    now = now_utc()
    if "payment_status" in data and data["payment_status"] != invoice.payment_status:
        # under the invoice's row lock, as payments are recorded: what they paid is current
        db.session.flush()
        db.session.refresh(invoice, with_for_update=True)
        before = invoice.payment_status
        due = max(0, invoice.total_amount_cents - invoice.offset_amount_cents)
        if data["payment_status"] == PaymentStatus.SUCCEEDED:
            # Marked paid by hand (Lago's behaviour): nothing is recorded as a payment, the
            # rest of the total counts as paid, so nothing is due any more. What credit notes
            # offset was never paid.
            invoice.total_paid_amount_cents = due
            invoice.payment_overdue = False
        else:
            # Back to pending or failed: what recorded payments brought in still counts; an
            # invoice they pay in full cannot be unpaid by hand (its status follows them).
            recorded = recorded_payments_cents(invoice)
            if due > 0 and recorded >= due:
                raise NotAllowed("invoice_paid_by_payments")
            invoice.total_paid_amount_cents = recorded
        invoice.payment_status = data["payment_status"]
        invoice.updated_at = now
        db.session.flush()
        payment_status_changed(invoice, before, actor)
    if metadata is not None:
        _sync_metadata(invoice, metadata, now)
        invoice.updated_at = now
        db.session.flush()
        _record(invoice, "invoice.updated", actor, {"metadata": [None, metadata]})
    return invoice


def recorded_payments_cents(invoice: Invoice) -> int:
    """What the invoice's payment records brought in (failed ones and refunds excluded)."""
    return int(
        db.session.scalar(
            select(
                func.coalesce(func.sum(Payment.amount_cents - Payment.refunded_amount_cents), 0)
            ).where(
                Payment.invoice_id == invoice.id,
                Payment.status != PaymentRecordStatus.FAILED,
            )
        )
        or 0
    )


def payment_status_changed(invoice: Invoice, before: str, actor: audit.Actor) -> None:
    """What follows any change of an invoice's payment status, whoever made it (an agent or
    the API setting it, a payment recorded, a provider event): the timeline entry, the
    `invoice.payment_status_updated` webhook, a credit invoice's purchase settled (paid) or
    failed, and its PDF printed again."""
    _record(
        invoice,
        "invoice.payment_status_updated",
        actor,
        {"payment_status": [before, invoice.payment_status]},
    )
    outbox.emit(
        invoice.organization_id,
        "invoice.payment_status_updated",
        "invoice",
        _payload(invoice),
    )
    wallets.on_invoice_payment(invoice, actor)
    documents.outdated("invoice", invoice)  # its PDF prints the payment status


def _parse_metadata(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ValidationFailed({"metadata": ["value_is_invalid"]})
    items, errors = [], {}
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            errors["metadata"] = ["value_is_invalid"]
            continue
        key, value = item.get("key"), item.get("value")
        if not isinstance(key, str) or not key.strip():
            errors["key"] = ["value_is_mandatory"]
        elif len(key) > 255:
            errors["key"] = ["value_is_too_long"]
        elif key in seen:
            errors["key"] = ["value_already_exist"]
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value == "":
            errors["value"] = ["value_is_mandatory"]
        elif len(str(value)) > 255:
            errors["value"] = ["value_is_too_long"]
        if isinstance(key, str):
            seen.add(key)
        items.append({"id": item.get("id"), "key": key, "value": str(value)})
    if errors:
        raise ValidationFailed(errors)
    return items


def _sync_metadata(invoice: Invoice, items: list[dict[str, Any]], now: datetime) -> None:
    """Items with the id of an entry update it, others are created, unreferenced entries go."""
    by_id = {str(entry.lago_id): entry for entry in invoice.metadata_items}
    kept = []
    for item in items:
        entry = by_id.get(str(item["id"])) if item["id"] else None
        if entry is None:
            entry = InvoiceMetadata(key=item["key"], value=item["value"], created_at=now)
        else:
            entry.key, entry.value = item["key"], item["value"]
        kept.append(entry)
    for entry in list(invoice.metadata_items):
        if entry not in kept:
            invoice.metadata_items.remove(entry)
    db.session.flush()  # deletions first, so a reused key does not collide
    invoice.metadata_items = kept


def void_invoice(
    invoice: Invoice, actor: audit.Actor, at: datetime | None = None, *, explicit: bool = False
) -> Invoice:
    """Void a finalized invoice whose payment is pending or failed (Lago's Invoice#voidable?),
    or a paid one when asked `explicit`ly (Lago's void with `generate_credit_note`, see
    credit_notes.void_invoice); a draft, a voided or (otherwise) a paid one is 405
    not_voidable."""
    paid = invoice.payment_status == PaymentStatus.SUCCEEDED
    if invoice.status != FINALIZED or (paid and not explicit):
        raise NotAllowed("not_voidable")
    invoice.transition(VOIDED, at or now_utc())
    db.session.flush()
    credit_notes.recredit(invoice)
    wallets.on_invoice_payment(invoice, actor)  # a voided credit invoice fails its purchase
    documents.outdated("invoice", invoice)  # printed again, marked VOID
    _record(invoice, "invoice.voided", actor)
    outbox.emit(invoice.organization_id, "invoice.voided", "invoice", _payload(invoice))
    return invoice


# ---------------------------------------------------------------------------------------------
# Lookups and lists


def get_invoice(organization: Organization, lago_id: str, *, status: str | None = None) -> Invoice:
    """The organization's invoice with this lago id (and status, if given); NotFound else."""
    try:
        key = uuid.UUID(str(lago_id))
    except ValueError:
        raise NotFound("invoice") from None
    query = select(Invoice).where(
        Invoice.organization_id == organization.id, Invoice.lago_id == key
    )
    if status is not None:
        query = query.where(Invoice.status == status)
    invoice = db.session.scalar(query)
    if invoice is None:
        raise NotFound("invoice")
    return invoice


@dataclass
class InvoiceFilters:
    """Filters of `GET /invoices` (lago-api.md §10); empty lists and None mean "any"."""

    external_customer_id: str | None = None
    #: one customer's invoices (an external id can be reused once its customer is deleted)
    customer_id: int | None = None
    statuses: list[str] = field(default_factory=list)
    payment_statuses: list[str] = field(default_factory=list)
    payment_overdue: bool | None = None
    #: Lago's `partially_paid`: something paid and something still due (or, with False, not)
    partially_paid: bool | None = None
    invoice_type: str | None = None
    currency: str | None = None
    issuing_date_from: date | None = None
    issuing_date_to: date | None = None
    amount_from: int | None = None
    amount_to: int | None = None
    search_term: str | None = None
    #: with `search_term`: invoices of exactly this total match too (the portal's amount search)
    search_amount_cents: int | None = None
    #: `metadata[key]=value`, every pair must match (an empty value: the key is absent)
    metadata: dict[str, str] = field(default_factory=dict)
    #: Ledgerline has no payment disputes, self-billing nor purchase order numbers: True and a
    #: number match no invoice, False matches every one
    payment_dispute_lost: bool | None = None
    self_billed: bool | None = None
    purchase_order_number: str | None = None
    #: SETTLEMENTS: invoices settled (in part) by a payment or a credit note's offset
    settlements: list[str] = field(default_factory=list)


#: Lago's invoice settlement types: a recorded payment, or a credit note offset on the invoice
SETTLEMENTS = ("payment", "credit_note")


def list_invoices(
    organization: Organization, filters: InvoiceFilters, *, page: int = 1, per_page: int = 100
) -> Page[Invoice]:
    """One page of the organization's invoices, newest first, with the total count."""
    conditions: list[Any] = [Invoice.organization_id == organization.id]
    if filters.customer_id is not None:
        conditions.append(Invoice.customer_id == filters.customer_id)
    if filters.external_customer_id is not None:
        conditions.append(
            Invoice.customer_id.in_(
                Customer.ids_with_external_id(organization.id, filters.external_customer_id)
            )
        )
    if filters.statuses:
        conditions.append(Invoice.status.in_(filters.statuses))
    if filters.payment_statuses:
        conditions.append(Invoice.payment_status.in_(filters.payment_statuses))
    if filters.payment_overdue is not None:
        conditions.append(Invoice.payment_overdue.is_(filters.payment_overdue))
    if filters.partially_paid is not None:
        partial = and_(
            Invoice.total_paid_amount_cents > 0,
            Invoice.total_amount_cents
            - Invoice.total_paid_amount_cents
            - Invoice.offset_amount_cents
            > 0,
        )
        conditions.append(partial if filters.partially_paid else not_(partial))
    if filters.invoice_type is not None:
        conditions.append(Invoice.invoice_type == filters.invoice_type)
    if filters.currency is not None:
        conditions.append(Invoice.currency == filters.currency)
    if filters.issuing_date_from is not None:
        conditions.append(Invoice.issuing_date >= filters.issuing_date_from)
    if filters.issuing_date_to is not None:
        conditions.append(Invoice.issuing_date <= filters.issuing_date_to)
    if filters.amount_from is not None:
        conditions.append(Invoice.total_amount_cents >= filters.amount_from)
    if filters.amount_to is not None:
        conditions.append(Invoice.total_amount_cents <= filters.amount_to)
    if filters.payment_dispute_lost or filters.self_billed or filters.purchase_order_number:
        conditions.append(false())
    if filters.settlements:
        settled = {
            "payment": exists().where(
                Payment.invoice_id == Invoice.id, Payment.status != PaymentRecordStatus.FAILED
            ),
            "credit_note": Invoice.offset_amount_cents > 0,
        }
        conditions.append(or_(*(settled[kind] for kind in filters.settlements)))
    for key, value in filters.metadata.items():
        # a probe of (invoice_id, key)'s unique index per invoice of the organization
        held = exists().where(InvoiceMetadata.invoice_id == Invoice.id, InvoiceMetadata.key == key)
        conditions.append(~held if value == "" else held.where(InvoiceMetadata.value == value))
    if filters.search_term:
        pattern = f"%{filters.search_term.lower()}%"
        conditions.append(
            or_(
                func.lower(Invoice.number).like(pattern),
                (
                    Invoice.total_amount_cents == filters.search_amount_cents
                    if filters.search_amount_cents is not None
                    else false()
                ),
                Invoice.customer_id.in_(
                    select(Customer.id).where(
                        Customer.organization_id == organization.id,
                        or_(
                            func.lower(Customer.name).like(pattern),
                            func.lower(Customer.external_id).like(pattern),
                            func.lower(Customer.email).like(pattern),
                        ),
                    )
                ),
            )
        )
    total = db.session.scalar(select(func.count(Invoice.id)).where(*conditions)) or 0
    offset = (page - 1) * per_page
    if offset >= total:
        return Page([], total, page, per_page)
    items = db.session.scalars(
        select(Invoice)
        .where(*conditions)
        .order_by(Invoice.created_at.desc(), Invoice.id.asc())
        .offset(offset)
        .limit(per_page)
        .options(
            joinedload(Invoice.customer).selectinload(Customer.taxes),
            selectinload(Invoice.metadata_items),
            selectinload(Invoice.applied_taxes),
        )
    )
    return Page(list(items), total, page, per_page)


def customer_invoice_periods(
    customer: Customer, external_subscription_id: str
) -> list[InvoiceSubscription]:
    """The customer's invoiced periods of that subscription id that billed usage (not voided),
    newest first: what past usage lists."""
    return list(
        db.session.scalars(
            select(InvoiceSubscription)
            .join(Invoice, Invoice.id == InvoiceSubscription.invoice_id)
            .join(Subscription, Subscription.id == InvoiceSubscription.subscription_id)
            .where(
                Invoice.customer_id == customer.id,
                Invoice.status != VOIDED,
                Subscription.external_id == external_subscription_id,
                InvoiceSubscription.invoicing_reason != InvoicingReason.SUBSCRIPTION_STARTING,
            )
            .order_by(
                InvoiceSubscription.charges_from_datetime.desc(), InvoiceSubscription.id.desc()
            )
        )
    )


# ---------------------------------------------------------------------------------------------
# Audit and outbox


def _payload(invoice: Invoice) -> dict[str, Any]:
    from billing.serializers_invoices import serialize_invoice  # noqa: PLC0415

    return serialize_invoice(invoice, include_fees=True)


def _record(
    invoice: Invoice,
    activity_type: str,
    actor: audit.Actor,
    changes: dict[str, Any] | None = None,
) -> None:
    """An entry on the customer's timeline; the label is the invoice number."""
    audit.record_activity(
        organization_id=invoice.organization_id,
        actor=actor,
        activity_type=activity_type,
        resource_type="invoice",
        resource_id=str(invoice.lago_id),
        resource_label=invoice.number,
        changes=changes,
        customer_id=invoice.customer_id,
    )
