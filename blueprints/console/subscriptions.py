"""A customer's subscriptions in the console: assign a plan, change it, terminate or cancel;
the current period's usage per charge with a daily chart; and the events debugger.

Everything is shown in the customer's timezone (billing periods are computed in it). The
services decide (upgrade now, downgrade at period end, currency checks); the views parse the
form, call one service, and render or redirect.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from babel.dates import format_skeleton
from babel.numbers import format_decimal
from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from wtforms import BooleanField, DateField, StringField
from wtforms.validators import DataRequired, Length, Optional

from billing.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from billing.ids import generate_external_id
from billing.models import BillableMetric, Customer, Plan, Subscription, SubscriptionStatus
from billing.money import format_money
from billing.periods import Period, local_date, local_days, local_midnight
from billing.serializers_subscriptions import current_period, downgrade_at
from billing.services import subscriptions as subscription_service
from billing.services import usage as usage_service
from billing.services.events import StoredEvent
from billing.timeutil import now_utc
from blueprints.console import bp
from blueprints.console.catalog import INTERVAL_LABELS
from blueprints.console.charts import BarLayout
from blueprints.console.forms import Select
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_organization,
    customer_or_404,
    is_htmx,
    redirect_htmx,
    render_htmx,
    requires,
)
from blueprints.console.messages import field_message
from extensions import db

ACTIVE = SubscriptionStatus.ACTIVE
PENDING = SubscriptionStatus.PENDING
#: ended subscriptions stay on the tab this long (older ones are in the activity log)
RECENTLY_ENDED = timedelta(days=90)
#: at most this many ended subscriptions on the tab
ENDED_LIMIT = 10
#: rows of each list of the events debugger
EVENTS_LIMIT = 25
#: how often the events debugger refreshes itself while live
LIVE_SECONDS = 10

MESSAGES = {
    ("plan_code", "plan_not_found"): "Choose a plan from the list.",
    ("external_id", "value_already_exist"): (
        "Another customer's subscription already uses this external id."
    ),
    ("external_id", "value_is_too_long"): "An external id is at most 255 characters.",
    ("name", "value_is_too_long"): "A name is at most 255 characters.",
    ("billing_time", "value_is_invalid"): "Choose calendar or anniversary.",
    ("subscription_at", "invalid_date"): "Enter a date such as 2026-06-01.",
}
EVENT_ERRORS = {
    "subscription_not_found": (
        "Subscription not found: no subscription with external id “{external_subscription_id}” "
        "was active at the event's time."
    ),
    "billable_metric_not_found": "Metric not found: no billable metric has the code “{code}”.",
    "invalid_field_value": (
        "Invalid field value: the metric needs a number in properties.{field_name}."
    ),
}


def subscription_message(field_name: str, code: str) -> str:
    return MESSAGES.get((field_name, code)) or field_message(field_name, code)


@bp.context_processor
def subscription_helpers() -> dict[str, Any]:
    return {"format_units": format_units, "plan_label": plan_label}


# --- loading ---------------------------------------------------------------------------------


def subscription_or_404(customer: Customer, lago_id: uuid.UUID) -> Subscription:
    """The customer's subscription with this id (in the current organization); 404 otherwise."""
    subscription = db.session.scalar(
        select(Subscription).where(
            Subscription.lago_id == lago_id,
            Subscription.customer_id == customer.id,
            Subscription.organization_id == current_organization().id,
        )
    )
    if subscription is None:
        abort(404)
    return subscription


def live_plans() -> list[Plan]:
    """The organization's plans that can be assigned, by name."""
    return list(
        db.session.scalars(
            select(Plan)
            .where(Plan.organization_id == current_organization().id, Plan.deleted_at.is_(None))
            .order_by(Plan.name, Plan.id)
        )
    )


def shown_subscriptions(customer: Customer, at: datetime) -> list[Subscription]:
    """Active and pending subscriptions, then those that ended recently; a pending downgrade
    shows on the card of the subscription it replaces, not on its own."""
    since = at - RECENTLY_ENDED
    rows = db.session.scalars(
        select(Subscription)
        .where(
            Subscription.customer_id == customer.id,
            or_(
                Subscription.status.in_([ACTIVE.value, PENDING.value]),
                Subscription.terminated_at >= since,
                Subscription.canceled_at >= since,
            ),
        )
        .order_by(Subscription.created_at.desc(), Subscription.id.desc())
    ).all()
    live = [s for s in rows if s.status in (ACTIVE, PENDING) and not _is_downgrade(s, rows)]
    ended = [s for s in rows if s.status not in (ACTIVE, PENDING)][:ENDED_LIMIT]
    return live + ended


