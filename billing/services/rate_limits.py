"""Fixed-window rate limits whose counters live in the database.

Every web process (several gunicorn workers, several hosts) counts in the same row, so a
limit holds for the whole deployment. One atomic upsert per request counts the hit and
resets the counter when a new window has started; it works alike on PostgreSQL and SQLite.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from billing.models import RateLimitCounter
from billing.timeutil import now_utc
from extensions import db

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


class InvalidLimit(ValueError):
    """A limit setting that is not `<count>/<period>`."""


@dataclass(frozen=True)
class Limit:
    """At most `count` requests per window of `seconds`."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """`"10/minute"`, `"120/minute"`, `"1000/hour"`, `"50/10minutes"` → Limit."""
        match = _LIMIT.match(text or "")
        if not match:
            raise InvalidLimit(
                f"{text!r} is not a rate limit: write <count>/<period>, e.g. 10/minute "
                "(periods: second, minute, hour, day, optionally with a multiple: 50/10minutes)"
            )
        count, multiple, unit = int(match[1]), int(match[2] or 1), match[3].lower()
        if count < 1 or multiple < 1:
            raise InvalidLimit(f"{text!r}: the count and the period must be at least 1")
        return cls(count, multiple * PERIODS[unit])

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}s"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one counted request, with what the `x-ratelimit-*` headers say."""

    allowed: bool
    limit: int
    remaining: int
    #: seconds until the window ends and the counter starts again
    reset_after: int


def scoped_key(name: str, scope: str, value: str) -> str:
    """The counter key; values that could be long or personal (e-mails) are hashed."""
    if scope == "email":
        value = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"{name}:{scope}:{value}"[:300]


def hit(key: str, limit: Limit) -> Verdict:
    """Count one request against `key`; `allowed` is False once the window's count is spent."""
    now = now_utc()
    epoch = math.floor(now.timestamp())
    window_start = datetime.fromtimestamp(epoch - epoch % limit.seconds, UTC)
    window_end = window_start + timedelta(seconds=limit.seconds)
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(RateLimitCounter).values(
        key=key, window_start=window_start, window_end=window_end, hits=1
    )
    same_window = RateLimitCounter.window_start == statement.excluded.window_start
    hits = db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[RateLimitCounter.key],
            set_={
                "hits": case((same_window, RateLimitCounter.hits + 1), else_=1),
                "window_start": statement.excluded.window_start,
                "window_end": statement.excluded.window_end,
            },
        ).returning(RateLimitCounter.hits)
    ).scalar_one()
    reset_after = max(1, math.ceil((window_end - now).total_seconds()))
    return Verdict(
        allowed=hits <= limit.count,
        limit=limit.count,
        remaining=max(0, limit.count - hits),
        reset_after=reset_after,
    )


def hit_all(keys: list[str], limit: Limit) -> Verdict:
    """Count one request against every key; the most constrained verdict wins."""
    verdicts = [hit(key, limit) for key in keys]
    refused = [v for v in verdicts if not v.allowed]
    if refused:
        return max(refused, key=lambda v: v.reset_after)
    return min(verdicts, key=lambda v: v.remaining)


def purge_expired(at: datetime | None = None) -> int:
    """Delete the counters whose window has ended; returns how many."""
    result = db.session.execute(
        delete(RateLimitCounter).where(RateLimitCounter.window_end <= (at or now_utc()))
    )
    return int(getattr(result, "rowcount", 0) or 0)
