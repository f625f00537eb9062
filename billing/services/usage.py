"""Usage of a subscription: the current period's charges, daily series, event lists, rebuild.

Count, sum, max and latest come from the daily `UsageBucket`s (O(days × dimensions), whatever
the number of events). Unique count, weighted sum and percentage prices that look at each
event read the period's events through ix_events_subscription_metric_time.

Charge filters follow Lago: an event belongs to the most specific filter it matches (most keys;
the first on a tie) and the charge's own price applies to the events that match none, which Lago
lists as one more filter item with empty `values`.

`rebuild_usage` recomputes the buckets exactly from the events as matched at ingestion. It does
not re-match rejected events: an event's error is a recorded fact (its `event.error` webhook has
been sent) and re-matching would change usage already shown; the fix for an unmatched event is
to send it again under a new transaction id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, delete, or_, select, text
from sqlalchemy.orm import contains_eager, joinedload

from billing.aggregation import (
    EventPoint,
    aggregate,
    apply_rounding,
    event_dimensions,
    event_raw_value,
    event_value,
    matches_filter,
    per_event_values,
)
from billing.errors import NotAllowed, NotFound
from billing.models import (
    BillableMetric,
    Charge,
    ChargeFilter,
    Customer,
    Event,
    Organization,
    Plan,
    Subscription,
    SubscriptionStatus,
    UsageBucket,
)
from billing.periods import Period, local_date, local_days, local_midnight
from billing.pricing import charge_amount, needs_event_values
from billing.services.events import (
    BucketTally,
    StoredEvent,
    find_events,
    metric_info,
    write_buckets,
)
from billing.services.taxes import usage_taxes_amount_cents
from billing.timeutil import now_utc
from extensions import db

#: aggregations computed from the events themselves rather than from the buckets
EVENT_AGGREGATIONS = frozenset({"unique_count_agg", "weighted_sum_agg"})
_ZERO = Decimal(0)


@dataclass(frozen=True)
class FilterUsage:
    """Usage of one charge filter, or (`charge_filter` None) of the events matching none."""

    charge_filter: ChargeFilter | None
    units: Decimal
    total_aggregated_units: Decimal
    events_count: int
    amount_cents: int

    @property
    def invoice_display_name(self) -> str | None:
        return self.charge_filter.invoice_display_name if self.charge_filter else None

    @property
    def values(self) -> dict[str, list[str]]:
        return dict(self.charge_filter.values) if self.charge_filter else {}


@dataclass(frozen=True)
class ChargeUsage:
    charge: Charge
    billable_metric: BillableMetric
    units: Decimal
    total_aggregated_units: Decimal
    events_count: int
    amount_cents: int
    #: one item per charge filter plus the unmatched events; empty for a charge without filters
    filters: list[FilterUsage]


@dataclass(frozen=True)
class UsageSummary:
    subscription: Subscription
    period: Period
    #: the date of the period's future invoice: its last local day (Lago's next_end_of_period)
    issuing_date: date
    currency: str
    amount_cents: int
    taxes_amount_cents: int
    total_amount_cents: int
    charges: list[ChargeUsage]


# ---------------------------------------------------------------------------------------------
# Current usage


#: built once (every current-usage request runs it): the customer's active subscription with
#: everything `current_usage` reads of it, plan charges and filters included
_ACTIVE_SUBSCRIPTION_FOR_USAGE = (
    select(Subscription)
    .join(Customer, Customer.id == Subscription.customer_id)
    .where(
        Subscription.organization_id == bindparam("organization_id"),
        Customer.organization_id == bindparam("organization_id"),
        Customer.external_id == bindparam("customer_external_id"),
        Customer.deleted_at.is_(None),
        Subscription.external_id == bindparam("external_subscription_id"),
        Subscription.status == SubscriptionStatus.ACTIVE,
    )
    # one round trip: the customer from the join (its organization is the API key's, already
    # in the session), the plan's few charges and filters joined
    .options(
        contains_eager(Subscription.customer),
        joinedload(Subscription.plan)
        .joinedload(Plan.charges)
        .options(joinedload(Charge.billable_metric), joinedload(Charge.filters)),
    )
)
_LIVE_CUSTOMER = select(Customer.id).where(
    Customer.organization_id == bindparam("organization_id"),
    Customer.external_id == bindparam("customer_external_id"),
    Customer.deleted_at.is_(None),
)


def active_subscription_for_usage(
    organization: Organization, customer_external_id: str, external_subscription_id: str | None
) -> Subscription:
    """The customer's active subscription with that external id, loaded for `current_usage`.

    NotFound("customer") for an unknown customer; NotAllowed("no_active_subscription") when the
    subscription is unknown, not active, or someone else's.
    """
    params = {
        "organization_id": organization.id,
        "customer_external_id": customer_external_id,
        "external_subscription_id": external_subscription_id,
    }
    subscription = None
    if external_subscription_id:
        result = db.session.execute(_ACTIVE_SUBSCRIPTION_FOR_USAGE, params)
        subscription = result.unique().scalar_one_or_none()
    if subscription is None:
        if db.session.scalar(_LIVE_CUSTOMER, params) is None:
            raise NotFound("customer")
        raise NotAllowed("no_active_subscription")
    return subscription


def current_usage(
    subscription: Subscription, at: datetime | None = None, *, apply_taxes: bool = False
) -> UsageSummary:
    """The usage and charge amounts of the billing period containing `at` (default now); with
    `apply_taxes`, their taxes too (services.taxes)."""
    period = subscription.period_at(at or now_utc())
    summary = _summary(
        _UsageReader(subscription, period, subscription.customer.applicable_timezone)
    )
    if not apply_taxes:
        return summary
    taxes = usage_taxes_amount_cents(subscription, summary.charges, summary.currency)
    return replace(
        summary, taxes_amount_cents=taxes, total_amount_cents=summary.amount_cents + taxes
    )


def _summary(reader: _UsageReader) -> UsageSummary:
    """Every charge of the subscription's plan priced over the reader's period."""
    subscription, period, timezone = reader.subscription, reader.period, reader.timezone
    currency = subscription.plan.amount_currency
    charges = [reader.charge_usage(charge, currency) for charge in subscription.plan.charges]
    amount = sum(usage.amount_cents for usage in charges)
    return UsageSummary(
        subscription=subscription,
        period=period,
        issuing_date=local_date(period.inclusive_end, timezone),
        currency=currency,
        amount_cents=amount,
        taxes_amount_cents=0,  # see current_usage's apply_taxes
        total_amount_cents=amount,
        charges=charges,
    )


_BUCKETS: Table = UsageBucket.__table__  # type: ignore[assignment]
#: built once: the buckets of a subscription's period (and every earlier day of the metrics
#: whose sums carry over)
_PERIOD_BUCKETS = select(
    _BUCKETS.c.billable_metric_id,
    _BUCKETS.c.day,
    _BUCKETS.c.dimensions,
    _BUCKETS.c.events_count,
    _BUCKETS.c.sum_value,
    _BUCKETS.c.max_value,
    _BUCKETS.c.latest_value,
    _BUCKETS.c.latest_timestamp,
).where(
    _BUCKETS.c.subscription_id == bindparam("subscription_id"),
    _BUCKETS.c.billable_metric_id.in_(bindparam("metric_ids", expanding=True)),
    _BUCKETS.c.day <= bindparam("last_day"),
    or_(
        _BUCKETS.c.day >= bindparam("first_day"),
        _BUCKETS.c.billable_metric_id.in_(bindparam("carried_metric_ids", expanding=True)),
    ),
)


@dataclass
class _Slice:
    """The usage of one charge filter (or of the unmatched events) before pricing."""

    buckets: list[Any] = field(default_factory=list)
    points: list[EventPoint] = field(default_factory=list)
    carried_points: list[EventPoint] = field(default_factory=list)


class _UsageReader:
    """Reads a subscription's buckets once and its events once per metric that needs them."""

    def __init__(self, subscription: Subscription, period: Period, timezone: str) -> None:
        self.subscription = subscription
        self.period = period
        self.timezone = timezone
        days = local_days(period, timezone)
        self.first_day, self.last_day = days[0], days[-1]
        metrics = {charge.billable_metric for charge in subscription.plan.charges}
        self.buckets = self._load_buckets(metrics)
        self._points: dict[int, list[tuple[dict[str, str], EventPoint]]] = {}

    def _load_buckets(self, metrics: Iterable[BillableMetric]) -> dict[int, list[Any]]:
        metrics = list(metrics)
        if not metrics:
            return {}
        # a recurring sum adds every day since the subscription started
        carried = [m.id for m in metrics if m.recurring and m.aggregation_type == "sum_agg"]
        rows = db.session.connection().execute(
            _PERIOD_BUCKETS,
            {
                "subscription_id": self.subscription.id,
                "metric_ids": [m.id for m in metrics],
                "carried_metric_ids": carried,
                "first_day": self.first_day,
                "last_day": self.last_day,
            },
        )
        found: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            found[row.billable_metric_id].append(row)
        return found

    def _event_points(self, metric: BillableMetric) -> list[tuple[dict[str, str], EventPoint]]:
        """The metric's events up to the period end (from the period start unless recurring)."""
        if metric.id not in self._points:
            conditions = [
                Event.subscription_id == self.subscription.id,
                Event.billable_metric_id == metric.id,
                Event.timestamp < self.period.end,
                Event.error_code.is_(None),
            ]
            if not metric.recurring:
                conditions.append(Event.timestamp >= self.period.start)
            rows = db.session.execute(
                select(Event.timestamp, Event.properties)
                .where(*conditions)
                .order_by(Event.timestamp)
            )
            self._points[metric.id] = [
                (event_dimensions(row.properties, metric.filter_keys), _point(metric, row))
                for row in rows
            ]
        return self._points[metric.id]

    def charge_usage(self, charge: Charge, currency: str) -> ChargeUsage:
        metric = charge.billable_metric
        filters = list(charge.filters)
        slices: dict[int | None, _Slice] = {f.id: _Slice() for f in filters}
        slices[None] = _Slice()
        for bucket in self.buckets.get(metric.id, []):
            dimensions = json.loads(bucket.dimensions) if filters else {}
            slices[_filter_of(dimensions, filters)].buckets.append(bucket)
        pricings = [(None, charge.properties)] + [(f.id, f.properties) for f in filters]
        needs_values = any(needs_event_values(charge.charge_model, p) for _i, p in pricings)
        if metric.aggregation_type in EVENT_AGGREGATIONS or needs_values:
            for dimensions, point in self._event_points(metric):
                target = slices[_filter_of(dimensions, filters)]
                if point.timestamp >= self.period.start:
                    target.points.append(point)
                else:
                    target.carried_points.append(point)
        usages = [
            self._price(charge, metric, slices[filter_id], properties, currency, needs_values)
            for filter_id, properties in pricings
        ]
        default, by_filter = usages[0], usages[1:]
        items = [FilterUsage(f, *usage) for f, usage in zip(filters, by_filter, strict=True)] + [
            FilterUsage(None, *default)
        ]
        return ChargeUsage(
            charge=charge,
            billable_metric=metric,
            units=sum((item.units for item in items), _ZERO),
            total_aggregated_units=sum((item.total_aggregated_units for item in items), _ZERO),
            events_count=sum(item.events_count for item in items),
            amount_cents=sum(item.amount_cents for item in items),
            filters=items if filters else [],
        )

    def _price(
        self,
        charge: Charge,
        metric: BillableMetric,
        usage: _Slice,
        properties: dict[str, Any],
        currency: str,
        needs_values: bool,
    ) -> tuple[Decimal, Decimal, int, int]:
        """(units, total aggregated units, events count, amount in minor units) of one slice."""
        if metric.aggregation_type in EVENT_AGGREGATIONS:
            units, events_count = self._units_from_events(metric, usage)
        else:
            units, events_count = self._units_from_buckets(metric, usage.buckets)
        units = apply_rounding(units, metric.rounding_function, metric.rounding_precision)
        if units == 0 and events_count == 0:
            return units, units, 0, 0
        event_values = None
        if needs_values and needs_event_values(charge.charge_model, properties):
            event_values = per_event_values(metric.aggregation_type, usage.points)
        amount = charge_amount(
            charge.charge_model,
            properties,
            units,
            currency=currency,
            events_count=events_count,
            event_values=event_values,
        )
        return units, units, events_count, amount

    def _units_from_buckets(
        self, metric: BillableMetric, buckets: list[Any]
    ) -> tuple[Decimal, int]:
        in_period = [b for b in buckets if b.day >= self.first_day]
        events_count = sum(b.events_count for b in in_period)
        return bucket_units(metric.aggregation_type, in_period, buckets), events_count

    def _units_from_events(self, metric: BillableMetric, usage: _Slice) -> tuple[Decimal, int]:
        carried_units, carried_values = _ZERO, frozenset[str]()
        if usage.carried_points:
            before = aggregate(
                metric.aggregation_type,
                usage.carried_points,
                period_start=usage.carried_points[0].timestamp,
                period_end=self.period.start,
            )
            carried_units, carried_values = before.closing_units, before.closing_values
        result = aggregate(
            metric.aggregation_type,
            usage.points,
            period_start=self.period.start,
            period_end=self.period.end,
            carried_units=carried_units,
            carried_values=carried_values,
        )
        return result.units, result.events_count