def _is_downgrade(subscription: Subscription, rows: list[Subscription]) -> bool:
    return subscription.status == PENDING and any(
        r.id == subscription.previous_subscription_id and r.status == ACTIVE for r in rows
    )


# --- what the customer page shows ------------------------------------------------------------


def header_summary(customer: Customer) -> dict[str, Any]:
    """The header's "Active plans" (active subscriptions) and "Next invoice" (the earliest next
    billing date among them, a local date of the customer's zone)."""
    active = [
        s for s in subscription_service.customer_subscriptions(customer) if s.status == ACTIVE
    ]
    dates = [d for s in active if (d := subscription_service.next_billing_date(s))]
    return {"active_subscriptions": active, "next_invoice": min(dates, default=None)}


#: how the caption names a period's units, by aggregation (sums and counts add up the days)
CHART_TOTAL_WORDS = {
    "max_agg": "at the peak of the period",
    "latest_agg": "latest value",
    "unique_count_agg": "distinct in the period",
    "weighted_sum_agg": "time-weighted over the period",
}


@dataclass
class UsageChart(BarLayout):
    """A bar per local day of the period, laid out for an inline SVG (no style attributes)."""

    metric: BillableMetric
    #: the period's aggregated units so far
    total: Decimal

    @property
    def caption(self) -> str:
        """What `total` is, in the metric's terms."""
        word = CHART_TOTAL_WORDS.get(self.metric.aggregation_type, "in the period so far")
        return f"{format_units(self.total)} {word}"

    @classmethod
    def build(
        cls,
        metric: BillableMetric,
        series: list[tuple[date, Decimal]],
        today: date,
        total: Decimal,
        locale: str = "en",
    ) -> UsageChart:
        layout = cls.layout(
            series,
            today=today,
            value_text=lambda value: format_units(value, locale),
            label_text=lambda day: format_skeleton("MMMd", day, locale=locale),
            bar_text=lambda day, units, future: _bar_text(day, units, future, locale),
        )
        return cls(metric=metric, total=total, **layout)


def _bar_text(day: date, units: Decimal, future: bool, locale: str) -> str:
    """A day's hover text: "Sun 2026-05-03: 3" in the console; the portal's in its language
    (days to come are marked by their look only)."""
    if locale == "en":
        text = f"{day:%a} {day.isoformat()}: {format_units(units)}"
        return text + " (not yet)" if future else text
    return f"{format_skeleton('MMMEd', day, locale=locale)}: {format_units(units, locale)}"


def format_units(value: Decimal, locale: str = "en") -> str:
    """A quantity of units, grouped, at most three decimals (12,345.5)."""
    return format_decimal(value, locale=locale)


@dataclass
class SubscriptionView:
    """One card of the tab: a subscription, its period, dates and (when active) its usage."""

    subscription: Subscription
    period: tuple[date, date] | None
    next_billing_date: date | None
    downgrade: Subscription | None
    downgrade_date: date | None
    usage: usage_service.UsageSummary | None
    charts: list[UsageChart]


def subscription_views(customer: Customer, at: datetime) -> list[SubscriptionView]:
    timezone = customer.applicable_timezone
    subscriptions = shown_subscriptions(customer, at)
    downgrades = subscription_service.next_subscriptions(subscriptions)
    views = []
    for subscription in subscriptions:
        period = current_period(subscription, at)
        downgrade = downgrades.get(subscription.id)
        usage, charts = None, []
        if subscription.status == ACTIVE:
            usage = usage_service.current_usage(subscription, at)
            charts = usage_charts(usage, local_date(at, timezone))
        views.append(
            SubscriptionView(
                subscription=subscription,
                period=_local_bounds(period, timezone) if period else None,
                next_billing_date=subscription_service.next_billing_date(subscription, at),
                downgrade=downgrade,
                downgrade_date=(
                    local_date(downgrade_at(subscription, downgrade), timezone)
                    if downgrade
                    else None
                ),
                usage=usage,
                charts=charts,
            )
        )
    return views


def _local_bounds(period: Period, timezone: str) -> tuple[date, date]:
    days = local_days(period, timezone)
    return days[0], days[-1]


def usage_charts(
    usage: usage_service.UsageSummary, today: date, locale: str = "en"
) -> list[UsageChart]:
    """One chart per metric the plan charges (a metric charged twice is drawn once), captioned
    with the period's aggregated units (a peak, a distinct count, … not a sum of the days);
    axis numbers and day labels in `locale` (the console's English, the portal's language)."""
    period_units: dict[int, tuple[BillableMetric, Decimal]] = {}
    for charge in usage.charges:
        metric = charge.billable_metric
        period_units.setdefault(metric.id, (metric, charge.total_aggregated_units))
    return [
        UsageChart.build(
            metric,
            usage_service.daily_usage(usage.subscription, metric, usage.period),
            today,
            units,
            locale,
        )
        for metric, units in period_units.values()
    ]


