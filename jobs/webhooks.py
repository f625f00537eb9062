"""Jobs: fan new outbox events out to the subscribed endpoints, send the due deliveries."""

from __future__ import annotations

import logging
from collections.abc import Callable

from billing.services import webhooks
from extensions import db, reset_write_intent, set_write_intent

log = logging.getLogger(__name__)


def run_webhook_dispatch() -> int:
    """Queue a delivery per subscribed endpoint for every new outbox event."""
    waiting = _read(webhooks.has_undispatched_events)
    dispatched = 0
    while waiting:
        try:
            count = webhooks.dispatch_outbox()
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        dispatched += count
        waiting = count > 0
    return dispatched


def run_webhook_delivery() -> int:
    """Send every due delivery, batch after batch, until none is due."""
    due = _read(webhooks.has_due_deliveries)
    sent = 0
    while due:
        try:
            count = webhooks.deliver_due()
        except Exception:
            db.session.rollback()
            raise
        sent += count
        due = count > 0
    if sent:
        log.info("webhooks: %d delivery attempt(s)", sent)
    return sent


def _read(check: Callable[[], bool]) -> bool:
    """A cheap check before any write: on SQLite it takes no write lock, and these jobs run
    every few seconds."""
    token = set_write_intent(False)
    try:
        result = check()
        db.session.commit()
    finally:
        reset_write_intent(token)
    return result
