# ruff: noqa: E501  (the tables read best one case a line)
"""Metric aggregation over events, rounding, filters, metric validation, and every aggregation
type priced by every charge model."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.aggregation import (
    AGGREGATION_TYPES,
    EventPoint,
    aggregate,
    apply_rounding,
    combine,
    event_dimensions,
    event_value,
    matches_filter,
    per_event_values,
    validate_metric,
)
from billing.pricing import charge_amount, validate_properties

D = Decimal
APRIL = (datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC))  # 30 days


def at(day, hour=0):
    return datetime(2024, 4, day, hour, tzinfo=UTC)


def point(day, value, raw=None, operation=None):
    return EventPoint(at(day), None if value is None else D(value), operation, raw)


# 10 on Apr 1, 20 on Apr 11, 5 on Apr 21 (given out of order)
EVENTS = [point(21, "5", "a"), point(1, "10", "a"), point(11, "20", "b")]

# fmt: off
UNITS = {
    "count_agg": D(3),
    "sum_agg": D(35),
    "max_agg": D(20),
    "unique_count_agg": D(2),   # a, b
    "latest_agg": D(5),         # the latest timestamp, not the last given
    "weighted_sum_agg": D(25),  # (10×10 + 30×10 + 35×10 days) / 30 days
}
# fmt: on


@pytest.mark.parametrize("aggregation_type", AGGREGATION_TYPES)
def test_aggregate_every_type(aggregation_type):
    result = aggregate(aggregation_type, EVENTS, period_start=APRIL[0], period_end=APRIL[1])
    assert result.units == UNITS[aggregation_type]
    assert result.events_count == 3


@pytest.mark.parametrize("aggregation_type", AGGREGATION_TYPES)
def test_no_events_is_zero(aggregation_type):
    result = aggregate(aggregation_type, [], period_start=APRIL[0], period_end=APRIL[1])
    assert (result.units, result.events_count) == (0, 0)


def test_events_outside_the_period_are_ignored():
    events = [
        *EVENTS,
        EventPoint(APRIL[1], D(100)),
        EventPoint(datetime(2024, 3, 31, 23, tzinfo=UTC), D(100)),
    ]
    assert aggregate("sum_agg", events, period_start=APRIL[0], period_end=APRIL[1]).units == 35


def test_events_without_a_value_count_but_add_nothing():
    events = [point(2, None), point(3, "4"), point(4, None)]
    for aggregation_type, units in [
        ("count_agg", 3),
        ("sum_agg", 4),
        ("max_agg", 4),
        ("latest_agg", 4),
    ]:
        result = aggregate(aggregation_type, events, period_start=APRIL[0], period_end=APRIL[1])
        assert (result.units, result.events_count) == (units, 3)


def test_max_of_negative_values():
    events = [point(2, "-4"), point(3, "-1")]
    assert aggregate("max_agg", events, period_start=APRIL[0], period_end=APRIL[1]).units == -1


# fmt: off
UNIQUE = [
    # (events as (day, value, operation), carried values, units, values at the end)
    ([(1, "a", None), (2, "b", "add"), (3, "a", None)], [], 2, {"a", "b"}),
    ([(1, "a", None), (2, "b", None), (3, "a", "remove")], [], 1, {"b"}),
    ([(3, "a", "remove"), (1, "a", None)], [], 0, set()),             # order by timestamp
    ([(1, "a", "remove"), (3, "a", None)], [], 1, {"a"}),             # removed, then added back
    ([(2, "c", "remove"), (3, "d", None)], ["a", "c"], 2, {"a", "d"}),  # recurring: carried set
    ([(2, "z", "remove")], ["a"], 1, {"a"}),                          # removing an absent value
]
# fmt: on


@pytest.mark.parametrize(("events", "carried", "units", "closing"), UNIQUE)
def test_unique_count(events, carried, units, closing):
    points = [EventPoint(at(day), None, operation, raw) for day, raw, operation in events]
    result = aggregate(
        "unique_count_agg",
        points,
        period_start=APRIL[0],
        period_end=APRIL[1],
        carried_values=carried,
    )
    assert result.units == units
    assert result.closing_values == closing


def test_unique_count_of_numeric_values_without_raw_value():
    points = [EventPoint(at(1), D(7), None, None), EventPoint(at(2), D(7), None, None)]
    assert (
        aggregate("unique_count_agg", points, period_start=APRIL[0], period_end=APRIL[1]).units == 1
    )


def test_recurring_sum_adds_the_carried_units():
    result = aggregate(
        "sum_agg", EVENTS, period_start=APRIL[0], period_end=APRIL[1], carried_units=D(100)
    )
    assert (result.units, result.closing_units) == (135, 135)


def test_recurring_weighted_sum_starts_from_the_carried_total():
    # running total 10 (carried) for 10 days, +20 → 30 for 10 days, -5 → 25 for 10 days
    events = [point(11, "20"), point(21, "-5")]
    result = aggregate(
        "weighted_sum_agg", events, period_start=APRIL[0], period_end=APRIL[1], carried_units=D(10)
    )
    assert result.units == D(650) / D(30)
    assert result.closing_units == 25


def test_weighted_sum_by_the_second():
    # 1 unit held for the last 6 seconds of a 12-second window → 0.5
    start = datetime(2024, 4, 1, tzinfo=UTC)
    end = datetime(2024, 4, 1, 0, 0, 12, tzinfo=UTC)
    event = EventPoint(datetime(2024, 4, 1, 0, 0, 6, tzinfo=UTC), D(1))
    assert aggregate("weighted_sum_agg", [event], period_start=start, period_end=end).units == D(
        "0.5"
    )


def test_metered_weighted_sum_lagos_guide_shape():
    # +20 on Apr 16 and -20 on Apr 21 (a 30-day month): 20 × 5 days / 30 days = 3.333…
    events = [point(16, "20"), point(21, "-20")]
    result = aggregate("weighted_sum_agg", events, period_start=APRIL[0], period_end=APRIL[1])
    assert result.units == D(100) / D(30)


@pytest.mark.parametrize("aggregation_type", AGGREGATION_TYPES)
@pytest.mark.parametrize("carried", [D(0), D(7)])
def test_combining_daily_buckets_equals_aggregating_every_event(aggregation_type, carried):
    events = [*EVENTS, point(11, "3", "c"), point(21, "-2", "b", "remove"), point(30, "8", "d")]
    carried_values = ["a", "z"] if carried else []
    whole = aggregate(
        aggregation_type,
        events,
        period_start=APRIL[0],
        period_end=APRIL[1],
        carried_units=carried,
        carried_values=carried_values,
    )
    days = [at(day) for day in range(1, 31)] + [APRIL[1]]
    buckets = [
        aggregate(aggregation_type, events, period_start=low, period_end=high)
        for low, high in zip(days, days[1:], strict=False)
    ]
    combined = combine(
        aggregation_type, buckets, carried_units=carried, carried_values=carried_values
    )
    assert combined.units == whole.units
    assert combined.events_count == whole.events_count == 6
    assert combined.closing_units == whole.closing_units
    assert combined.closing_values == whole.closing_values


# fmt: off
ROUNDING = [
    ("2.345", "round", 2, "2.35"),     # half up
    ("2.344", "round", 2, "2.34"),
    ("-2.5", "round", 0, "-3"),        # half away from zero
    ("2.5", "round", None, "3"),       # null precision = 0
    ("2.301", "ceil", 1, "2.4"),
    ("2.399", "floor", 1, "2.3"),
    ("-1.5", "ceil", 0, "-1"),
    ("-1.5", "floor", 0, "-2"),
    ("1234.5", "round", -2, "1200"),
    ("1250", "round", -2, "1300"),
    ("1201", "ceil", -2, "1300"),
    ("1299", "floor", -2, "1200"),
    ("2.3456", None, 2, "2.3456"),     # no function: unchanged
]
# fmt: on


@pytest.mark.parametrize(("units", "function", "precision", "expected"), ROUNDING)
def test_apply_rounding(units, function, precision, expected):
    result = apply_rounding(D(units), function, precision)
    assert result == D(expected)
    assert str(result) == expected


def test_unknown_rounding_function():
    with pytest.raises(ValueError):
        apply_rounding(D(1), "truncate", 0)


@pytest.mark.parametrize(
    ("properties", "field", "expected"),
    [
        ({"gb": "12.5"}, "gb", D("12.5")),
        ({"gb": 3}, "gb", D(3)),
        ({"gb": 0.25}, "gb", D("0.25")),
        ({"gb": "abc"}, "gb", None),
        ({"gb": True}, "gb", None),
        ({"gb": None}, "gb", None),
        ({}, "gb", None),
        ({"gb": 3}, None, None),
        (None, "gb", None),
    ],
)
def test_event_value(properties, field, expected):
    assert event_value(properties, field) == expected


def test_event_dimensions():
    properties = {"region": "eu", "tier": 1, "flag": True, "empty": None, "nested": {"a": 1}}
    keys = ["region", "tier", "flag", "empty", "nested", "missing"]
    assert event_dimensions(properties, keys) == {"region": "eu", "tier": "1", "flag": "true"}


@pytest.mark.parametrize(
    ("dimensions", "values", "matches"),
    [
        ({"region": "eu"}, {"region": ["eu", "us"]}, True),
        ({"region": "asia"}, {"region": ["eu", "us"]}, False),
        ({}, {"region": ["eu"]}, False),
        ({"region": "eu", "tier": "gold"}, {"region": ["eu"], "tier": ["gold"]}, True),
        ({"region": "eu"}, {"region": ["eu"], "tier": ["gold"]}, False),
        ({"region": "eu", "tier": "x"}, {"region": ["eu"]}, True),
        ({"region": "mars"}, {"region": ["__ALL_FILTER_VALUES__"]}, True),
        ({"tier": "gold"}, {"region": ["__ALL_FILTER_VALUES__"]}, False),
        ({"region": "eu"}, {}, True),
    ],
)
def test_matches_filter(dimensions, values, matches):
    assert matches_filter(dimensions, values) is matches


VALID = {"name": "Storage", "code": "storage", "aggregation_type": "sum_agg", "field_name": "gb"}

# fmt: off
METRIC_ERRORS = [
    ({}, {"name": ["value_is_mandatory"], "code": ["value_is_mandatory"], "aggregation_type": ["value_is_invalid"], "field_name": ["value_is_mandatory"]}),
    ({"name": " "}, {"name": ["value_is_mandatory"]}),
    ({"aggregation_type": "median_agg"}, {"aggregation_type": ["value_is_invalid"]}),
    ({"aggregation_type": "custom_agg"}, {"aggregation_type": ["value_is_invalid"]}),
    ({"field_name": ""}, {"field_name": ["value_is_mandatory"]}),
    ({"field_name": None, "aggregation_type": "max_agg"}, {"field_name": ["value_is_mandatory"]}),
    ({"aggregation_type": "count_agg", "recurring": True}, {"recurring": ["not_compatible_with_aggregation_type"]}),
    ({"aggregation_type": "max_agg", "recurring": True}, {"recurring": ["not_compatible_with_aggregation_type"]}),
    ({"aggregation_type": "latest_agg", "recurring": True}, {"recurring": ["not_compatible_with_aggregation_type"]}),
    ({"recurring": "yes"}, {"recurring": ["value_is_invalid"]}),
    ({"rounding_function": "truncate"}, {"rounding_function": ["value_is_invalid"]}),
    ({"rounding_function": "round", "rounding_precision": "2"}, {"rounding_precision": ["value_is_invalid"]}),
    ({"rounding_precision": 1.5}, {"rounding_precision": ["value_is_invalid"]}),
    ({"weighted_interval": "seconds"}, {"weighted_interval": ["value_is_invalid"]}),
    ({"aggregation_type": "weighted_sum_agg", "weighted_interval": "hours"}, {"weighted_interval": ["value_is_invalid"]}),
    ({"filters": "region"}, {"filters": ["value_is_invalid"]}),
    ({"filters": [{"key": "", "values": ["eu"]}]}, {"filters": ["value_is_mandatory"]}),
    ({"filters": [{"key": "region", "values": []}]}, {"filters": ["value_is_mandatory"]}),
    ({"filters": [{"key": "region", "values": ["eu", 3]}]}, {"filters": ["value_is_invalid"]}),
    ({"filters": [{"key": "region", "values": ["eu"]}, {"key": "region", "values": ["us"]}]}, {"filters": ["value_already_exist"]}),
]
# fmt: on


@pytest.mark.parametrize(("changes", "errors"), METRIC_ERRORS)
def test_validate_metric_errors(changes, errors):
    data = {**VALID, **changes} if changes else {}
    assert validate_metric(data) == errors


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"aggregation_type": "count_agg", "field_name": None},
        {"recurring": True},
        {"aggregation_type": "unique_count_agg", "recurring": True},
        {"aggregation_type": "weighted_sum_agg", "recurring": True, "weighted_interval": "seconds"},
        {"aggregation_type": "weighted_sum_agg", "weighted_interval": None},
        {"rounding_function": "ceil", "rounding_precision": -2},
        {"rounding_function": "floor", "rounding_precision": None},
        {"filters": [{"key": "region", "values": ["eu", "us"]}]},
        {"filters": []},
    ],
)
def test_valid_metrics(changes):
    assert validate_metric({**VALID, **changes}) == {}


# Every aggregation type priced by every charge model, over EVENTS (3 events in April, EUR).
# Units: count 3 · sum 35 · max 20 · unique 2 · latest 5 · weighted 25.
TWO_TIERS = [
    {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
    {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "1"},
]
CHARGES = {
    "standard": {"amount": "0.5"},
    "graduated": {"graduated_ranges": TWO_TIERS},
    "volume": {"volume_ranges": TWO_TIERS},
    "package": {"amount": "2", "package_size": 10, "free_units": 0},
    "percentage": {"rate": "10", "fixed_amount": "0.1"},
}
# fmt: off
MATRIX = {
    #                   count  sum   max   unique latest weighted
    "standard":   dict(zip(AGGREGATION_TYPES, [150, 1750, 1000, 100, 250, 1250], strict=True)),  # units × 0.5
    "graduated":  dict(zip(AGGREGATION_TYPES, [300, 2350, 1600, 200, 500, 1850], strict=True)),  # 35: 10 + 25×0.5 + 1
    "volume":     dict(zip(AGGREGATION_TYPES, [300, 1850, 1100, 200, 500, 1350], strict=True)),  # 35: 35×0.5 + 1
    "package":    dict(zip(AGGREGATION_TYPES, [200, 800, 400, 200, 200, 600], strict=True)),     # ceil(units/10) × 2
    "percentage": dict(zip(AGGREGATION_TYPES, [60, 380, 230, 50, 80, 280], strict=True)),        # 10 % + 3 × 0.1
}
# fmt: on


@pytest.mark.parametrize("model", list(CHARGES))
@pytest.mark.parametrize("aggregation_type", AGGREGATION_TYPES)
def test_every_aggregation_with_every_charge_model(model, aggregation_type):
    properties, errors = validate_properties(model, CHARGES[model])
    assert errors == {}
    result = aggregate(aggregation_type, EVENTS, period_start=APRIL[0], period_end=APRIL[1])
    amount = charge_amount(
        model, properties, result.units, currency="EUR", events_count=result.events_count
    )
    assert amount == MATRIX[model][aggregation_type]


def test_per_event_values_feed_the_percentage_model():
    assert per_event_values("count_agg", EVENTS) == [1, 1, 1]
    values = per_event_values("sum_agg", EVENTS)
    assert values == [10, 20, 5]  # in time order
    properties, _ = validate_properties("percentage", {"rate": "10", "free_units_per_events": 1})
    # the first event (10) is free: 10 % of 20 + 10 % of 5 = 2.5
    assert (
        charge_amount(
            "percentage", properties, D(35), currency="EUR", events_count=3, event_values=values
        )
        == 250
    )
