"""Events and current usage as Lago's v1 API shows them (lago-api.md §5 and §9)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from billing.timeutil import as_utc, iso_utc

if TYPE_CHECKING:
    from billing.services.events import StoredEvent
    from billing.services.usage import ChargeUsage, FilterUsage, UsageSummary


def iso_utc_millis(value: datetime) -> str:
    """Lago's event timestamp: millisecond precision, `Z` suffix."""
    value = as_utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def units_text(value: Decimal) -> str:
    """Usage units as Lago's decimal strings: `"3.0"`, `"2.5"`, never an exponent."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0")
        return text + "0" if text.endswith(".") else text
    return text + ".0"


def serialize_event(event: StoredEvent) -> dict[str, Any]:
    amount = event.precise_total_amount_cents
    return {
        "lago_id": str(event.lago_id),
        "transaction_id": event.transaction_id,
        "lago_customer_id": str(event.customer_lago_id) if event.customer_lago_id else None,
        "code": event.code,
        "timestamp": iso_utc_millis(event.timestamp),
        "precise_total_amount_cents": None if amount is None else format(amount, "f"),
        "properties": event.properties,
        "lago_subscription_id": (
            str(event.subscription_lago_id) if event.subscription_lago_id else None
        ),
        "external_subscription_id": event.external_subscription_id,
        "created_at": iso_utc(event.created_at),
    }


def serialize_events(events: Iterable[StoredEvent]) -> list[dict[str, Any]]:
    """`serialize_event` of each event. A batch's events share their creation time and, when sent
    without one, their timestamp: each such datetime object is formatted once."""
    formatted: dict[int, tuple[datetime, str]] = {}

    def text(value: datetime, format_: Callable[[datetime], str | None]) -> str:
        # keyed by identity (and the object kept alive with its text, so the id stays its own)
        cached = formatted.get(id(value))
        if cached is None or cached[0] is not value:
            cached = formatted[id(value)] = (value, format_(value) or "")
        return cached[1]

    answer = []
    for event in events:
        amount = event.precise_total_amount_cents
        answer.append(
            {
                "lago_id": str(event.lago_id),
                "transaction_id": event.transaction_id,
                "lago_customer_id": (
                    str(event.customer_lago_id) if event.customer_lago_id else None
                ),
                "code": event.code,
                "timestamp": text(event.timestamp, iso_utc_millis),
                "precise_total_amount_cents": None if amount is None else format(amount, "f"),
                "properties": event.properties,
                "lago_subscription_id": (
                    str(event.subscription_lago_id) if event.subscription_lago_id else None
                ),
                "external_subscription_id": event.external_subscription_id,
                "created_at": text(event.created_at, iso_utc),
            }
        )
    return answer


def _serialize_filter(usage: FilterUsage) -> dict[str, Any]:
    return {
        "units": units_text(usage.units),
        "total_aggregated_units": units_text(usage.total_aggregated_units),
        "amount_cents": usage.amount_cents,
        "events_count": usage.events_count,
        "invoice_display_name": usage.invoice_display_name,
        "values": usage.values,
    }


def _serialize_charge_usage(usage: ChargeUsage, currency: str) -> dict[str, Any]:
    charge, metric = usage.charge, usage.billable_metric
    return {
        "units": units_text(usage.units),
        "total_aggregated_units": units_text(usage.total_aggregated_units),
        "events_count": usage.events_count,
        "amount_cents": usage.amount_cents,
        "amount_currency": currency,
        "pricing_unit_details": None,
        "charge": {
            "lago_id": str(charge.lago_id),
            "code": charge.code,
            "charge_model": charge.charge_model,
            "invoice_display_name": charge.invoice_display_name,
        },
        "billable_metric": {
            "lago_id": str(metric.lago_id),
            "name": metric.name,
            "code": metric.code,
            "aggregation_type": metric.aggregation_type,
        },
        "filters": [_serialize_filter(item) for item in usage.filters],
        "grouped_usage": [],
    }


def serialize_customer_usage(summary: UsageSummary) -> dict[str, Any]:
    """Lago's customer_usage object for the current period (lago-api.md §5)."""
    return {
        "from_datetime": iso_utc(summary.period.start),
        "to_datetime": iso_utc(summary.period.inclusive_end),
        "issuing_date": summary.issuing_date.isoformat(),
        "lago_invoice_id": None,
        "currency": summary.currency,
        "amount_cents": summary.amount_cents,
        "taxes_amount_cents": summary.taxes_amount_cents,
        "total_amount_cents": summary.total_amount_cents,
        "charges_usage": [
            _serialize_charge_usage(usage, summary.currency) for usage in summary.charges
        ],
    }
