"""Charge models: validating a charge's `properties` and pricing aggregated units.

Amounts are computed in Decimal major units and rounded once, at the end, to the currency's minor
units (`money.to_minor_units`). Semantics mirror getlago/lago-api ``Charges::ChargeModels::*`` and
``Charges::Validators::*``:

- ``standard``: units × ``amount``.
- ``graduated``: ranges ``[{from_value, to_value, per_unit_amount, flat_amount}]``; the first
  starts at 0, each next one at the previous ``to_value + 1``, the last has ``to_value: null``.
  A range covers the units above the previous ``to_value`` up to its own ``to_value`` (so with
  decimal units ``[0,100]`` then ``[101,200]`` bills 100.5 units as 100 + 0.5). Each range prices
  its own slice; its ``flat_amount`` is added once the range holds any units.
- ``volume``: same ranges under ``volume_ranges``; the range holding the total (Lago matches
  ``from_value <= ceil(units) <= … units <= to_value``) prices every unit, plus its flat amount.
  Zero units cost nothing.
- ``package``: ``ceil((units - free_units) / package_size)`` packages × ``amount``; a started
  package is billed whole, nothing when all units are free.
- ``percentage``: ``rate`` percent of the units (typically a summed amount) plus ``fixed_amount``
  per paid event. Free units end at whichever limit comes first, event by event in time order
  (Lago's guide: "the first 3 events or $500 are free"): ``free_units_per_events`` events, and
  ``free_units_per_total_aggregation`` of value — an event crossing that amount pays the rate on
  its part above it and its fixed fee. As in Lago, an event that fills the free amount exactly is
  charged its fixed fee. ``per_transaction_min_amount`` / ``per_transaction_max_amount`` clamp
  each paid event's (rate + fixed) amount; free events cost nothing. Without per-event limits the
  aggregate is used directly (Lago: no fixed fee at all when the units are zero).

Validation mirrors Lago's codes: amounts must be non-negative decimal *strings*
(``Validators::DecimalAmountService`` refuses JSON numbers), counts integers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_CEILING, Decimal
from typing import Any

from billing.money import parse_decimal, to_minor_units

CHARGE_MODELS = ("standard", "graduated", "volume", "package", "percentage")

_RANGE_KEYS = ("from_value", "to_value", "per_unit_amount", "flat_amount")
_PERCENTAGE_KEYS = (
    "rate",
    "fixed_amount",
    "free_units_per_events",
    "free_units_per_total_aggregation",
    "per_transaction_min_amount",
    "per_transaction_max_amount",
)
_ZERO = Decimal(0)


def default_properties(charge_model: str) -> dict[str, Any]:
    """What Lago stores when a charge comes without properties (BuildDefaultPropertiesService)."""
    if charge_model in ("graduated", "volume"):
        open_range = {"from_value": 0, "to_value": None, "per_unit_amount": "0", "flat_amount": "0"}
        return {f"{charge_model}_ranges": [open_range]}
    if charge_model == "package":
        return {"amount": "0", "package_size": 1, "free_units": 0}
    if charge_model == "percentage":
        return {"rate": "0"}
    return {"amount": "0"}


def validate_properties(
    charge_model: str, properties: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Normalized properties (only the model's keys, defaults filled in) and Lago-style errors."""
    errors: dict[str, list[str]] = {}

    def add(key: str, code: str) -> None:
        codes = errors.setdefault(key, [])
        if code not in codes:
            codes.append(code)

    if charge_model not in CHARGE_MODELS:
        add("charge_model", "value_is_invalid")
        return {}, errors
    if properties is not None and not isinstance(properties, Mapping):
        add("properties", "value_is_invalid")
        return {}, errors
    given = dict(properties or {}) or default_properties(charge_model)

    if charge_model == "standard":
        normalized: dict[str, Any] = {"amount": given.get("amount")}
        if not _valid_amount(normalized["amount"]):
            add("amount", "invalid_amount")
        return normalized, errors

    if charge_model in ("graduated", "volume"):
        key = f"{charge_model}_ranges"
        ranges = given.get(key)
        if not isinstance(ranges, list) or not ranges:
            add(key, f"missing_{key}")
            return {key: ranges if isinstance(ranges, list) else []}, errors
        normalized_ranges = []
        next_from = 0
        for index, item in enumerate(ranges):
            tier = {k: item.get(k) for k in _RANGE_KEYS} if isinstance(item, Mapping) else {}
            normalized_ranges.append(tier)
            for amount_key in ("per_unit_amount", "flat_amount"):
                if not _valid_amount(tier.get(amount_key)):
                    add(amount_key, "invalid_amount")
            if not _valid_bounds(tier, is_last=index == len(ranges) - 1, expected_from=next_from):
                add(key, f"invalid_{key}")
            to_value = tier.get("to_value")
            next_from = (to_value + 1) if isinstance(to_value, int) else 1
        return {key: normalized_ranges}, errors

    if charge_model == "package":
        normalized = {
            "amount": given.get("amount"),
            "package_size": given.get("package_size"),
            "free_units": given.get("free_units", 0),
        }
        if not _valid_amount(normalized["amount"]):
            add("amount", "invalid_amount")
        size = normalized["package_size"]
        if not (_is_int(size) and size > 0):
            add("package_size", "invalid_package_size")
        free = normalized["free_units"]
        if not (_is_int(free) and free >= 0):
            add("free_units", "invalid_free_units")
        return normalized, errors

    normalized = {key: given[key] for key in _PERCENTAGE_KEYS if key in given}
    if not _valid_amount(given.get("rate")):
        add("rate", "invalid_rate")
    if given.get("fixed_amount") is not None and not _valid_amount(given["fixed_amount"]):
        add("fixed_amount", "invalid_fixed_amount")
    free_events = given.get("free_units_per_events")
    if free_events is not None and not (_is_int(free_events) and free_events > 0):
        add("free_units_per_events", "invalid_free_units_per_events")
    free_total = given.get("free_units_per_total_aggregation")
    if free_total is not None and not _valid_amount(free_total):
        add("free_units_per_total_aggregation", "invalid_free_units_per_total_aggregation")
    limits = {}
    for key in ("per_transaction_min_amount", "per_transaction_max_amount"):
        if given.get(key) in (None, ""):
            continue
        if _valid_amount(given[key]):
            limits[key] = Decimal(given[key])
        else:
            add(key, "invalid_amount")
    if (
        len(limits) == 2
        and limits["per_transaction_min_amount"] > limits["per_transaction_max_amount"]
    ):
        add("per_transaction_max_amount", "per_transaction_max_lower_than_per_transaction_min")
    return normalized, errors


