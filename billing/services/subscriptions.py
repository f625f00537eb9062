"""Subscriptions: a customer on a plan (lago-api.md §8).

Creation (an unknown customer is created on the way, as Lago does), plan changes (an upgrade
applies at once, a downgrade waits for the end of the current period), updates, termination and
cancellation, lookups and lists, and the time-driven moves the jobs process runs: pending →
active at the start date, downgrades at the period end, terminations at `ending_at`.

Every status change goes through `Subscription.transition`; the partial unique index allows one
active subscription per (organization, external id); creations are serialized per organization by
a row lock, and the jobs lock the rows they move (SKIP LOCKED on PostgreSQL; SQLite has one writer).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.exc import IntegrityError

from billing.errors import Conflict, InvariantBroken, NotFound, ValidationFailed
from billing.models import (
    BillingTime,
    Customer,
    Organization,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from billing.periods import local_date
from billing.serializers_subscriptions import current_period, downgrade_at, serialize_subscription
from billing.services import audit, credit_notes, invoicing, outbox
from billing.services.customers import find_customer, upsert_customer
from billing.services.organizations import lock_organization
from billing.services.pagination import Page
from billing.timeutil import as_utc, now_utc
from extensions import db

log = logging.getLogger(__name__)

#: periods per year, to compare plans of different intervals (Lago's Plan#yearly_amount_cents)
PERIODS_PER_YEAR = {"weekly": 52, "monthly": 12, "quarterly": 4, "semiannual": 2, "yearly": 1}
ON_TERMINATION_INVOICES = ("generate", "skip")
ON_TERMINATION_CREDIT_NOTES = ("credit", "refund", "skip")
#: how many subscriptions one job run moves at most (the next run takes the rest)
JOB_BATCH = 500

PENDING = SubscriptionStatus.PENDING
ACTIVE = SubscriptionStatus.ACTIVE
TERMINATED = SubscriptionStatus.TERMINATED
CANCELED = SubscriptionStatus.CANCELED

_MISSING = object()


# ---------------------------------------------------------------------------------------------
# Input


@dataclass
class SubscriptionInput:
    """The parsed fields of a create or update payload; only keys present are set."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, key: str, code: str) -> None:
        self.errors.setdefault(key, []).append(code)


def _text(payload: dict[str, Any], key: str, result: SubscriptionInput, *, required: bool) -> None:
    raw = payload.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            result.error(key, "value_is_mandatory")
        elif key in payload:
            result.values[key] = None
        return
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        result.error(key, "value_is_invalid")
        return
    value = str(raw).strip()
    if len(value) > 255:
        result.error(key, "value_is_too_long")
        return
    result.values[key] = value


def _instant(raw: Any) -> datetime | None | object:
    """An ISO-8601 date or datetime (naive = UTC) as a UTC-aware datetime; None for null;
    _MISSING when unreadable."""
    if raw is None or raw == "":
        return None
    try:
        if isinstance(raw, datetime):
            return as_utc(raw)
        if isinstance(raw, date):
            return as_utc(datetime(raw.year, raw.month, raw.day))
        if not isinstance(raw, str):
            return _MISSING
        return as_utc(datetime.fromisoformat(raw.strip()))
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved to UTC
        return _MISSING


def _choice(
    payload: dict[str, Any], key: str, choices: Iterable[str], code: str, result: SubscriptionInput
) -> None:
    if key not in payload or payload[key] is None:
        return
    if payload[key] not in tuple(choices):
        result.error(key, code)
        return
    result.values[key] = payload[key]


#: how far in the past a subscription may start (backdating a migrated customer)
MAX_BACKDATING = timedelta(days=3650)