def bucket_units(
    aggregation_type: str, buckets: Sequence[Any], all_buckets: Sequence[Any] | None = None
) -> Decimal:
    """Units of count, sum, max or latest from buckets; a recurring sum passes every bucket since
    the subscription started as `all_buckets`."""
    if aggregation_type == "count_agg":
        return Decimal(sum(b.events_count for b in buckets))
    if aggregation_type == "sum_agg":
        return sum((b.sum_value for b in (all_buckets or buckets)), _ZERO)
    if aggregation_type == "max_agg":
        return max((b.max_value for b in buckets if b.max_value is not None), default=_ZERO)
    if aggregation_type == "latest_agg":
        valued = [b for b in buckets if b.latest_timestamp is not None]
        if not valued:
            return _ZERO
        return max(valued, key=lambda b: b.latest_timestamp).latest_value or _ZERO
    raise ValueError(f"{aggregation_type} is not computed from buckets")


def _filter_of(dimensions: dict[str, str], filters: Sequence[ChargeFilter]) -> int | None:
    """The most specific filter the dimensions match (most keys, first on a tie), or None."""
    best: ChargeFilter | None = None
    for charge_filter in filters:
        if matches_filter(dimensions, charge_filter.values) and (
            best is None or len(charge_filter.values) > len(best.values)
        ):
            best = charge_filter
    return best.id if best else None