@dataclass
class DebuggedEvent:
    event: StoredEvent
    subscription_external_id: str
    properties: str
    reason: str | None


def events_context(customer: Customer, live: bool = False) -> dict[str, Any]:
    """The events debugger: the customer's latest events and the rejected ones sent for its
    subscriptions' external ids (which have no customer: they matched nothing)."""
    recent = usage_service.recent_events(customer, EVENTS_LIMIT)
    rejected = usage_service.rejected_events(customer, EVENTS_LIMIT)
    field_names = _field_names({e.code for e in rejected})
    return {
        "recent_events": [_debugged(e, field_names) for e in recent],
        "rejected_events": [_debugged(e, field_names) for e in rejected],
        "live": live,
        "live_seconds": LIVE_SECONDS,
        "checked_at": now_utc(),
    }


def _field_names(codes: set[str]) -> dict[str, str | None]:
    if not codes:
        return {}
    rows = db.session.execute(
        select(BillableMetric.code, BillableMetric.field_name).where(
            BillableMetric.organization_id == current_organization().id,
            BillableMetric.code.in_(codes),
            BillableMetric.deleted_at.is_(None),
        )
    )
    return {row.code: row.field_name for row in rows}


def _debugged(event: StoredEvent, field_names: dict[str, str | None]) -> DebuggedEvent:
    reason = None
    if event.error_code:
        template = EVENT_ERRORS.get(event.error_code, event.error_code.replace("_", " "))
        reason = template.format(
            external_subscription_id=event.external_subscription_id,
            code=event.code,
            field_name=field_names.get(event.code) or "…",
        )
    summary = ", ".join(f"{key}={value}" for key, value in (event.properties or {}).items())
    return DebuggedEvent(
        event=event,
        subscription_external_id=event.external_subscription_id,
        properties=summary if len(summary) <= 80 else summary[:79] + "…",
        reason=reason,
    )


def subscriptions_tab_context(customer: Customer, live: bool = False) -> dict[str, Any]:
    """What the "Subscriptions & usage" tab shows (the customer view loads it for that tab);
    `live` keeps the events debugger refreshing itself."""
    at = now_utc()
    return {
        "subscription_views": subscription_views(customer, at),
        "has_plans": bool(live_plans()),
        **events_context(customer, live),
    }


# --- assign and change plan ------------------------------------------------------------------


class AssignPlanForm(FlaskForm):
    """A new subscription; field names are the service's payload keys (errors land on them)."""

    plan_code = Select("Plan", [])
    external_id = StringField("External id", validators=[Length(max=255)])
    name = StringField("Name", validators=[Length(max=255)])
    billing_time = Select(
        "Billing time",
        [
            ("calendar", "Calendar (periods start on the 1st)"),
            ("anniversary", "Anniversary (on the start date's day)"),
        ],
    )
    subscription_at = DateField("Start date", validators=[Optional()])


class ChangePlanForm(FlaskForm):
    plan_code = Select("New plan", [])


class ConfirmTerminateForm(FlaskForm):
    confirm = BooleanField("I understand that this cannot be undone", validators=[DataRequired()])


def plan_label(plan: Plan) -> str:
    interval = INTERVAL_LABELS.get(plan.interval, plan.interval)  # type: ignore[call-overload]
    return f"{plan.name} — {interval} · {format_money(plan.amount_cents, plan.amount_currency)}"


def _plan_choices(
    plans: list[Plan], currency: str | None, current: Subscription | None = None
) -> list[tuple[str, str]]:
    choices = [("", "Choose a plan…")]
    # the customer's currency first: those are the plans it can take
    plans = sorted(plans, key=lambda plan: plan.amount_currency != currency)
    for plan in plans:
        if current is not None and plan.id == current.plan_id:
            continue
        label = plan_label(plan)
        if current is not None and current.status == ACTIVE:
            upgrade = subscription_service.yearly_amount_cents(
                plan
            ) >= subscription_service.yearly_amount_cents(current.plan)
            label += " (upgrade: now)" if upgrade else " (downgrade: at period end)"
        choices.append((plan.code, label))
    return choices


def _today(customer: Customer) -> date:
    return local_date(now_utc(), customer.applicable_timezone)