def parse_subscription_input(
    payload: dict[str, Any],
    *,
    creating: bool,
    at: datetime,
    subscription_at: datetime | None = None,
) -> SubscriptionInput:
    """Check a Lago-shaped payload; `subscription_at` is the current start when updating."""
    result = SubscriptionInput()
    if creating:
        _text(payload, "external_customer_id", result, required=True)
        _text(payload, "external_id", result, required=True)
        billing_time = payload.get("billing_time")
        if billing_time is None:
            result.values["billing_time"] = BillingTime.CALENDAR.value
        elif billing_time in tuple(BillingTime):
            result.values["billing_time"] = billing_time
        else:
            result.error("billing_time", "value_is_invalid")
    _text(payload, "name", result, required=False)
    if creating or "subscription_at" in payload:
        start = _instant(payload.get("subscription_at"))
        if start is _MISSING:
            result.error("subscription_at", "invalid_date")
        elif start is None:
            if creating:
                result.values["subscription_at"] = at
        elif isinstance(start, datetime) and start < at - MAX_BACKDATING:
            # every period since the start is billed when the subscription ends or the jobs
            # catch up: a start centuries ago meant tens of thousands of invoices in one
            # transaction (minutes holding the database's write lock; found by the fuzzer)
            result.error("subscription_at", "value_is_out_of_range")
        else:
            result.values["subscription_at"] = start
    if "ending_at" in payload:
        ending_at = _instant(payload["ending_at"])
        start = result.values.get("subscription_at", subscription_at)
        # Lago: the end must fall on a later day than today and than the start.
        if ending_at is _MISSING or (
            isinstance(ending_at, datetime)
            and (
                ending_at.date() <= at.date()
                or (isinstance(start, datetime) and ending_at.date() <= start.date())
            )
        ):
            result.error("ending_at", "invalid_date")
        else:
            result.values["ending_at"] = ending_at
    _choice(payload, "on_termination_invoice", ON_TERMINATION_INVOICES, "invalid_value", result)
    _choice(
        payload, "on_termination_credit_note", ON_TERMINATION_CREDIT_NOTES, "invalid_value", result
    )
    return result


# ---------------------------------------------------------------------------------------------
# Lookups


def find_plan(organization: Organization, code: Any) -> Plan | None:
    """The organization's live plan with this code, or None."""
    if not isinstance(code, str) or not code:
        return None
    return db.session.scalar(
        select(Plan).where(
            Plan.organization_id == organization.id, Plan.code == code, Plan.deleted_at.is_(None)
        )
    )


def get_subscription(
    organization: Organization, external_id: str, status: str | None = "active"
) -> Subscription:
    """The organization's subscription with this external id and status (the newest when
    several have it, e.g. terminated ones); NotFound otherwise."""
    subscription = db.session.scalar(
        select(Subscription)
        .where(
            Subscription.organization_id == organization.id,
            Subscription.external_id == external_id,
            Subscription.status == (status or ACTIVE),
        )
        .order_by(Subscription.created_at.desc(), Subscription.id.desc())
        .limit(1)
    )
    if subscription is None:
        raise NotFound("subscription")
    return subscription


@dataclass
class SubscriptionFilters:
    """Filters of `GET /subscriptions`; statuses default to active only, as Lago's."""

    external_customer_id: str | None = None
    plan_code: str | None = None
    statuses: list[str] = field(default_factory=lambda: [ACTIVE.value])
    currency: str | None = None


def list_subscriptions(
    organization: Organization, filters: SubscriptionFilters, *, page: int = 1, per_page: int = 100
) -> Page[Subscription]:
    """One page of the organization's subscriptions, newest first, with the total count."""
    conditions: list[Any] = [
        Subscription.organization_id == organization.id,
        Subscription.status.in_(filters.statuses or [ACTIVE.value]),
    ]
    if filters.external_customer_id is not None:
        conditions.append(
            Subscription.customer_id.in_(
                Customer.ids_with_external_id(organization.id, filters.external_customer_id)
            )
        )
    if filters.plan_code is not None or filters.currency is not None:
        plans = select(Plan.id).where(Plan.organization_id == organization.id)
        if filters.plan_code is not None:
            plans = plans.where(Plan.code == filters.plan_code)
        if filters.currency is not None:
            plans = plans.where(Plan.amount_currency == filters.currency)
        conditions.append(Subscription.plan_id.in_(plans))
    total = db.session.scalar(select(func.count(Subscription.id)).where(*conditions)) or 0
    offset = (page - 1) * per_page
    if offset >= total:
        return Page([], total, page, per_page)
    items = db.session.scalars(
        select(Subscription)
        .where(*conditions)
        .order_by(Subscription.created_at.desc(), Subscription.id.desc())
        .offset(offset)
        .limit(per_page)
    )
    return Page(list(items), total, page, per_page)


