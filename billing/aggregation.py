"""Aggregating a billable metric over events: pure functions over in-memory values.

Semantics follow Lago's aggregation types (``BillableMetric`` model and
``BillableMetrics::Aggregations::*Service`` in getlago/lago-api, and the "Aggregation types" guide):

- ``count_agg``: number of events.
- ``sum_agg``: sum of ``properties[field_name]``; events without a numeric value add nothing.
- ``max_agg``: largest value (0 without values).
- ``latest_agg``: value of the event with the latest timestamp (0 without values).
- ``unique_count_agg``: number of distinct values present at the end of the period. An event with
  ``properties.operation_type == "remove"`` takes its value out; anything else adds it. The last
  operation on a value (by timestamp) decides. A recurring metric starts from the values present
  at the end of the previous period (`carried_values`).
- ``weighted_sum_agg``: each value is an increment to a running total that starts at
  `carried_units` (the previous period's final total for a recurring metric, else 0). The result
  is Σ running_total × seconds_held / period_seconds; Lago's ``+ 1`` second in its formula comes
  from its inclusive ``…23:59:59`` ends and vanishes with half-open periods.

``recurring`` is accepted only for ``sum_agg``, ``unique_count_agg`` and ``weighted_sum_agg``:
Lago's ``BillableMetric#validate_recurring`` refuses it for count, max and latest with the code
``not_compatible_with_aggregation_type``.

Pre-aggregated buckets: `aggregate` a bucket's events on their own (no carried state) and `combine`
consecutive buckets with the period's carried state; the result equals aggregating all the events
at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from billing.money import parse_decimal

AGGREGATION_TYPES = (
    "count_agg",
    "sum_agg",
    "max_agg",
    "unique_count_agg",
    "latest_agg",
    "weighted_sum_agg",
)
RECURRING_AGGREGATION_TYPES = ("sum_agg", "unique_count_agg", "weighted_sum_agg")
ROUNDING_FUNCTIONS = ("round", "ceil", "floor")
WEIGHTED_INTERVALS = ("seconds",)
#: A charge-filter value that matches every value of its key (Lago's ChargeFilterValue).
ALL_FILTER_VALUES = "__ALL_FILTER_VALUES__"

_ROUNDING_MODES = {"round": ROUND_HALF_UP, "ceil": ROUND_CEILING, "floor": ROUND_FLOOR}
_ZERO = Decimal(0)


@dataclass(frozen=True)
class EventPoint:
    """What aggregation needs of one event."""

    timestamp: datetime
    value: Decimal | None  #: properties[field_name] as a Decimal; None when missing/not numeric
    operation_type: str | None = None  #: "add" (default) or "remove", for unique_count_agg
    raw_value: str | None = None  #: properties[field_name] as a string, for unique_count_agg


@dataclass(frozen=True)
class Aggregate:
    """The aggregation of a metric over ``[start, end)``.

    `units` is what a charge prices. The other fields let consecutive buckets be combined and
    carry a recurring metric into the next period (`closing_units`, `closing_values`).
    """

    units: Decimal
    events_count: int
    start: datetime | None = None
    end: datetime | None = None
    #: the state handed to the next period of a recurring metric: the running total (sum,
    #: weighted sum) or the number of values present (unique count); else equal to `units`
    closing_units: Decimal = _ZERO
    #: values present at the end (unique count)
    closing_values: frozenset[str] = frozenset()
    #: Σ of the events' values (sum, weighted sum), without any carried units
    delta: Decimal = _ZERO
    #: ∫ running total dt in unit·seconds (weighted sum)
    unit_seconds: Decimal = _ZERO
    #: unique count: values whose last operation here was an add / a remove
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    #: latest_agg: timestamp of the event that gave `units`
    latest_at: datetime | None = None
    #: max_agg / latest_agg: whether any event had a value
    has_value: bool = False


def event_value(properties: Mapping[str, object] | None, field_name: str | None) -> Decimal | None:
    """``properties[field_name]`` as a Decimal (numbers or numeric strings); None otherwise."""
    if not field_name or not properties:
        return None
    return parse_decimal(properties.get(field_name))


def event_raw_value(properties: Mapping[str, object] | None, field_name: str | None) -> str | None:
    """``properties[field_name]`` as the string unique_count_agg counts; None when missing."""
    if not field_name or not properties:
        return None
    return _as_string(properties.get(field_name))


def event_dimensions(
    properties: Mapping[str, object] | None, filter_keys: Sequence[str]
) -> dict[str, str]:
    """The event's values for the metric's filter keys, as strings (absent keys are left out)."""
    dimensions: dict[str, str] = {}
    for key in filter_keys:
        text = _as_string((properties or {}).get(key))
        if text is not None:
            dimensions[key] = text
    return dimensions


def matches_filter(dimensions: Mapping[str, str], values: Mapping[str, Sequence[str]]) -> bool:
    """Lago's charge-filter matching: every key of the filter is present on the event with one of
    the listed values; ``__ALL_FILTER_VALUES__`` accepts any value of its key."""
    for key, accepted in values.items():
        if key not in dimensions:
            return False
        if ALL_FILTER_VALUES not in accepted and dimensions[key] not in accepted:
            return False
    return True


def aggregate(
    aggregation_type: str,
    events: Sequence[EventPoint],
    *,
    period_start: datetime,
    period_end: datetime,
    carried_units: Decimal = _ZERO,
    carried_values: Iterable[str] = (),
) -> Aggregate:
    """Aggregate the events of ``[period_start, period_end)``; events outside it are ignored.

    `carried_units` (sum, weighted sum) and `carried_values` (unique count) are the previous
    period's closing state of a recurring metric; leave them empty for a metered one.
    """
    if aggregation_type not in AGGREGATION_TYPES:
        raise ValueError(f"unknown aggregation type {aggregation_type!r}")
    inside = sorted(
        (event for event in events if period_start <= event.timestamp < period_end),
        key=lambda event: event.timestamp,
    )
    bucket = _aggregate_bucket(aggregation_type, inside, period_start, period_end)
    return combine(
        aggregation_type, [bucket], carried_units=carried_units, carried_values=carried_values
    )


def combine(
    aggregation_type: str,
    buckets: Sequence[Aggregate],
    *,
    carried_units: Decimal = _ZERO,
    carried_values: Iterable[str] = (),
) -> Aggregate:
    """Combine consecutive buckets (each aggregated with no carried state) into one aggregate,
    starting from the carried state of a recurring metric."""
    if aggregation_type not in AGGREGATION_TYPES:
        raise ValueError(f"unknown aggregation type {aggregation_type!r}")
    ordered = sorted(buckets, key=lambda bucket: bucket.start or datetime.min)
    count = sum(bucket.events_count for bucket in ordered)
    start = ordered[0].start if ordered else None
    end = ordered[-1].end if ordered else None

    if aggregation_type == "count_agg":
        units = Decimal(count)
        return Aggregate(units, count, start, end, closing_units=units)
    if aggregation_type == "sum_agg":
        delta = sum((bucket.delta for bucket in ordered), _ZERO)
        units = carried_units + delta
        return Aggregate(units, count, start, end, closing_units=units, delta=delta)
    if aggregation_type == "max_agg":
        valued = [bucket.units for bucket in ordered if bucket.has_value]
        units = max(valued, default=_ZERO)
        return Aggregate(units, count, start, end, closing_units=units, has_value=bool(valued))
    if aggregation_type == "latest_agg":
        latest: Aggregate | None = None
        for bucket in ordered:
            if bucket.latest_at is None:
                continue
            if latest is None or latest.latest_at is None or bucket.latest_at >= latest.latest_at:
                latest = bucket
        if latest is None:
            return Aggregate(_ZERO, count, start, end)
        return Aggregate(
            latest.units,
            count,
            start,
            end,
            closing_units=latest.units,
            latest_at=latest.latest_at,
            has_value=True,
        )
    if aggregation_type == "unique_count_agg":
        present = set(carried_values)
        added: set[str] = set()
        removed: set[str] = set()
        for bucket in ordered:
            present = (present - bucket.removed) | bucket.added
            added = (added - bucket.removed) | bucket.added
            removed = (removed - bucket.added) | bucket.removed
        units = Decimal(len(present))
        return Aggregate(
            units,
            count,
            start,
            end,
            closing_units=units,
            closing_values=frozenset(present),
            added=frozenset(added),
            removed=frozenset(removed),
        )
    # weighted_sum_agg: each bucket's integral assumed a running total starting at 0; add the
    # total that was already running when the bucket began, for the bucket's whole length.
    running = carried_units
    unit_seconds = _ZERO
    seconds = _ZERO
    for bucket in ordered:
        if bucket.start is None or bucket.end is None:
            raise ValueError("a weighted-sum bucket needs its start and end")
        length = _seconds(bucket.end - bucket.start)
        unit_seconds += bucket.unit_seconds + running * length
        running += bucket.delta
        seconds += length
    units = unit_seconds / seconds if seconds else _ZERO
    return Aggregate(
        units,
        count,
        start,
        end,
        closing_units=running,
        delta=running - carried_units,
        unit_seconds=unit_seconds,
    )


def per_event_values(aggregation_type: str, events: Sequence[EventPoint]) -> list[Decimal]:
    """Each event's contribution, in timestamp order (the percentage model's per-transaction
    values): 1 per event for count_agg, else the event's value (events without one are skipped)."""
    ordered = sorted(events, key=lambda event: event.timestamp)
    if aggregation_type == "count_agg":
        return [Decimal(1) for _ in ordered]
    return [event.value for event in ordered if event.value is not None]


