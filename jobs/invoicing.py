"""Jobs: close ended billing periods into invoices, finalize drafts whose grace period ended,
flag overdue invoices."""

from __future__ import annotations

import logging

from billing.services import invoicing
from extensions import db, reset_write_intent, set_write_intent

log = logging.getLogger(__name__)


def run_period_close() -> int:
    """Invoice every ended period; returns how many invoices were created.

    Several jobs processes may run this at once: subscriptions are claimed with SKIP LOCKED
    (PostgreSQL) and each period's unique key refuses a second invoice.
    """
    # A cheap read first: on SQLite it takes no write lock, and this runs every minute.
    token = set_write_intent(False)
    try:
        due = invoicing.periods_due()
        db.session.commit()
    finally:
        reset_write_intent(token)
    if not due:
        return 0
    report = invoicing.close_periods()
    if report.invoices or report.failed:
        log.info(
            "period close: %r invoice(s) for %r subscription(s), %r failed",
            report.invoices,
            report.subscriptions,
            len(report.failed),
        )
    return report.invoices


def run_draft_finalization() -> int:
    """Finalize the drafts whose grace period has ended."""
    try:
        finalized = invoicing.finalize_due_drafts()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return len(finalized)


def run_overdue_marking() -> int:
    """Flag the unpaid invoices whose due date has passed (invoice.payment_overdue, once)."""
    try:
        marked = invoicing.mark_overdue_invoices()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return len(marked)