def customer_subscriptions(customer: Customer) -> list[Subscription]:
    """The customer's active and pending subscriptions (pending downgrades included), newest
    first: what the console shows as its plans."""
    return list(
        db.session.scalars(
            select(Subscription)
            .where(
                Subscription.customer_id == customer.id,
                Subscription.status.in_([ACTIVE.value, PENDING.value]),
            )
            .order_by(Subscription.created_at.desc(), Subscription.id.desc())
        )
    )


def active_plan_names(customer_ids: Iterable[int]) -> dict[int, list[str]]:
    """customer id → the names of its active subscriptions' plans (one query, for a list page)."""
    plans: dict[int, list[str]] = {}
    rows = db.session.execute(
        select(Subscription.customer_id, Plan.name)
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(Subscription.customer_id.in_(list(customer_ids)), Subscription.status == ACTIVE)
        .order_by(Subscription.customer_id, Plan.name)
    )
    for customer_id, name in rows:
        plans.setdefault(customer_id, []).append(name)
    return plans


def next_subscriptions(subscriptions: Iterable[Subscription]) -> dict[int, Subscription]:
    """subscription id → its pending downgrade, for those that have one (one query)."""
    ids = [s.id for s in subscriptions if s.status == ACTIVE]
    if not ids:
        return {}
    rows = db.session.scalars(
        select(Subscription).where(
            Subscription.previous_subscription_id.in_(ids), Subscription.status == PENDING
        )
    )
    return {row.previous_subscription_id: row for row in rows if row.previous_subscription_id}


def next_billing_date(subscription: Subscription, at: datetime | None = None) -> date | None:
    """The local date (customer's zone) on which the current period ends and the next begins;
    None once terminated or canceled."""
    if subscription.status not in (ACTIVE, PENDING):
        return None
    period = current_period(subscription, at or now_utc())
    if period is None:
        return None
    return local_date(period.end, subscription.customer.applicable_timezone)


def subscription_payload(
    subscription: Subscription, *, include_plan: bool = False, at: datetime | None = None
) -> dict[str, Any]:
    """The subscription as the API shows it, its pending downgrade looked up."""
    return serialize_subscription(
        subscription,
        next_subscription=next_subscriptions([subscription]).get(subscription.id),
        include_plan=include_plan,
        at=at,
    )


# ---------------------------------------------------------------------------------------------
# Create and change plan


def create_subscription(
    organization: Organization,
    data: dict[str, Any],
    actor: audit.Actor,
    *,
    at: datetime | None = None,
) -> Subscription:
    """Subscribe a customer to a plan, or change the plan of its subscription (Lago's
    Subscriptions::CreateService).

    * unknown plan: NotFound("plan"); bad fields: ValidationFailed;
    * unknown `external_customer_id`: the customer is created, in the plan's currency;
    * a new `external_id`: a new subscription, active at once when `subscription_at` has come
      (started_at = subscription_at), pending otherwise;
    * the `external_id` of the customer's subscription with another plan: an upgrade (the new
      plan costs as much or more per year) replaces it now; a downgrade is scheduled for the
      end of the current period and the current subscription is returned;
    * the same `external_id` and plan again: the subscription as it is (safe retries);
    * an `external_id` in use by another customer: Conflict.
    """
    at = at or now_utc()
    plan = find_plan(organization, data.get("plan_code"))
    if plan is None:
        raise NotFound("plan")
    parsed = parse_subscription_input(data, creating=True, at=at)
    if parsed.errors:
        raise ValidationFailed(parsed.errors)
    values = parsed.values
    # One creation at a time per organization: two requests with the same new external id
    # become one creation and one plan change (or a Conflict), never two active rows.
    lock_organization(organization)
    customer = _customer_in_currency(organization, values["external_customer_id"], plan, actor)
    current = _editable_subscription(customer, values["external_id"])
    try:
        if current is None:
            if _external_id_taken(organization, values["external_id"]):
                raise Conflict("external_id")
            return _start(organization, customer, plan, values, actor, at)
        if current.plan_id == plan.id:
            return current  # a retried create: Lago answers with the subscription as it is
        if current.status == PENDING:
            return _change_pending_plan(organization, current, plan, values, actor, at)
        return _change_plan(organization, current, plan, values, data, actor, at)
    except IntegrityError:
        # The unique active index, should two writers get past the organization lock.
        raise Conflict("external_id") from None