def needs_event_values(charge_model: str, properties: Mapping[str, Any]) -> bool:
    """Whether `charge_amount` needs each event's value, not just the aggregate (percentage with
    free events, per-transaction limits, or a free amount combined with a fixed fee)."""
    if charge_model != "percentage":
        return False
    if properties.get("free_units_per_events"):
        return True
    if properties.get("per_transaction_min_amount") or properties.get("per_transaction_max_amount"):
        return True
    free_total = _decimal(properties.get("free_units_per_total_aggregation"))
    return free_total > 0 and _decimal(properties.get("fixed_amount")) > 0


def charge_amount(
    charge_model: str,
    properties: Mapping[str, Any],
    units: Decimal,
    *,
    currency: str,
    events_count: int = 0,
    event_values: Sequence[Decimal] | None = None,
) -> int:
    """The charge's amount in minor units of `currency` for `units` aggregated units.

    `properties` must have passed `validate_properties`. `event_values` (each event's value, in
    time order) is required when `needs_event_values` says so.
    """
    return to_minor_units(
        charge_amount_decimal(
            charge_model,
            properties,
            units,
            events_count=events_count,
            event_values=event_values,
        ),
        currency,
    )


def charge_amount_decimal(
    charge_model: str,
    properties: Mapping[str, Any],
    units: Decimal,
    *,
    events_count: int = 0,
    event_values: Sequence[Decimal] | None = None,
) -> Decimal:
    """`charge_amount` in major units, before rounding (for unit prices and breakdowns)."""
    if charge_model == "standard":
        return units * _decimal(properties.get("amount"))
    if charge_model == "graduated":
        return _graduated(properties["graduated_ranges"], units)
    if charge_model == "volume":
        return _volume(properties["volume_ranges"], units)
    if charge_model == "package":
        return _package(properties, units)
    if charge_model == "percentage":
        if needs_event_values(charge_model, properties):
            if event_values is None:
                raise ValueError("this percentage charge needs each event's value")
            return _percentage_per_event(properties, event_values)
        return _percentage(properties, units, events_count)
    raise ValueError(f"unknown charge model {charge_model!r}")


