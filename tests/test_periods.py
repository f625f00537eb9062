# ruff: noqa: E501  (the tables read best one case a line)
"""Billing periods: calendar and anniversary boundaries at local midnight, across DST and odd
offsets, partial first periods and day-based proration."""

from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.periods import (
    Period,
    full_period_of,
    local_date,
    local_days,
    next_period,
    period_containing,
    proration,
)


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


# fmt: off
# (interval, billing_time, timezone, started_at, at, expected start, expected end) — UTC bounds,
# each the local midnight written in the comment.
CASES = [
    # UTC: first calendar month is partial, from the start date's midnight
    ("monthly", "calendar", "UTC", utc(2024, 1, 15, 10), utc(2024, 1, 20), utc(2024, 1, 15), utc(2024, 2, 1)),
    # leap February
    ("monthly", "calendar", "UTC", utc(2024, 1, 15, 10), utc(2024, 2, 10), utc(2024, 2, 1), utc(2024, 3, 1)),
    # Paris, March: +01:00 at the start, +02:00 at the end (switch on Mar 31)
    ("monthly", "calendar", "Europe/Paris", utc(2024, 1, 15), utc(2024, 3, 15), utc(2024, 2, 29, 23), utc(2024, 3, 31, 22)),
    # Paris, October: +02:00 → +01:00 on Oct 27
    ("monthly", "calendar", "Europe/Paris", utc(2024, 1, 15), utc(2024, 10, 10), utc(2024, 9, 30, 22), utc(2024, 10, 31, 23)),
    # an instant that is still the previous month in UTC but already April in Paris
    ("monthly", "calendar", "Europe/Paris", utc(2024, 1, 15), utc(2024, 3, 31, 22, 30), utc(2024, 3, 31, 22), utc(2024, 4, 30, 22)),
    # New York, March: -05:00 → -04:00 on Mar 10
    ("monthly", "calendar", "America/New_York", utc(2024, 1, 15), utc(2024, 3, 15), utc(2024, 3, 1, 5), utc(2024, 4, 1, 4)),
    # New York, November: -04:00 → -05:00 on Nov 3
    ("monthly", "calendar", "America/New_York", utc(2024, 1, 15), utc(2024, 11, 15), utc(2024, 11, 1, 4), utc(2024, 12, 1, 5)),
    # started 2024-03-01T02:00Z is Feb 29 21:00 in New York: a one-day first period
    ("monthly", "calendar", "America/New_York", utc(2024, 3, 1, 2), utc(2024, 3, 1, 3), utc(2024, 2, 29, 5), utc(2024, 3, 1, 5)),
    # Kolkata +05:30, quarter Apr–Jun
    ("quarterly", "calendar", "Asia/Kolkata", utc(2023, 12, 1), utc(2024, 5, 1), utc(2024, 3, 31, 18, 30), utc(2024, 6, 30, 18, 30)),
    # Chatham +13:45 in January: 2024-01-01T00:00Z is Monday 13:45 local
    ("weekly", "calendar", "Pacific/Chatham", utc(2023, 12, 1), utc(2024, 1, 1), utc(2023, 12, 31, 10, 15), utc(2024, 1, 7, 10, 15)),
    # Kiritimati +14: 2024-01-31T12:00Z is Feb 1 02:00 local
    ("monthly", "calendar", "Pacific/Kiritimati", utc(2023, 12, 1), utc(2024, 1, 31, 12), utc(2024, 1, 31, 10), utc(2024, 2, 29, 10)),
    # weekly calendar: weeks start on Monday; the first one is partial (Wed Jan 3 → Mon Jan 8)
    ("weekly", "calendar", "UTC", utc(2024, 1, 3, 15), utc(2024, 1, 4), utc(2024, 1, 3), utc(2024, 1, 8)),
    ("weekly", "calendar", "UTC", utc(2024, 1, 3, 15), utc(2024, 1, 10), utc(2024, 1, 8), utc(2024, 1, 15)),
    # weekly anniversary: Wednesday to Wednesday
    ("weekly", "anniversary", "UTC", utc(2024, 1, 3, 15), utc(2024, 1, 12), utc(2024, 1, 10), utc(2024, 1, 17)),
    # semiannual calendar: Jan/Jul semesters, partial first one
    ("semiannual", "calendar", "UTC", utc(2024, 3, 10), utc(2024, 4, 1), utc(2024, 3, 10), utc(2024, 7, 1)),
    ("semiannual", "calendar", "UTC", utc(2024, 3, 10), utc(2024, 8, 1), utc(2024, 7, 1), utc(2025, 1, 1)),
    ("semiannual", "anniversary", "UTC", utc(2024, 3, 10), utc(2024, 9, 10), utc(2024, 9, 10), utc(2025, 3, 10)),
    # quarterly calendar
    ("quarterly", "calendar", "UTC", utc(2024, 2, 10), utc(2024, 2, 11), utc(2024, 2, 10), utc(2024, 4, 1)),
    ("quarterly", "calendar", "UTC", utc(2024, 2, 10), utc(2024, 12, 31, 23, 59), utc(2024, 10, 1), utc(2025, 1, 1)),
    # yearly calendar
    ("yearly", "calendar", "UTC", utc(2024, 3, 10), utc(2024, 12, 1), utc(2024, 3, 10), utc(2025, 1, 1)),
    ("yearly", "calendar", "UTC", utc(2024, 3, 10), utc(2025, 6, 1), utc(2025, 1, 1), utc(2026, 1, 1)),
    # yearly anniversary from Feb 29: Feb 28 in common years, back to Feb 29 in leap years
    ("yearly", "anniversary", "UTC", utc(2024, 2, 29, 8), utc(2025, 3, 1), utc(2025, 2, 28), utc(2026, 2, 28)),
    ("yearly", "anniversary", "UTC", utc(2024, 2, 29, 8), utc(2027, 6, 1), utc(2027, 2, 28), utc(2028, 2, 29)),
    ("yearly", "anniversary", "UTC", utc(2024, 2, 29, 8), utc(2028, 3, 1), utc(2028, 2, 29), utc(2029, 2, 28)),
    # quarterly anniversary from Nov 30: Feb 28, then May 30 again
    ("quarterly", "anniversary", "UTC", utc(2024, 11, 30), utc(2025, 2, 27), utc(2024, 11, 30), utc(2025, 2, 28)),
    ("quarterly", "anniversary", "UTC", utc(2024, 11, 30), utc(2025, 3, 1), utc(2025, 2, 28), utc(2025, 5, 30)),
    # monthly anniversary in Paris, anchor Mar 31 local (started 00:30 local, 23:30Z the day before)
    ("monthly", "anniversary", "Europe/Paris", utc(2024, 3, 30, 23, 30), utc(2024, 4, 10), utc(2024, 3, 30, 23), utc(2024, 4, 29, 22)),
    # an instant before the start gives the first period
    ("monthly", "calendar", "UTC", utc(2024, 1, 15, 10), utc(2023, 6, 1), utc(2024, 1, 15), utc(2024, 2, 1)),
    ("monthly", "anniversary", "UTC", utc(2024, 1, 15, 10), utc(2023, 6, 1), utc(2024, 1, 15), utc(2024, 2, 15)),
]
# fmt: on