def yearly_amount_cents(plan: Plan) -> int:
    """The plan's base amount over a year: how Lago tells an upgrade from a downgrade."""
    return plan.amount_cents * PERIODS_PER_YEAR[plan.interval]


def _customer_in_currency(
    organization: Organization, external_id: str, plan: Plan, actor: audit.Actor
) -> Customer:
    """The live customer (created if unknown, given the plan's currency if it has none);
    ValidationFailed when its currency is another one (Lago: currencies_does_not_match)."""
    customer = find_customer(organization, external_id)
    if customer is None or customer.currency is None:
        customer, _created = upsert_customer(
            organization, {"external_id": external_id, "currency": plan.amount_currency}, actor
        )
    elif customer.currency != plan.amount_currency:
        raise ValidationFailed({"currency": ["currencies_does_not_match"]})
    return customer


def _editable_subscription(customer: Customer, external_id: str) -> Subscription | None:
    """The customer's subscription a POST with this external id changes: its active one, or one
    still waiting for its start date (not a pending downgrade)."""
    return db.session.scalar(
        select(Subscription)
        .where(
            Subscription.customer_id == customer.id,
            Subscription.external_id == external_id,
            or_(
                Subscription.status == ACTIVE,
                (Subscription.status == PENDING) & Subscription.previous_subscription_id.is_(None),
            ),
        )
        .order_by(Subscription.status == PENDING, Subscription.id.desc())
        .limit(1)
    )


def _external_id_taken(organization: Organization, external_id: str) -> bool:
    """Whether another customer's subscription holds the external id (active, or waiting for
    its start date, which would collide on activation)."""
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    Subscription.organization_id == organization.id,
                    Subscription.external_id == external_id,
                    or_(
                        Subscription.status == ACTIVE,
                        (Subscription.status == PENDING)
                        & Subscription.previous_subscription_id.is_(None),
                    ),
                )
            )
        )
    )


def _start(
    organization: Organization,
    customer: Customer,
    plan: Plan,
    values: dict[str, Any],
    actor: audit.Actor,
    at: datetime,
) -> Subscription:
    """A new subscription: active now when its start has come, else pending."""
    subscription = Subscription(
        organization_id=organization.id,
        customer=customer,
        plan=plan,
        external_id=values["external_id"],
        name=values.get("name"),
        billing_time=values["billing_time"],
        subscription_at=values["subscription_at"],
        ending_at=values.get("ending_at"),
        on_termination_invoice=values.get("on_termination_invoice", "generate"),
        on_termination_credit_note=values.get("on_termination_credit_note"),
        status=PENDING,
        created_at=at,
    )
    db.session.add(subscription)
    db.session.flush()
    _record(
        organization,
        subscription,
        "subscription.created",
        actor,
        audit.diff({}, _audited(subscription)),
    )
    if subscription.subscription_at <= at:
        _activate(organization, subscription, subscription.subscription_at, actor)
    return subscription


def _change_pending_plan(
    organization: Organization,
    subscription: Subscription,
    plan: Plan,
    values: dict[str, Any],
    actor: audit.Actor,
    at: datetime,
) -> Subscription:
    """A subscription that has not started yet simply takes the new plan (Lago)."""
    before = _audited(subscription)
    subscription.plan = plan
    if values.get("name"):
        subscription.name = values["name"]
    subscription.updated_at = at
    db.session.flush()
    _changed(organization, subscription, before, actor)
    return subscription