def apply_rounding(units: Decimal, function: str | None, precision: int | None) -> Decimal:
    """The metric's rounding of aggregated units: round (half up), ceil or floor to `precision`
    decimal places (negative: tens, hundreds…; None: 0). No function: units unchanged."""
    if function is None:
        return units
    if function not in _ROUNDING_MODES:
        raise ValueError(f"unknown rounding function {function!r}")
    places = precision or 0
    rounded = units.scaleb(places).to_integral_value(rounding=_ROUNDING_MODES[function])
    result = rounded.scaleb(-places)
    return result.quantize(Decimal(1)) if places <= 0 else result


def validate_metric(data: Mapping[str, object]) -> dict[str, list[str]]:
    """Lago's validation errors for a billable-metric payload (field → error codes)."""
    errors: dict[str, list[str]] = {}

    def add(key: str, code: str) -> None:
        codes = errors.setdefault(key, [])
        if code not in codes:
            codes.append(code)

    for key in ("name", "code"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            add(key, "value_is_mandatory")
    aggregation_type = data.get("aggregation_type")
    if aggregation_type not in AGGREGATION_TYPES:
        add("aggregation_type", "value_is_invalid")
    field_name = data.get("field_name")
    if aggregation_type != "count_agg" and (
        not isinstance(field_name, str) or not field_name.strip()
    ):
        add("field_name", "value_is_mandatory")
    recurring = data.get("recurring")
    if recurring not in (None, True, False):
        add("recurring", "value_is_invalid")
    elif (
        recurring
        and aggregation_type in AGGREGATION_TYPES
        and (aggregation_type not in RECURRING_AGGREGATION_TYPES)
    ):
        add("recurring", "not_compatible_with_aggregation_type")
    if data.get("rounding_function") not in (None, *ROUNDING_FUNCTIONS):
        add("rounding_function", "value_is_invalid")
    precision = data.get("rounding_precision")
    if precision is not None and (isinstance(precision, bool) or not isinstance(precision, int)):
        add("rounding_precision", "value_is_invalid")
    weighted_interval = data.get("weighted_interval")
    if weighted_interval is not None and (
        weighted_interval not in WEIGHTED_INTERVALS or aggregation_type != "weighted_sum_agg"
    ):
        add("weighted_interval", "value_is_invalid")
    for code in _filter_errors(data.get("filters")):
        add("filters", code)
    return errors


def _filter_errors(filters: object) -> list[str]:
    if filters is None:
        return []
    if not isinstance(filters, list):
        return ["value_is_invalid"]
    codes: list[str] = []
    keys: set[str] = set()
    for item in filters:
        if not isinstance(item, Mapping):
            codes.append("value_is_invalid")
            continue
        key, values = item.get("key"), item.get("values")
        if not isinstance(key, str) or not key.strip():
            codes.append("value_is_mandatory")
        elif key in keys:
            codes.append("value_already_exist")
        else:
            keys.add(key)
        if not isinstance(values, list) or not values:
            codes.append("value_is_mandatory")
        elif not all(isinstance(value, str) and value for value in values):
            codes.append("value_is_invalid")
    return list(dict.fromkeys(codes))


def _aggregate_bucket(
    aggregation_type: str, events: Sequence[EventPoint], start: datetime, end: datetime
) -> Aggregate:
    """One bucket with no carried state; `events` are sorted and inside ``[start, end)``."""
    count = len(events)
    values = [event.value for event in events if event.value is not None]
    if aggregation_type == "count_agg":
        return Aggregate(Decimal(count), count, start, end)
    if aggregation_type == "sum_agg":
        delta = sum(values, _ZERO)
        return Aggregate(delta, count, start, end, delta=delta)
    if aggregation_type == "max_agg":
        return Aggregate(max(values, default=_ZERO), count, start, end, has_value=bool(values))
    if aggregation_type == "latest_agg":
        timed = [event for event in events if event.value is not None]
        if not timed:
            return Aggregate(_ZERO, count, start, end)
        return Aggregate(
            values[-1], count, start, end, latest_at=timed[-1].timestamp, has_value=True
        )
    if aggregation_type == "unique_count_agg":
        last_operation: dict[str, bool] = {}
        for event in events:
            key = event.raw_value if event.raw_value is not None else _decimal_text(event.value)
            if key is not None:
                last_operation[key] = event.operation_type != "remove"
        added = frozenset(key for key, is_add in last_operation.items() if is_add)
        removed = frozenset(key for key, is_add in last_operation.items() if not is_add)
        return Aggregate(Decimal(len(added)), count, start, end, added=added, removed=removed)
    # weighted_sum_agg
    running = _ZERO
    unit_seconds = _ZERO
    held_since = start
    for event in events:
        if event.value is None:
            continue
        unit_seconds += running * _seconds(event.timestamp - held_since)
        running += event.value
        held_since = event.timestamp
    unit_seconds += running * _seconds(end - held_since)
    total = _seconds(end - start)
    units = unit_seconds / total if total else _ZERO
    return Aggregate(units, count, start, end, delta=running, unit_seconds=unit_seconds)


def _seconds(duration: timedelta) -> Decimal:
    micro = (duration.days * 86400 + duration.seconds) * 1_000_000 + duration.microseconds
    return Decimal(micro).scaleb(-6)


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _as_string(value: object) -> str | None:
    """A property value as Lago compares it (JSON scalars; true/false in lower case)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
