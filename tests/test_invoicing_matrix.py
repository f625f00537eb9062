"""The period close over the whole matrix the issue names: every interval × calendar and
anniversary billing × five time zones (DST changes, +14 h, month ends, Feb 29), with a frozen
clock. Expectations are computed here from local calendar dates (zoneinfo and date arithmetic
only), not from the product's period code: nothing before the period's local end, exactly one
invoice at it (rerun: still one), bounds at local midnight, the base fee prorated by local days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from billing.services import invoicing
from tests.factories import invoices_of
from tests.test_invoicing import CLOCK_START, close, fee_amounts, subscribe

#: the invoicing tests' start of the `clock` fixture, used here too
__all__ = ["CLOCK_START"]

ZONES = ["UTC", "Europe/Paris", "America/Los_Angeles", "Asia/Tokyo", "Pacific/Kiritimati"]
AMOUNT = 1000  # cents a full period


def add_months(day: date, months: int) -> date:
    """`day` + months, clamped to the month's end (Jan 31 + 1 → Feb 29 in 2024)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


MONTHS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "yearly": 12}


def calendar_period(interval: str, start: date) -> tuple[date, date]:
    """The calendar period holding `start`: its first and next first day."""
    if interval == "weekly":
        first = start - timedelta(days=start.weekday())  # Monday
        return first, first + timedelta(days=7)
    months = MONTHS[interval]
    first = date(start.year, (start.month - 1) // months * months + 1, 1)
    return first, add_months(first, months)


def expected(interval: str, billing_time: str, start: date) -> tuple[date, int]:
    """The first period's local end (exclusive) and its base fee in cents."""
    if billing_time == "anniversary":
        if interval == "weekly":
            return start + timedelta(days=7), AMOUNT
        return add_months(start, MONTHS[interval]), AMOUNT
    first, end = calendar_period(interval, start)
    days, total = (end - start).days, (end - first).days
    return end, (AMOUNT * days * 2 + total) // (total * 2)  # half up


def local_midnight(day: date, zone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


#: starts: a calendar start on March 1st 2024 (the month of both DST changes in Europe and the
#: US, a leap February before it) and an anniversary on January 31st (month ends, Feb 29)
STARTS = {"calendar": date(2024, 3, 1), "anniversary": date(2024, 1, 31)}


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("billing_time", ["calendar", "anniversary"])
@pytest.mark.parametrize("interval", ["weekly", "monthly", "quarterly", "semiannual", "yearly"])
def test_first_period_closes_once_at_its_local_end(clock, org, interval, billing_time, zone):  # noqa: F811
    start_day = STARTS[billing_time]
    end_day, amount = expected(interval, billing_time, start_day)
    start, end = local_midnight(start_day, zone), local_midnight(end_day, zone)
    subscribe(org, clock, start.isoformat(), timezone=zone, interval=interval,
              billing_time=billing_time)  # fmt: skip

    invoicing.close_periods(end - invoicing._INSTANT)
    assert invoices_of(org) == []  # not a microsecond early
    assert close(clock, end.isoformat(), org) == 1
    assert close(clock, (end + timedelta(minutes=1)).isoformat(), org) == 0  # rerun: nothing

    [invoice] = invoices_of(org)
    link = invoice.invoice_subscriptions[0]
    assert (link.from_datetime, link.to_datetime) == (start, end)
    assert fee_amounts(invoice) == [("subscription", amount)]
    assert invoice.issuing_date == end_day  # issued on the local day the period ended