def _successor(
    current: Subscription, plan: Plan, values: dict[str, Any], data: dict[str, Any], at: datetime
) -> Subscription:
    """The subscription that takes over from `current` on another plan (same external id,
    start date and billing time, as Lago's plan change)."""
    return Subscription(
        organization_id=current.organization_id,
        customer=current.customer,
        plan=plan,
        external_id=current.external_id,
        name=values.get("name") or current.name,
        billing_time=current.billing_time,
        subscription_at=current.subscription_at,
        ending_at=values["ending_at"] if "ending_at" in data else current.ending_at,
        on_termination_invoice=current.on_termination_invoice,
        on_termination_credit_note=current.on_termination_credit_note,
        previous_subscription_id=current.id,
        status=PENDING,
        created_at=at,
    )


def _change_plan(
    organization: Organization,
    current: Subscription,
    plan: Plan,
    values: dict[str, Any],
    data: dict[str, Any],
    actor: audit.Actor,
    at: datetime,
) -> Subscription:
    """An upgrade (the new plan costs as much or more per year: Lago's rule) terminates the
    current subscription and starts its successor now; a downgrade schedules the successor for
    the end of the current period and returns the current subscription."""
    upgrade = yearly_amount_cents(plan) >= yearly_amount_cents(current.plan)
    _cancel_pending_downgrade(organization, current, actor, at)
    if upgrade:
        _terminate(organization, current, actor, at, upgrade=True)
    successor = _successor(current, plan, values, data, at)
    db.session.add(successor)
    db.session.flush()
    if not upgrade:
        changes = {"next_plan_code": [None, plan.code]}
        _record(organization, current, "subscription.updated", actor, changes)
        _emit(organization, current, "subscription.updated", next_subscription=successor)
        return current
    changes = {"plan_code": [current.plan.code, plan.code]}
    _record(organization, successor, "subscription.updated", actor, changes)
    _activate(organization, successor, at, actor)
    return successor


def _cancel_pending_downgrade(
    organization: Organization, subscription: Subscription, actor: audit.Actor, at: datetime
) -> None:
    pending = next_subscriptions([subscription]).get(subscription.id)
    if pending is not None:
        pending.transition(CANCELED, at)
        db.session.flush()
        _record(organization, pending, "subscription.canceled", actor)


# ---------------------------------------------------------------------------------------------
# Update, terminate, cancel


def update_subscription(
    organization: Organization,
    subscription: Subscription,
    data: dict[str, Any],
    actor: audit.Actor,
    *,
    at: datetime | None = None,
) -> Subscription:
    """Change `name`, `ending_at`, the termination options, and `subscription_at` of a
    subscription still waiting for its start (a start that has come activates it, as Lago)."""
    at = at or now_utc()
    parsed = parse_subscription_input(
        data, creating=False, at=at, subscription_at=subscription.subscription_at
    )
    if parsed.errors:
        raise ValidationFailed(parsed.errors)
    _lock(subscription)
    before = _audited(subscription)
    values = parsed.values
    for key in ("name", "ending_at", "on_termination_invoice", "on_termination_credit_note"):
        if key in values:
            setattr(subscription, key, values[key])
    starts = (
        "subscription_at" in values
        and subscription.status == PENDING
        and subscription.previous_subscription_id is None
    )
    if starts:
        subscription.subscription_at = values["subscription_at"]
    subscription.updated_at = at
    db.session.flush()
    _changed(organization, subscription, before, actor)
    if starts and subscription.subscription_at <= at:
        _activate(organization, subscription, subscription.subscription_at, actor)
    return subscription


def terminate_subscription(
    organization: Organization,
    subscription: Subscription,
    actor: audit.Actor,
    at: datetime | None = None,
    *,
    on_termination_invoice: str | None = None,
    on_termination_credit_note: str | None = None,
) -> Subscription:
    """End an active subscription now (a pending one is canceled instead); its pending
    downgrade, if any, is canceled with it."""
    at = at or now_utc()
    errors: dict[str, list[str]] = {}
    if on_termination_invoice not in (None, *ON_TERMINATION_INVOICES):
        errors["on_termination_invoice"] = ["invalid_value"]
    if on_termination_credit_note not in (None, *ON_TERMINATION_CREDIT_NOTES):
        errors["on_termination_credit_note"] = ["invalid_value"]
    if errors:
        raise ValidationFailed(errors)
    _lock(subscription)
    if subscription.status == PENDING:
        return cancel_subscription(organization, subscription, actor, at)
    if on_termination_invoice is not None:
        subscription.on_termination_invoice = on_termination_invoice
    if on_termination_credit_note is not None:
        subscription.on_termination_credit_note = on_termination_credit_note
    _cancel_pending_downgrade(organization, subscription, actor, at)
    _terminate(organization, subscription, actor, at)
    return subscription


