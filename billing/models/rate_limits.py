"""Request counters of the rate limits, shared by every web process and host."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from billing.models.types import UTCDateTime
from extensions import Base


class RateLimitCounter(Base):
    """One fixed window per key: its start, its end and the requests counted in it so far.

    A key has one row, rewritten when its next window starts; rows whose window ended are
    removed by the jobs process (`jobs/rate_limits.py`)."""

    __tablename__ = "rate_limit_counters"

    #: `<limit name>:<scope>:<value>`, e.g. `login:ip:203.0.113.7` (e-mails hashed)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the window's end: the counter is reset after it, and the row may be deleted
    window_end: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: requests counted in this window (refused ones included)
    hits: Mapped[int] = mapped_column(default=0)
