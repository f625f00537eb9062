"""Billing periods of a subscription, computed in the customer's timezone.

Periods are half-open ``[start, end)``, stored as UTC-aware datetimes, and every boundary is a
*local midnight* of the customer's timezone, so a month in Europe/Paris runs from
``2024-02-29T23:00Z`` to ``2024-03-31T22:00Z`` although the UTC offset changes inside it.
The API shows Lago's inclusive end (`Period.inclusive_end`, ``…23:59:59Z``).

Billing time (Lago, ``Subscriptions::Dates::*Service``):

- ``calendar``: boundaries on calendar units in the customer's zone — weeks start on Monday,
  months on the 1st, quarters in January/April/July/October, semesters in January/July, years on
  January 1st. The first period is partial: it runs from the subscription's start to the next
  boundary.
- ``anniversary``: periods start on the local date of the subscription start. Month-based
  intervals keep that day of month, clamped to shorter months (anchor Jan 31 → Feb 29 → Mar 31 →
  Apr 30); weekly periods start on the same weekday. (Lago clamps the day the same way in
  ``DatesService#build_date``; we always return to the anchor day, so consecutive periods never
  overlap or leave a gap.)

The first period starts at local midnight of the subscription's start date, not at the start
instant: Lago's ``DatesService#from_datetime`` clamps the first period to
``started_at.in_time_zone(tz).beginning_of_day``, and its base-fee proration counts that whole day.
(Lago's *charges* window starts at ``started_at`` itself; an event belongs to the subscription
active at its timestamp, so callers that select events by subscription get the same result.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.timeutil import as_utc

INTERVALS = ("weekly", "monthly", "quarterly", "semiannual", "yearly")
BILLING_TIMES = ("calendar", "anniversary")

_MONTHS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "yearly": 12}


@dataclass(frozen=True)
class Period:
    """A half-open billing period ``[start, end)`` in UTC."""

    start: datetime  #: UTC-aware, inclusive (a local midnight of the customer's zone)
    end: datetime  #: UTC-aware, exclusive

    @property
    def inclusive_end(self) -> datetime:
        """The last second of the period, as Lago shows it (``…23:59:59Z``)."""
        return self.end - timedelta(seconds=1)


def local_date(at: datetime, timezone: str) -> date:
    """The calendar date of the instant `at` in `timezone` (naive datetimes are UTC)."""
    return as_utc(at).astimezone(ZoneInfo(timezone)).date()


def local_midnight(day: date, timezone: str) -> datetime:
    """The first instant of `day` in `timezone`, in UTC.

    Where midnight does not exist (a DST jump at 00:00), fold=0 maps it with the offset before the
    jump, which is exactly the instant the day begins; where it happens twice, the first is taken.
    """
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def local_days(period: Period, timezone: str) -> list[date]:
    """The local calendar days the period covers (a day partly covered counts)."""
    first = local_date(period.start, timezone)
    last = local_date(period.end - timedelta(microseconds=1), timezone)
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def period_containing(
    at: datetime, *, interval: str, billing_time: str, started_at: datetime, timezone: str
) -> Period:
    """The billing period containing `at`; an instant before `started_at` gives the first period."""
    _check(interval, billing_time)
    anchor = local_date(started_at, timezone)
    day = max(local_date(at, timezone), anchor)
    start, end = _bounds(day, interval, billing_time, anchor)
    start = max(start, anchor)  # the first calendar period is partial
    return Period(local_midnight(start, timezone), local_midnight(end, timezone))


def next_period(
    period: Period, *, interval: str, billing_time: str, started_at: datetime, timezone: str
) -> Period:
    """The period that follows `period`."""
    return period_containing(
        period.end,
        interval=interval,
        billing_time=billing_time,
        started_at=started_at,
        timezone=timezone,
    )


def full_period_of(
    period: Period, *, interval: str, billing_time: str, started_at: datetime, timezone: str
) -> Period:
    """The full-length period `period` is part of (a partial first calendar period → its whole
    calendar month/week/…); the basis of base-fee proration."""
    _check(interval, billing_time)
    anchor = local_date(started_at, timezone)
    start, end = _bounds(local_date(period.start, timezone), interval, billing_time, anchor)
    return Period(local_midnight(start, timezone), local_midnight(end, timezone))


def proration(period: Period, full_period: Period, *, timezone: str | None = None) -> Decimal:
    """Share of `full_period` that `period` covers, by days as Lago prorates (15 of 31 days).

    With `timezone` the local days are counted exactly. Without it the days are derived from the
    UTC durations, which is exact for periods built by this module (their bounds are local
    midnights; a DST change moves them by at most two hours), and counts a partly covered last day.
    """
    if timezone is not None:
        days, full_days = len(local_days(period, timezone)), len(local_days(full_period, timezone))
    else:
        days, full_days = _day_count(period), _day_count(full_period)
    if full_days == 0:
        return Decimal(0)
    return Decimal(days) / Decimal(full_days)


def _day_count(period: Period) -> int:
    seconds = (period.end - period.start).total_seconds() - 2 * 3600
    return max(0, -int(-seconds // 86400))  # ceiling


def _check(interval: str, billing_time: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    if billing_time not in BILLING_TIMES:
        raise ValueError(f"unknown billing_time {billing_time!r}")


def _bounds(day: date, interval: str, billing_time: str, anchor: date) -> tuple[date, date]:
    """Local start (inclusive) and end (exclusive) dates of the unclipped period holding `day`."""
    if interval == "weekly":
        weekday = 0 if billing_time == "calendar" else anchor.weekday()
        start = day - timedelta(days=(day.weekday() - weekday) % 7)
        return start, start + timedelta(days=7)
    months = _MONTHS[interval]
    if billing_time == "calendar":
        index = (day.year * 12 + day.month - 1) // months * months
        start = date(index // 12, index % 12 + 1, 1)
        return start, _add_months(start, months, start.day)
    elapsed = (day.year - anchor.year) * 12 + day.month - anchor.month
    step = elapsed // months
    start = _add_months(anchor, step * months, anchor.day)
    if start > day:
        step -= 1
        start = _add_months(anchor, step * months, anchor.day)
    return start, _add_months(anchor, (step + 1) * months, anchor.day)


def _add_months(origin: date, months: int, day: int) -> date:
    """`origin` moved by `months`, on `day` clamped to the length of the target month."""
    index = origin.year * 12 + origin.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_first = date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_first - timedelta(days=1)).day
    return date(year, month, min(day, last_day))