def cancel_subscription(
    organization: Organization,
    subscription: Subscription,
    actor: audit.Actor,
    at: datetime | None = None,
) -> Subscription:
    """Cancel a subscription that has not started (NotAllowed otherwise)."""
    at = at or now_utc()
    subscription.transition(CANCELED, at)
    db.session.flush()
    _record(organization, subscription, "subscription.canceled", actor)
    _emit(organization, subscription, "subscription.terminated")
    return subscription


def end_customer_subscriptions(
    organization: Organization, customer: Customer, actor: audit.Actor, at: datetime | None = None
) -> None:
    """What deleting a customer does to its subscriptions: active ones are terminated (with
    their pending downgrades), those that have not started are canceled."""
    for subscription in customer_subscriptions(customer):
        _lock(subscription)
        if subscription.status == ACTIVE:
            terminate_subscription(organization, subscription, actor, at)
        elif subscription.status == PENDING and subscription.previous_subscription_id is None:
            cancel_subscription(organization, subscription, actor, at)


def _lock(subscription: Subscription) -> None:
    """Lock the row and read its committed state (a concurrent change may have moved it)."""
    db.session.refresh(subscription, with_for_update=True)


def _activate(
    organization: Organization, subscription: Subscription, started_at: datetime, actor: audit.Actor
) -> None:
    subscription.transition(ACTIVE, started_at)
    db.session.flush()
    db.session.expire(subscription.customer, ["has_active_subscription"])
    _record(organization, subscription, "subscription.started", actor)
    _emit(organization, subscription, "subscription.started")
    invoicing.start_invoicing(subscription)


def _terminate(
    organization: Organization,
    subscription: Subscription,
    actor: audit.Actor,
    at: datetime,
    *,
    upgrade: bool = False,
) -> None:
    subscription.transition(TERMINATED, at)
    db.session.flush()
    db.session.expire(subscription.customer, ["has_active_subscription"])
    _record(organization, subscription, "subscription.terminated", actor)
    _emit(organization, subscription, "subscription.terminated")
    invoicing.invoice_termination(subscription)
    credit_notes.credit_unused_days(subscription, actor, upgrade=upgrade)


# ---------------------------------------------------------------------------------------------
# Time-driven moves (the jobs process; each callable with an explicit `at`)


def subscriptions_due(at: datetime | None = None) -> bool:
    """Whether any subscription waits for a time-driven move (a cheap read for the job)."""
    at = at or now_utc()
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    or_(
                        (Subscription.status == PENDING) & (Subscription.subscription_at <= at),
                        Subscription.previous_subscription_id.is_not(None)
                        & (Subscription.status == PENDING),
                        (Subscription.status == ACTIVE) & (Subscription.ending_at <= at),
                    )
                )
            )
        )
    )


def _claim(query: Select[Any]) -> list[Subscription]:
    """The rows of `query`, locked; rows another process holds are skipped (PostgreSQL)."""
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Subscription)
    return list(db.session.scalars(query.limit(JOB_BATCH)))


def activate_pending_subscriptions(at: datetime | None = None) -> list[Subscription]:
    """Start every subscription whose start date has come (started_at = subscription_at)."""
    at = at or now_utc()
    started = []
    for subscription in _claim(
        select(Subscription)
        .where(
            Subscription.status == PENDING,
            Subscription.previous_subscription_id.is_(None),
            Subscription.subscription_at <= at,
        )
        .order_by(Subscription.subscription_at, Subscription.id)
    ):
        organization = db.session.get_one(Organization, subscription.organization_id)
        if _external_id_active(subscription):
            log.warning(
                "subscription %r cannot start: external id %r is active elsewhere",
                str(subscription.lago_id),
                subscription.external_id,
            )
            continue
        _activate(organization, subscription, subscription.subscription_at, audit.SYSTEM)
        started.append(subscription)
    return started


