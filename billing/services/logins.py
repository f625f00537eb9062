"""Agent logins, slowed down per account and per client address after repeated failures.

The counters live in the database, so the limit holds across every web process and host.
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from werkzeug.security import check_password_hash

from billing.errors import DomainError, InvariantBroken
from billing.models import Agent, LoginThrottle
from billing.timeutil import now_utc
from extensions import db

#: failures allowed before the lock-outs start, per account and per address (NAT-shared)
ACCOUNT_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 20
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)
#: failures older than this are forgotten
WINDOW = timedelta(hours=1)

# Checked against when the e-mail is unknown, so a wrong e-mail costs the same time as a
# wrong password (no account enumeration by timing).
_DUMMY_HASH = (
    "scrypt:32768:8:1$psH2Y7AKFCCea1Bd$8c7707cc58bc6405428732936a472fb53e296e31069bc8ddb6c08a"
    "b5768d7c89a406a8bf50f25a70806b0ff9cb9b1188ef1956e4a814a9c5467e07a2ca2c2be2"
)


class LoginRefused(DomainError):
    """Wrong e-mail or password (deliberately not saying which)."""


class LoginThrottled(DomainError):
    """Too many recent failures; `retry_after` seconds to wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


def _keys(email: str, address: str | None) -> list[tuple[str, int]]:
    keys = [(f"account:{email.strip().lower()}", ACCOUNT_FREE_FAILURES)]
    if address:
        keys.append((f"ip:{address}", ADDRESS_FREE_FAILURES))
    return keys


def log_in(email: str, password: str, address: str | None) -> Agent:
    """The active agent with these credentials; LoginThrottled or LoginRefused otherwise."""
    now = now_utc()
    keys = _keys(email, address)
    throttles = db.session.scalars(
        select(LoginThrottle).where(LoginThrottle.key.in_([k for k, _ in keys]))
    ).all()
    locked = [t.locked_until for t in throttles if t.locked_until and t.locked_until > now]
    if locked:
        raise LoginThrottled(max(1, math.ceil((max(locked) - now).total_seconds())))

    agent = db.session.scalar(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))
    valid = check_password_hash(agent.password_hash if agent else _DUMMY_HASH, password)
    if agent is None or not valid or not agent.is_active:
        for key, free in keys:
            _record_failure(key, free)
        raise LoginRefused("invalid credentials")

    db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys[0][0]))
    agent.last_login_at = now
    return agent


def _record_failure(key: str, free_failures: int) -> None:
    """Count one failure atomically (an upsert, safe with concurrent processes), then lock."""
    now = now_utc()
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(LoginThrottle).values(key=key, failures=1, last_failure_at=now)
    stale = LoginThrottle.last_failure_at < now - WINDOW
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
                "last_failure_at": now,
            },
        )
    )
    throttle = db.session.scalar(
        select(LoginThrottle)
        .where(LoginThrottle.key == key)
        .execution_options(populate_existing=True)
    )
    if throttle is None:
        raise InvariantBroken("expected throttle is not None")
    excess = throttle.failures - free_failures
    if excess >= 0:
        throttle.locked_until = now + min(FIRST_LOCK * (2**excess), LONGEST_LOCK)
    db.session.flush()
