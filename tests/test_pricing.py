# ruff: noqa: E501  (the tables read best one case a line)
"""Charge models: exact amounts in minor units (worked out by hand in the comments) and Lago's
validation codes for charge properties."""

from decimal import Decimal

import pytest

from billing.pricing import (
    CHARGE_MODELS,
    charge_amount,
    default_properties,
    needs_event_values,
    validate_properties,
)

D = Decimal

TIERS = [
    {"from_value": 0, "to_value": 100, "per_unit_amount": "1", "flat_amount": "2"},
    {"from_value": 101, "to_value": 200, "per_unit_amount": "0.5", "flat_amount": "3"},
    {"from_value": 201, "to_value": None, "per_unit_amount": "0.1", "flat_amount": "0"},
]
GRADUATED = {"graduated_ranges": TIERS}
VOLUME = {"volume_ranges": TIERS}
PACKAGE = {"amount": "5", "package_size": 100, "free_units": 100}
PERCENT = {"rate": "1.2", "fixed_amount": "0.1"}

# fmt: off
AMOUNTS = [
    # standard: units × amount, rounded once at the end, half up
    ("standard", {"amount": "0.5"}, "3", "EUR", 0, 150),          # 1.50
    ("standard", {"amount": "1"}, "2.345", "EUR", 0, 235),        # 2.345 → 2.35
    ("standard", {"amount": "1"}, "2.3449", "EUR", 0, 234),
    ("standard", {"amount": "0.5"}, "3", "JPY", 0, 2),            # ¥1.5 → ¥2
    ("standard", {"amount": "0.0015"}, "1", "KWD", 0, 2),         # 1.5 fils → 2
    ("standard", {"amount": "0.001"}, "1234", "KWD", 0, 1234),    # 1.234 KWD
    ("standard", {"amount": "0.5"}, "0", "EUR", 0, 0),
    # graduated: [0,100] 1/u +2 · [101,200] 0.5/u +3 · [201,∞) 0.1/u
    ("graduated", GRADUATED, "0", "EUR", 0, 0),                   # no tier reached, no flat fee
    ("graduated", GRADUATED, "50", "EUR", 0, 5200),               # 50 + 2
    ("graduated", GRADUATED, "100", "EUR", 0, 10200),             # 100 + 2, tier 2 not reached
    ("graduated", GRADUATED, "100.5", "EUR", 0, 10525),           # 102 + 0.5×0.5 + 3
    ("graduated", GRADUATED, "150", "EUR", 0, 13000),             # 102 + 50×0.5 + 3
    ("graduated", GRADUATED, "250", "EUR", 0, 16000),             # 102 + 53 + 50×0.1
    ("graduated", GRADUATED, "250", "JPY", 0, 160),
    # KWD: [0,10] 0.0105/u · [11,∞) 0.001/u +0.5 → 0.105 + 0.002 + 0.5 = 0.607
    ("graduated", {"graduated_ranges": [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "0.0105", "flat_amount": "0"},
        {"from_value": 11, "to_value": None, "per_unit_amount": "0.001", "flat_amount": "0.5"},
    ]}, "12", "KWD", 0, 607),
    # volume: the tier holding the total prices every unit
    ("volume", VOLUME, "0", "EUR", 0, 0),
    ("volume", VOLUME, "50", "EUR", 0, 5200),                     # 50×1 + 2
    ("volume", VOLUME, "100", "EUR", 0, 10200),                   # 100×1 + 2
    ("volume", VOLUME, "100.5", "EUR", 0, 5325),                  # ceil → tier 2: 100.5×0.5 + 3
    ("volume", VOLUME, "150", "EUR", 0, 7800),                    # 75 + 3
    ("volume", VOLUME, "250", "EUR", 0, 2500),                    # 25 + 0
    # package: 5 per 100 units, first 100 free (Lago's guide: 201 units cost 10)
    ("package", PACKAGE, "201", "EUR", 0, 1000),
    ("package", PACKAGE, "200", "EUR", 0, 500),
    ("package", PACKAGE, "100", "EUR", 0, 0),
    ("package", PACKAGE, "100.5", "EUR", 0, 500),                 # a started package is whole
    ("package", PACKAGE, "0", "EUR", 0, 0),
    ("package", {"amount": "100", "package_size": 10, "free_units": 0}, "11", "JPY", 0, 200),
    # percentage on the aggregate: 1.2 % + 0.10 per event
    ("percentage", PERCENT, "1000", "EUR", 4, 1240),              # 12 + 0.4
    ("percentage", PERCENT, "0", "EUR", 3, 0),                    # Lago: no fixed fee without units
    ("percentage", {"rate": "1.2", "free_units_per_total_aggregation": "500"}, "1000", "EUR", 4, 600),  # 1.2 % of 500
    ("percentage", {"rate": "1.2", "free_units_per_total_aggregation": "500"}, "400", "EUR", 4, 0),
    ("percentage", {"rate": "2.5"}, "1234", "JPY", 1, 31),        # ¥30.85
    ("percentage", {"rate": "0.25"}, "12.345", "KWD", 1, 31),     # 0.0308625 KWD
]
# fmt: on