@pytest.mark.parametrize(
    ("interval", "billing_time", "tz", "started_at", "at", "start", "end"), CASES
)
def test_period_containing(interval, billing_time, tz, started_at, at, start, end):
    period = period_containing(
        at, interval=interval, billing_time=billing_time, started_at=started_at, timezone=tz
    )
    assert period == Period(start, end)
    assert period.start.tzinfo is not None and period.start.utcoffset().total_seconds() == 0


def test_anniversary_on_the_31st_comes_back_to_the_31st():
    started = utc(2024, 1, 31, 12)
    kwargs = dict(
        interval="monthly", billing_time="anniversary", started_at=started, timezone="UTC"
    )
    period = period_containing(started, **kwargs)
    starts = []
    for _ in range(6):
        starts.append(period.start.date())
        period = next_period(period, **kwargs)
    assert starts == [
        date(2024, 1, 31),
        date(2024, 2, 29),  # leap year
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
        date(2024, 6, 30),
    ]


@pytest.mark.parametrize(
    "tz",
    [
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "Pacific/Kiritimati",
    ],
)
@pytest.mark.parametrize("interval", ["weekly", "monthly", "quarterly", "semiannual", "yearly"])
@pytest.mark.parametrize("billing_time", ["calendar", "anniversary"])
def test_periods_are_contiguous_and_start_at_local_midnight(tz, interval, billing_time):
    started = utc(2023, 10, 31, 23, 30)
    kwargs = dict(interval=interval, billing_time=billing_time, started_at=started, timezone=tz)
    period = period_containing(started, **kwargs)
    for _ in range(30):
        following = next_period(period, **kwargs)
        assert following.start == period.end
        assert following.end > following.start
        for bound in (period.start, period.end):
            assert bound.astimezone(ZoneInfo(tz)).time() == time(0)
        # every instant of the period maps back to the same period
        assert period_containing(period.inclusive_end, **kwargs) == period
        period = following