def _tab_url(customer: Customer) -> str:
    return url_for("console.customer", lago_id=customer.lago_id, tab="subscriptions")


def _render_assign(
    customer: Customer,
    form: FlaskForm,
    status: int,
    subscription: Subscription | None = None,
    unplaced: list[str] | None = None,
) -> ResponseReturnValue:
    return render_htmx(
        "console/assign_plan.html",
        "console/_assign_plan_form.html",
        status=status,
        customer=customer,
        form=form,
        subscription=subscription,
        downgrade=(
            subscription_service.next_subscriptions([subscription]).get(subscription.id)
            if subscription
            else None
        ),
        next_billing_date=(
            subscription_service.next_billing_date(subscription) if subscription else None
        ),
        has_plans=bool(live_plans()),
        unplaced=unplaced or [],
        timezone=customer.applicable_timezone,
    )


def _currency_message(customer: Customer, plan_code: str) -> str:
    plan = subscription_service.find_plan(current_organization(), plan_code)
    plan_currency = plan.amount_currency if plan else "another currency"
    return (
        f"This plan is priced in {plan_currency} but {customer.display_name} is billed in "
        f"{customer.currency}: choose a plan in {customer.currency}."
    )


def _place_errors(
    form: FlaskForm, customer: Customer, exc: ValidationFailed | NotFound | Conflict
) -> list[str]:
    """The service's refusal next to the fields; returns messages that have no field."""
    if isinstance(exc, NotFound):
        details: dict[str, Any] = {"plan_code": [exc.code]}
    elif isinstance(exc, Conflict):
        details = {exc.field: [exc.code]}
    else:
        details = dict(exc.details)
    if "currency" in details:
        details.pop("currency")
        form.plan_code.errors = [_currency_message(customer, form.plan_code.data or "")]
    return apply_errors(form, details, subscription_message)


def _create(
    customer: Customer,
    form: FlaskForm,
    payload: dict[str, Any],
    subscription: Subscription | None = None,
) -> tuple[Subscription | None, ResponseReturnValue]:
    """Create (or change the plan of) a subscription and commit; on refusal, roll back and
    return the form re-rendered with the errors next to its fields."""
    try:
        result = subscription_service.create_subscription(
            current_organization(), payload, agent_actor()
        )
    except (ValidationFailed, NotFound, Conflict) as exc:
        db.session.rollback()
        unplaced = _place_errors(form, customer, exc)
        return None, _render_assign(customer, form, 422, subscription, unplaced)
    db.session.commit()
    return result, ""