@pytest.mark.parametrize(
    ("model", "properties", "units", "currency", "events", "expected"), AMOUNTS
)
def test_charge_amount(model, properties, units, currency, events, expected):
    normalized, errors = validate_properties(model, properties)
    assert errors == {}
    assert (
        charge_amount(model, normalized, D(units), currency=currency, events_count=events)
        == expected
    )


# fmt: off
PER_EVENT = [
    # Lago's guide: the first 3 events or $500 are free; the 4th ($50) pays 0.10 + 1.2 % of 50
    ({"rate": "1.2", "fixed_amount": "0.1", "free_units_per_events": 3, "free_units_per_total_aggregation": "500"}, ["200", "100", "100", "50"], 70),
    # the free amount runs out first: 300 free, then 100 of the 2nd event pays, and the 3rd
    ({"rate": "1.2", "fixed_amount": "0.1", "free_units_per_total_aggregation": "500"}, ["300", "300", "100"], 260),  # (1.2+0.1)×2
    # an event filling the free amount exactly pays its fixed fee (as Lago)
    ({"rate": "1.2", "fixed_amount": "0.1", "free_units_per_total_aggregation": "300"}, ["300", "100"], 140),  # 0.1 + 1.3
    # the event count runs out first, with free amount left
    ({"rate": "1.2", "fixed_amount": "0.1", "free_units_per_events": 1, "free_units_per_total_aggregation": "1000"}, ["100", "100"], 130),
    # free events only
    ({"rate": "1.2", "fixed_amount": "0.1", "free_units_per_events": 2}, ["100", "100", "100"], 130),
    # per-transaction min 0.5 / max 2 on 1 %: 0.1→0.5, 1, 10→2
    ({"rate": "1", "per_transaction_min_amount": "0.5", "per_transaction_max_amount": "2"}, ["10", "100", "1000"], 350),
    # min applies to rate + fixed: 1 % of 10 + 0.2 = 0.3 → 0.5
    ({"rate": "1", "fixed_amount": "0.2", "per_transaction_min_amount": "0.5"}, ["10"], 50),
    # no events, nothing to pay
    ({"rate": "1", "per_transaction_min_amount": "0.5"}, [], 0),
]
# fmt: on


@pytest.mark.parametrize(("properties", "values", "expected"), PER_EVENT)
def test_percentage_per_event(properties, values, expected):
    normalized, errors = validate_properties("percentage", properties)
    assert errors == {}
    assert needs_event_values("percentage", normalized)
    event_values = [D(value) for value in values]
    units = sum(event_values, D(0))
    amount = charge_amount(
        "percentage",
        normalized,
        units,
        currency="EUR",
        events_count=len(values),
        event_values=event_values,
    )
    assert amount == expected


def test_percentage_without_needed_event_values_is_an_error():
    with pytest.raises(ValueError):
        charge_amount(
            "percentage", {"rate": "1", "free_units_per_events": 2}, D(10), currency="EUR"
        )


@pytest.mark.parametrize(
    ("model", "properties", "needed"),
    [
        ("standard", {"amount": "1"}, False),
        ("percentage", {"rate": "1"}, False),
        ("percentage", {"rate": "1", "fixed_amount": "0.1"}, False),
        ("percentage", {"rate": "1", "free_units_per_total_aggregation": "10"}, False),
        (
            "percentage",
            {"rate": "1", "fixed_amount": "0.1", "free_units_per_total_aggregation": "10"},
            True,
        ),
        ("percentage", {"rate": "1", "free_units_per_events": 1}, True),
        ("percentage", {"rate": "1", "per_transaction_max_amount": "3"}, True),
    ],
)
def test_needs_event_values(model, properties, needed):
    assert needs_event_values(model, properties) is needed


def ranges(*bounds, per_unit="1", flat="0"):
    return [
        {"from_value": low, "to_value": high, "per_unit_amount": per_unit, "flat_amount": flat}
        for low, high in bounds
    ]