def apply_downgrades(at: datetime | None = None) -> list[Subscription]:
    """Replace each subscription by its pending downgrade once the period in which the
    downgrade was asked for has ended (both moves at the period's end)."""
    at = at or now_utc()
    started = []
    for successor in _claim(
        select(Subscription)
        .where(Subscription.status == PENDING, Subscription.previous_subscription_id.is_not(None))
        .order_by(Subscription.id)
    ):
        current = successor.previous_subscription
        if current is None:
            raise InvariantBroken("expected current is not None")
        if current.status != ACTIVE:
            continue
        rotation = downgrade_at(current, successor)
        if rotation > at:
            continue
        _lock(current)
        if current.status != ACTIVE:
            continue
        organization = db.session.get_one(Organization, successor.organization_id)
        _terminate(organization, current, audit.SYSTEM, rotation)
        _activate(organization, successor, rotation, audit.SYSTEM)
        started.append(successor)
    return started


def terminate_ended_subscriptions(at: datetime | None = None) -> list[Subscription]:
    """Terminate every active subscription whose `ending_at` has come, at that instant."""
    at = at or now_utc()
    ended = []
    for subscription in _claim(
        select(Subscription)
        .where(Subscription.status == ACTIVE, Subscription.ending_at <= at)
        .order_by(Subscription.ending_at, Subscription.id)
    ):
        organization = db.session.get_one(Organization, subscription.organization_id)
        if subscription.ending_at is None:
            raise InvariantBroken("expected subscription.ending_at is not None")
        _cancel_pending_downgrade(organization, subscription, audit.SYSTEM, subscription.ending_at)
        _terminate(organization, subscription, audit.SYSTEM, subscription.ending_at)
        ended.append(subscription)
    return ended


def _external_id_active(subscription: Subscription) -> bool:
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    Subscription.organization_id == subscription.organization_id,
                    Subscription.external_id == subscription.external_id,
                    Subscription.status == ACTIVE,
                )
            )
        )
    )


# ---------------------------------------------------------------------------------------------
# Audit and outbox


def _audited(subscription: Subscription) -> dict[str, Any]:
    """The fields an audit diff shows."""
    payload = serialize_subscription(subscription)
    keys = (
        "name", "plan_code", "status", "billing_time", "subscription_at", "ending_at",
        "on_termination_invoice", "on_termination_credit_note",
    )  # fmt: skip
    return {key: payload[key] for key in keys}


def _changed(
    organization: Organization,
    subscription: Subscription,
    before: dict[str, Any],
    actor: audit.Actor,
) -> None:
    """Record and announce an update, if anything changed."""
    changes = audit.diff(before, _audited(subscription))
    if not changes:
        return
    _record(organization, subscription, "subscription.updated", actor, changes)
    _emit(organization, subscription, "subscription.updated")


def _record(
    organization: Organization,
    subscription: Subscription,
    activity_type: str,
    actor: audit.Actor,
    changes: dict[str, Any] | None = None,
) -> None:
    """An entry on the customer's timeline; the label is the subscription's external id."""
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type=activity_type,
        resource_type="subscription",
        resource_id=str(subscription.lago_id),
        resource_label=subscription.external_id,
        changes=changes,
        customer_id=subscription.customer_id,
    )


def _emit(
    organization: Organization,
    subscription: Subscription,
    event_type: str,
    *,
    next_subscription: Subscription | None = None,
) -> None:
    """The webhook event with the subscription as Lago's webhooks carry it (plan, customer)."""
    payload = serialize_subscription(
        subscription,
        next_subscription=next_subscription
        or next_subscriptions([subscription]).get(subscription.id),
        include_plan=True,
        include_customer=True,
    )
    outbox.emit(organization.id, event_type, "subscription", payload)
