"""Time: the only clock of the domain, and conversions. Storage is always UTC-aware."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now_utc() -> datetime:
    """The current time, UTC-aware. Tests freeze it with `set_clock`."""
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests, backfills); `None` restores the real one."""
    global _clock
    _clock = clock if clock is not None else (lambda: datetime.now(UTC))


@contextmanager
def clock_frozen_at(moment: datetime) -> Iterator[None]:
    """Read `moment` as the current time inside the block, then give back the clock that was
    in place before (a frozen one too, as when a test seeds the demo at a chosen time)."""
    global _clock
    previous = _clock
    _clock = lambda: moment  # noqa: E731
    try:
        yield
    finally:
        _clock = previous


def as_utc(value: datetime) -> datetime:
    """Make a datetime UTC-aware; naive values are taken as UTC (that is how they are stored)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_utc(value: datetime | None) -> str | None:
    """Lago's timestamp format: second precision, `Z` suffix."""
    if value is None:
        return None
    # isoformat is several times faster than strftime, and lists serialize many timestamps
    return as_utc(value).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def in_zone(value: datetime, timezone: str) -> datetime:
    return as_utc(value).astimezone(ZoneInfo(timezone))