@bp.route("/customers/<uuid:lago_id>/subscriptions/new", methods=["GET", "POST"])
@requires("write")
def assign_plan(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Subscribe the customer to a plan; a blank external id is generated (`sub_…`), a start
    date in the future makes the subscription pending until then."""
    customer = customer_or_404(lago_id, include_deleted=False)
    form = AssignPlanForm()
    form.plan_code.choices = _plan_choices(live_plans(), customer.currency)
    if request.method == "GET":
        form.billing_time.data = "calendar"
        form.subscription_at.data = _today(customer)
        return _render_assign(customer, form, 200)
    if not form.validate():
        return _render_assign(customer, form, 422)
    external_id = (form.external_id.data or "").strip()
    if external_id and _live_subscription_with(customer, external_id):
        form.external_id.errors = [
            "This customer already has a subscription with this external id: "
            "use “Change plan” on it instead."
        ]
        return _render_assign(customer, form, 422)
    payload = {
        "external_customer_id": customer.external_id,
        "plan_code": form.plan_code.data,
        "external_id": external_id or generate_external_id("sub"),
        "name": form.name.data,
        "billing_time": form.billing_time.data,
        "subscription_at": _start_instant(customer, form.subscription_at.data),
    }
    subscription, refused = _create(customer, form, payload)
    if subscription is None:
        return refused
    if subscription.status == PENDING:
        starts = local_date(subscription.subscription_at, customer.applicable_timezone)
        flash(
            f"{subscription.plan.name} assigned ({subscription.external_id}); "
            f"it starts on {starts.isoformat()}.",
            "success",
        )
    else:
        flash(
            f"{subscription.plan.name} assigned ({subscription.external_id}); it is active.",
            "success",
        )
    return redirect_htmx(_tab_url(customer))


def _live_subscription_with(customer: Customer, external_id: str) -> bool:
    return any(
        s.external_id == external_id for s in subscription_service.customer_subscriptions(customer)
    )


def _start_instant(customer: Customer, day: date | None) -> datetime | None:
    """Today (or no date) starts now; another day starts at its midnight in the customer's
    zone (a future one leaves the subscription pending until then)."""
    if day is None or day == _today(customer):
        return None
    return local_midnight(day, customer.applicable_timezone)


@bp.route(
    "/customers/<uuid:lago_id>/subscriptions/<uuid:subscription_id>/change-plan",
    methods=["GET", "POST"],
)
@requires("write")
def change_plan(lago_id: uuid.UUID, subscription_id: uuid.UUID) -> ResponseReturnValue:
    """Move a subscription to another plan: an upgrade replaces it now, a downgrade waits for
    the end of the current period; one that has not started simply takes the new plan."""
    customer = customer_or_404(lago_id, include_deleted=False)
    subscription = subscription_or_404(customer, subscription_id)
    if subscription.status not in (ACTIVE, PENDING):
        flash("Only an active or pending subscription can change plan.", "error")
        return redirect_htmx(_tab_url(customer))
    form = ChangePlanForm()
    form.plan_code.choices = _plan_choices(live_plans(), customer.currency, subscription)
    if request.method == "GET":
        return _render_assign(customer, form, 200, subscription)
    if not form.validate():
        return _render_assign(customer, form, 422, subscription)
    payload = {
        "external_customer_id": customer.external_id,
        "plan_code": form.plan_code.data,
        "external_id": subscription.external_id,
    }
    previous_plan = subscription.plan
    result, refused = _create(customer, form, payload, subscription)
    if result is None:
        return refused
    flash(_change_message(customer, result, previous_plan), "success")
    return redirect_htmx(_tab_url(customer))


def _change_message(customer: Customer, result: Subscription, previous_plan: Plan) -> str:
    downgrade = subscription_service.next_subscriptions([result]).get(result.id)
    if downgrade is not None:
        switch = local_date(downgrade_at(result, downgrade), customer.applicable_timezone)
        return (
            f"Downgrade scheduled: {result.external_id} stays on {previous_plan.name} until "
            f"the period ends and switches to {downgrade.plan.name} on {switch.isoformat()}."
        )
    if result.status == PENDING:
        return f"{result.external_id} will start on {result.plan.name}."
    return (
        f"Upgraded now: {result.external_id} moved from {previous_plan.name} to {result.plan.name}."
    )


# --- terminate and cancel --------------------------------------------------------------------


@bp.route(
    "/customers/<uuid:lago_id>/subscriptions/<uuid:subscription_id>/terminate",
    methods=["GET", "POST"],
)
@requires("write")
def terminate_subscription(lago_id: uuid.UUID, subscription_id: uuid.UUID) -> ResponseReturnValue:
    """Confirm, then end an active subscription now or cancel a pending one; htmx's
    hx-confirm posts `confirm=y` directly, without JavaScript the confirmation page asks."""
    customer = customer_or_404(lago_id, include_deleted=False)
    subscription = subscription_or_404(customer, subscription_id)
    if subscription.status not in (ACTIVE, PENDING):
        flash(f"{subscription.external_id} has already ended.", "error")
        return redirect_htmx(_tab_url(customer))
    form = ConfirmTerminateForm()
    if request.method == "POST" and form.validate():
        pending = subscription.status == PENDING
        try:
            subscription_service.terminate_subscription(
                current_organization(), subscription, agent_actor()
            )
        except (NotAllowed, ValidationFailed):
            db.session.rollback()
            flash(f"{subscription.external_id} could not be ended: it has changed.", "error")
            return redirect_htmx(_tab_url(customer))
        db.session.commit()
        verb = "canceled" if pending else "terminated"
        flash(f"Subscription {subscription.external_id} {verb}.", "success")
        return redirect_htmx(_tab_url(customer))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "console/subscription_terminate.html",
        customer=customer,
        subscription=subscription,
        form=form,
        pending=subscription.status == PENDING,
        downgrade=subscription_service.next_subscriptions([subscription]).get(subscription.id),
        timezone=customer.applicable_timezone,
    ), status


# --- events debugger -------------------------------------------------------------------------


@bp.get("/customers/<uuid:lago_id>/events")
def customer_events(lago_id: uuid.UUID) -> ResponseReturnValue:
    """The events debugger alone (htmx refresh); without htmx, the tab that holds it."""
    customer = customer_or_404(lago_id)
    live = request.args.get("live") == "1"
    if not is_htmx():
        return redirect(_tab_url(customer) + ("?live=1" if live else "") + "#events-debugger")
    organization = current_organization()
    return render_template(
        "console/_events_debugger.html",
        customer=customer,
        timezone=customer.applicable_timezone,
        org_timezone=organization.timezone,
        **events_context(customer, live),
    )
