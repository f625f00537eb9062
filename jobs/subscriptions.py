"""Job: move subscriptions through time — start pending ones, apply downgrades at the period
end, terminate those whose end date has come."""

from __future__ import annotations

import logging

from billing.services import subscriptions
from extensions import db, reset_write_intent, set_write_intent

log = logging.getLogger(__name__)


def run_subscription_moves() -> int:
    """Run the three moves, each in its own transaction; returns how many subscriptions moved.

    Several jobs processes may run this at once: each move locks the rows it takes (SKIP
    LOCKED on PostgreSQL, one writer on SQLite) and re-reads their status, so a subscription
    moves once; rerunning finds nothing left to do.
    """
    # A cheap read first: on SQLite it takes no write lock, and this runs every minute.
    token = set_write_intent(False)
    try:
        due = subscriptions.subscriptions_due()
        db.session.commit()
    finally:
        reset_write_intent(token)
    if not due:
        return 0
    moved = 0
    for move in (
        subscriptions.activate_pending_subscriptions,
        subscriptions.apply_downgrades,
        subscriptions.terminate_ended_subscriptions,
    ):
        try:
            done = move()
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("subscription job: %r failed", move.__name__)
            continue
        if done:
            log.info("subscription job: %r moved %r subscription(s)", move.__name__, len(done))
        moved += len(done)
    return moved