def _point(metric: BillableMetric, row: Any) -> EventPoint:
    properties = row.properties or {}
    operation = properties.get("operation_type")
    return EventPoint(
        timestamp=row.timestamp,
        value=event_value(properties, metric.field_name),
        operation_type=operation if isinstance(operation, str) else None,
        raw_value=event_raw_value(properties, metric.field_name),
    )


# ---------------------------------------------------------------------------------------------
# Daily series and event lists (console)


def daily_usage(
    subscription: Subscription, billable_metric: BillableMetric, period: Period
) -> list[tuple[date, Decimal]]:
    """Units of each local day of `period` (not rounded; a recurring sum shows each day's
    additions), for a usage chart."""
    timezone = subscription.customer.applicable_timezone
    days = local_days(period, timezone)
    if billable_metric.aggregation_type in EVENT_AGGREGATIONS:
        rows = db.session.execute(
            select(Event.timestamp, Event.properties).where(
                Event.subscription_id == subscription.id,
                Event.billable_metric_id == billable_metric.id,
                Event.timestamp >= period.start,
                Event.timestamp < period.end,
                Event.error_code.is_(None),
            )
        )
        by_day: dict[date, list[EventPoint]] = defaultdict(list)
        for row in rows:
            by_day[local_date(row.timestamp, timezone)].append(_point(billable_metric, row))
        series = []
        for day in days:
            start = local_midnight(day, timezone)
            end = local_midnight(day + timedelta(days=1), timezone)
            result = aggregate(
                billable_metric.aggregation_type, by_day[day], period_start=start, period_end=end
            )
            series.append((day, result.units))
        return series
    buckets: dict[date, list[Any]] = defaultdict(list)
    for bucket in db.session.scalars(
        select(UsageBucket).where(
            UsageBucket.subscription_id == subscription.id,
            UsageBucket.billable_metric_id == billable_metric.id,
            UsageBucket.day >= days[0],
            UsageBucket.day <= days[-1],
        )
    ):
        buckets[bucket.day].append(bucket)
    return [(day, bucket_units(billable_metric.aggregation_type, buckets[day])) for day in days]