# fmt: off
INVALID = [
    ("standard", {"amount": "-1"}, {"amount": ["invalid_amount"]}),
    ("standard", {"amount": 1}, {"amount": ["invalid_amount"]}),          # Lago takes strings only
    ("standard", {"amount": "abc"}, {"amount": ["invalid_amount"]}),
    ("standard", {"amount": "NaN"}, {"amount": ["invalid_amount"]}),
    ("standard", {"amount": None, "other": "1"}, {"amount": ["invalid_amount"]}),
    ("graduated", {"graduated_ranges": []}, {"graduated_ranges": ["missing_graduated_ranges"]}),
    ("graduated", {"graduated_ranges": None}, {"graduated_ranges": ["missing_graduated_ranges"]}),
    ("graduated", {"graduated_ranges": ranges((0, 100), (102, None))}, {"graduated_ranges": ["invalid_graduated_ranges"]}),   # gap
    ("graduated", {"graduated_ranges": ranges((0, 100), (100, None))}, {"graduated_ranges": ["invalid_graduated_ranges"]}),   # overlap
    ("graduated", {"graduated_ranges": ranges((1, 100), (101, None))}, {"graduated_ranges": ["invalid_graduated_ranges"]}),   # not from 0
    ("graduated", {"graduated_ranges": ranges((0, 100), (101, 200))}, {"graduated_ranges": ["invalid_graduated_ranges"]}),    # last not open
    ("graduated", {"graduated_ranges": ranges((0, None), (1, None))}, {"graduated_ranges": ["invalid_graduated_ranges"]}),    # open before last
    ("graduated", {"graduated_ranges": ranges((0, 0), (1, None))}, {"graduated_ranges": ["invalid_graduated_ranges"]}),       # empty tier
    ("graduated", {"graduated_ranges": ranges(("0", "10"), (11, None))}, {"graduated_ranges": ["invalid_graduated_ranges"]}), # bounds as strings
    ("graduated", {"graduated_ranges": ranges((0, 10), (11, None), per_unit="-1")}, {"per_unit_amount": ["invalid_amount"]}),
    ("graduated", {"graduated_ranges": ranges((0, None), flat=2)}, {"flat_amount": ["invalid_amount"]}),
    ("volume", {"volume_ranges": []}, {"volume_ranges": ["missing_volume_ranges"]}),
    ("volume", {"volume_ranges": ranges((0, 100), (102, None))}, {"volume_ranges": ["invalid_volume_ranges"]}),
    ("volume", {"volume_ranges": ranges((0, 100), (50, None), per_unit="-0.5")}, {"per_unit_amount": ["invalid_amount"], "volume_ranges": ["invalid_volume_ranges"]}),
    ("package", {"amount": "5", "package_size": 0, "free_units": 0}, {"package_size": ["invalid_package_size"]}),
    ("package", {"amount": "5", "package_size": "10", "free_units": 0}, {"package_size": ["invalid_package_size"]}),
    ("package", {"amount": "5", "package_size": 10, "free_units": -1}, {"free_units": ["invalid_free_units"]}),
    ("package", {"amount": "-5", "package_size": 10}, {"amount": ["invalid_amount"]}),
    ("percentage", {"fixed_amount": "1"}, {"rate": ["invalid_rate"]}),
    ("percentage", {"rate": "-1"}, {"rate": ["invalid_rate"]}),
    ("percentage", {"rate": "1", "fixed_amount": "-0.1"}, {"fixed_amount": ["invalid_fixed_amount"]}),
    ("percentage", {"rate": "1", "free_units_per_events": 0}, {"free_units_per_events": ["invalid_free_units_per_events"]}),
    ("percentage", {"rate": "1", "free_units_per_events": "3"}, {"free_units_per_events": ["invalid_free_units_per_events"]}),
    ("percentage", {"rate": "1", "free_units_per_total_aggregation": "-1"}, {"free_units_per_total_aggregation": ["invalid_free_units_per_total_aggregation"]}),
    ("percentage", {"rate": "1", "per_transaction_min_amount": "abc"}, {"per_transaction_min_amount": ["invalid_amount"]}),
    ("percentage", {"rate": "1", "per_transaction_min_amount": "5", "per_transaction_max_amount": "1"}, {"per_transaction_max_amount": ["per_transaction_max_lower_than_per_transaction_min"]}),
    ("dynamic", {}, {"charge_model": ["value_is_invalid"]}),
    ("standard", ["1"], {"properties": ["value_is_invalid"]}),
]
# fmt: on


@pytest.mark.parametrize(("model", "properties", "errors"), INVALID)
def test_invalid_properties(model, properties, errors):
    assert validate_properties(model, properties)[1] == errors


@pytest.mark.parametrize("model", CHARGE_MODELS)
@pytest.mark.parametrize("properties", [None, {}])
def test_missing_properties_get_lagos_defaults(model, properties):
    normalized, errors = validate_properties(model, properties)
    assert errors == {}
    assert normalized == {key: value for key, value in default_properties(model).items()}
    assert charge_amount(model, normalized, D(10), currency="EUR", events_count=1) == 0


def test_normalized_properties_keep_the_models_keys_and_fill_defaults():
    normalized, errors = validate_properties(
        "package", {"amount": "0.5", "package_size": 10, "rate": "3", "grouped_by": ["x"]}
    )
    assert errors == {}
    assert normalized == {"amount": "0.5", "package_size": 10, "free_units": 0}
    normalized, _ = validate_properties("standard", {"amount": "0.50", "free_units": 3})
    assert normalized == {"amount": "0.50"}
    normalized, _ = validate_properties(
        "percentage", {"rate": "1.5", "free_units_per_events": 2, "amount": "1"}
    )
    assert normalized == {"rate": "1.5", "free_units_per_events": 2}