def test_inclusive_end_is_one_second_before_the_end():
    period = Period(utc(2024, 3, 1), utc(2024, 4, 1))
    assert period.inclusive_end == utc(2024, 3, 31, 23, 59, 59)


@pytest.mark.parametrize(
    ("interval", "billing_time"), [("daily", "calendar"), ("monthly", "fiscal"), ("", "")]
)
def test_unknown_interval_or_billing_time(interval, billing_time):
    with pytest.raises(ValueError):
        period_containing(
            utc(2024, 1, 1),
            interval=interval,
            billing_time=billing_time,
            started_at=utc(2024, 1, 1),
            timezone="UTC",
        )


def test_local_days_across_dst():
    # March 2024 in Paris is 31 days although it lasts 743 hours
    period = Period(utc(2024, 2, 29, 23), utc(2024, 3, 31, 22))
    days = local_days(period, "Europe/Paris")
    assert len(days) == 31
    assert (days[0], days[-1]) == (date(2024, 3, 1), date(2024, 3, 31))


def test_local_days_counts_a_partly_covered_day():
    period = Period(utc(2024, 3, 1), utc(2024, 3, 10, 12))
    assert len(local_days(period, "UTC")) == 10


def test_local_date():
    assert local_date(utc(2024, 3, 31, 22, 30), "Europe/Paris") == date(2024, 4, 1)
    assert local_date(utc(2024, 1, 1, 4), "America/New_York") == date(2023, 12, 31)
    assert local_date(datetime(2024, 1, 1, 4), "UTC") == date(2024, 1, 1)  # naive = UTC


# (interval, timezone, started_at, proration of the first calendar period) — days / days
PRORATIONS = [
    ("monthly", "UTC", utc(2024, 1, 15, 10), Decimal(17) / Decimal(31)),  # Jan 15–31
    ("monthly", "UTC", utc(2024, 2, 20), Decimal(10) / Decimal(29)),  # leap February
    ("monthly", "UTC", utc(2023, 2, 20), Decimal(9) / Decimal(28)),
    ("monthly", "Europe/Paris", utc(2024, 3, 14, 23), Decimal(17) / Decimal(31)),  # Mar 15, DST
    ("monthly", "America/New_York", utc(2024, 11, 2, 12), Decimal(29) / Decimal(30)),  # Nov 2, DST
    ("weekly", "UTC", utc(2024, 1, 3, 15), Decimal(5) / Decimal(7)),  # Wed–Sun
    ("quarterly", "Asia/Kolkata", utc(2024, 2, 29, 20), Decimal(31) / Decimal(91)),  # Mar 1 local
    ("yearly", "UTC", utc(2024, 12, 1), Decimal(31) / Decimal(366)),
    ("monthly", "UTC", utc(2024, 3, 1), Decimal(1)),  # started on the boundary: full
]


@pytest.mark.parametrize(("interval", "tz", "started_at", "expected"), PRORATIONS)
def test_proration_of_the_first_calendar_period(interval, tz, started_at, expected):
    kwargs = dict(interval=interval, billing_time="calendar", started_at=started_at, timezone=tz)
    first = period_containing(started_at, **kwargs)
    full = full_period_of(first, **kwargs)
    assert full.end == first.end
    assert proration(first, full) == expected
    assert proration(first, full, timezone=tz) == expected


def test_anniversary_first_period_is_full():
    started = utc(2024, 1, 31, 12)
    kwargs = dict(
        interval="monthly", billing_time="anniversary", started_at=started, timezone="UTC"
    )
    first = period_containing(started, **kwargs)
    assert full_period_of(first, **kwargs) == first
    assert proration(first, first) == 1


def test_proration_of_a_terminated_period_counts_the_termination_day():
    full = Period(utc(2024, 3, 1), utc(2024, 4, 1))
    assert proration(Period(utc(2024, 3, 1), utc(2024, 3, 10, 15)), full) == Decimal(10) / 31