def recent_events(customer: Customer, limit: int = 50) -> list[StoredEvent]:
    """The customer's latest events (matched to one of its subscriptions), newest first."""
    return find_events([Event.customer_id == customer.id], limit)


def rejected_events(owner: Organization | Customer, limit: int = 50) -> list[StoredEvent]:
    """Events that count for nothing, newest first: the organization's, or a customer's
    (including those sent for one of its subscriptions' external ids outside their lifetime)."""
    if isinstance(owner, Organization):
        return find_events(
            [Event.organization_id == owner.id, Event.error_code.is_not(None)], limit
        )
    external_ids = select(Subscription.external_id).where(Subscription.customer_id == owner.id)
    return find_events(
        [
            Event.organization_id == owner.organization_id,
            Event.error_code.is_not(None),
            or_(
                Event.customer_id == owner.id,
                Event.customer_id.is_(None) & Event.external_subscription_id.in_(external_ids),
            ),
        ],
        limit,
    )


# ---------------------------------------------------------------------------------------------
# Rebuild


@dataclass(frozen=True)
class RebuiltUsage:
    subscription_id: int
    external_id: str
    events_count: int
    buckets_count: int


def rebuild_usage(subscription_ids: Sequence[int] | None = None) -> list[RebuiltUsage]:
    """Recompute the usage buckets of these subscriptions (default: all) from their counted
    events, with the metrics' current filter keys and the customers' current timezones.

    On PostgreSQL the buckets table is locked (ingestion waits) so that no event is counted
    twice; on SQLite the caller's write transaction is exclusive already.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("LOCK TABLE usage_buckets IN EXCLUSIVE MODE"))
    query = select(Subscription).options(
        joinedload(Subscription.customer).joinedload(Customer.organization)
    )
    if subscription_ids is not None:
        query = query.where(Subscription.id.in_(subscription_ids))
    results = []
    for subscription in db.session.scalars(query.order_by(Subscription.id)).all():
        db.session.execute(
            delete(UsageBucket).where(UsageBucket.subscription_id == subscription.id)
        )
        tally = BucketTally()
        metrics = {
            metric.id: metric_info(metric)
            for metric in db.session.scalars(
                select(BillableMetric).where(
                    BillableMetric.organization_id == subscription.organization_id
                )
            )
        }
        timezone = subscription.customer.applicable_timezone
        events = 0
        rows = db.session.execute(
            select(Event.billable_metric_id, Event.timestamp, Event.properties)
            .where(Event.subscription_id == subscription.id, Event.error_code.is_(None))
            .execution_options(yield_per=5000)
        )
        for row in rows:
            metric = metrics.get(row.billable_metric_id)
            if metric is None:
                continue
            tally.add(subscription.id, metric, timezone, row.timestamp, row.properties)
            events += 1
        write_buckets(tally)
        results.append(
            RebuiltUsage(subscription.id, subscription.external_id, events, len(tally.deltas))
        )
    return results


# ---------------------------------------------------------------------------------------------
# Closed periods (invoicing)


def usage_for_period(subscription: Subscription, period: Period) -> UsageSummary:
    """The usage and charge amounts of any `period` of the subscription, e.g. one that has
    ended and is being invoiced (a termination's period ends at the termination instant),
    read and priced exactly as `current_usage` does."""
    return _summary(_UsageReader(subscription, period, subscription.customer.applicable_timezone))


#: built once: `_PERIOD_BUCKETS` of several subscriptions, each row naming its subscription
_BATCH_BUCKETS = select(_BUCKETS.c.subscription_id, *_PERIOD_BUCKETS.selected_columns).where(
    _BUCKETS.c.subscription_id.in_(bindparam("subscription_ids", expanding=True)),
    _BUCKETS.c.billable_metric_id.in_(bindparam("metric_ids", expanding=True)),
    _BUCKETS.c.day <= bindparam("last_day"),
    or_(
        _BUCKETS.c.day >= bindparam("first_day"),
        _BUCKETS.c.billable_metric_id.in_(bindparam("carried_metric_ids", expanding=True)),
    ),
)


class _PreloadedUsageReader(_UsageReader):
    """A `_UsageReader` over buckets read beforehand for a whole batch of subscriptions."""

    def __init__(
        self, subscription: Subscription, period: Period, timezone: str, rows: Sequence[Any]
    ) -> None:
        self._rows = rows
        super().__init__(subscription, period, timezone)

    def _load_buckets(self, metrics: Iterable[BillableMetric]) -> dict[int, list[Any]]:
        metrics = list(metrics)
        wanted = {m.id for m in metrics}
        carried = {m.id for m in metrics if m.recurring and m.aggregation_type == "sum_agg"}
        found: dict[int, list[Any]] = defaultdict(list)
        for row in self._rows:
            metric_id = row.billable_metric_id
            if (
                metric_id in wanted
                and row.day <= self.last_day
                and (row.day >= self.first_day or metric_id in carried)
            ):
                found[metric_id].append(row)
        return found


def usage_for_periods(periods: Sequence[tuple[Subscription, Period]]) -> list[UsageSummary]:
    """`usage_for_period` of each (subscription, period), the buckets of all of them read in
    one query (what the period close needs for a batch of subscriptions)."""
    if not periods:
        return []
    spans = []
    for subscription, period in periods:
        days = local_days(period, subscription.customer.applicable_timezone)
        spans.append((days[0], days[-1]))
    metrics = {
        charge.billable_metric
        for subscription, _period in periods
        for charge in subscription.plan.charges
    }
    rows_of: dict[int, list[Any]] = defaultdict(list)
    if metrics:
        carried = [m.id for m in metrics if m.recurring and m.aggregation_type == "sum_agg"]
        rows = db.session.connection().execute(
            _BATCH_BUCKETS,
            {
                "subscription_ids": sorted({s.id for s, _p in periods}),
                "metric_ids": sorted(m.id for m in metrics),
                "carried_metric_ids": carried,
                "first_day": min(first for first, _last in spans),
                "last_day": max(last for _first, last in spans),
            },
        )
        for row in rows:
            rows_of[row.subscription_id].append(row)
    return [
        _summary(
            _PreloadedUsageReader(
                subscription,
                period,
                subscription.customer.applicable_timezone,
                rows_of[subscription.id],
            )
        )
        for subscription, period in periods
    ]
