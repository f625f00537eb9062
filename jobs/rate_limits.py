"""Job: delete the rate limit counters whose window has ended."""

from __future__ import annotations

from billing.services import rate_limits
from extensions import db


def run_rate_limit_purge() -> int:
    """Remove ended windows (a key's row comes back at its next request); returns how many."""
    try:
        purged = rate_limits.purge_expired()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return purged