def _graduated(ranges: Sequence[Mapping[str, Any]], units: Decimal) -> Decimal:
    total = _ZERO
    below = _ZERO  # the units the previous ranges hold at most (their to_value)
    for tier in ranges:
        upper = tier.get("to_value")
        slice_units = (units if upper is None else min(units, Decimal(upper))) - below
        if slice_units > 0:
            total += slice_units * _decimal(tier.get("per_unit_amount"))
            total += _decimal(tier.get("flat_amount"))
        if upper is None or upper >= units:
            break
        below = Decimal(upper)
    return total


def _volume(ranges: Sequence[Mapping[str, Any]], units: Decimal) -> Decimal:
    if units <= 0:
        return _ZERO
    ceiling = units.to_integral_value(rounding=ROUND_CEILING)
    for tier in sorted(ranges, key=lambda tier: tier["from_value"]):
        upper = tier.get("to_value")
        if tier["from_value"] <= ceiling and (upper is None or units <= upper):
            per_unit = _decimal(tier.get("per_unit_amount"))
            return units * per_unit + _decimal(tier.get("flat_amount"))
    return _ZERO


def _package(properties: Mapping[str, Any], units: Decimal) -> Decimal:
    paid_units = units - Decimal(properties.get("free_units") or 0)
    if paid_units <= 0:
        return _ZERO
    size = Decimal(properties["package_size"])
    packages = (paid_units / size).to_integral_value(rounding=ROUND_CEILING)
    return packages * _decimal(properties.get("amount"))


def _percentage(properties: Mapping[str, Any], units: Decimal, events_count: int) -> Decimal:
    rate = _decimal(properties.get("rate"))
    paid_units = max(units - _decimal(properties.get("free_units_per_total_aggregation")), _ZERO)
    fixed = _decimal(properties.get("fixed_amount"))
    fixed_total = fixed * events_count if units != 0 else _ZERO
    return paid_units * rate / 100 + fixed_total


def _percentage_per_event(properties: Mapping[str, Any], values: Sequence[Decimal]) -> Decimal:
    rate = _decimal(properties.get("rate"))
    fixed = _decimal(properties.get("fixed_amount"))
    free_events = int(properties.get("free_units_per_events") or 0)
    free_amount = _decimal(properties.get("free_units_per_total_aggregation"))
    minimum = parse_decimal(properties.get("per_transaction_min_amount") or None)
    maximum = parse_decimal(properties.get("per_transaction_max_amount") or None)

    free = free_events > 0 or free_amount > 0
    total = _ZERO
    for index, value in enumerate(values):
        if free and free_events and index >= free_events:
            free = False
        if free:
            if not free_amount:
                continue  # within the free events, no free amount: the whole event is free
            if free_amount > value:
                free_amount -= value
                continue
            value -= free_amount
            free = False
        amount = value * rate / 100 + fixed
        if minimum is not None and amount < minimum:
            amount = minimum
        if maximum is not None and amount > maximum:
            amount = maximum
        total += amount
    return total


def _valid_amount(value: object) -> bool:
    """Lago's DecimalAmountService#valid_amount?: a finite, non-negative decimal string."""
    if not isinstance(value, str):
        return False
    parsed = parse_decimal(value)
    return parsed is not None and parsed >= 0


def _valid_bounds(tier: Mapping[str, Any], *, is_last: bool, expected_from: int) -> bool:
    """Lago's RangeBoundsValidator: contiguous integer ranges from 0, open-ended last range."""
    from_value, to_value = tier.get("from_value"), tier.get("to_value")
    if not _is_int(from_value) or from_value != expected_from:
        return False
    if is_last:
        return to_value is None
    return _is_int(to_value) and to_value > from_value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decimal(value: object) -> Decimal:
    parsed = parse_decimal(value) if value is not None else None
    return parsed if parsed is not None else _ZERO
