"""Jobs: send the due e-mails; queue the dunning reminders that have come due."""

from __future__ import annotations

import logging

from billing.services import mail
from extensions import db, reset_write_intent, set_write_intent

log = logging.getLogger(__name__)


def run_mail_delivery() -> int:
    """Send (or, without an SMTP server, store) every due e-mail, batch after batch."""
    token = set_write_intent(False)  # a cheap read first: no SQLite write lock every few seconds
    try:
        due = mail.has_due()
        db.session.commit()
    finally:
        reset_write_intent(token)
    attempted = 0
    while due:
        try:
            count = mail.deliver_due()
        except Exception:
            db.session.rollback()
            raise
        attempted += count
        due = count > 0
    if attempted:
        log.info("mail: %d message(s) attempted", attempted)
    return attempted


def run_dunning() -> int:
    """Queue each reminder step of the overdue invoices once (unique key per invoice and
    step: several schedulers never queue one twice)."""
    try:
        queued = mail.queue_due_reminders()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if queued:
        log.info("dunning: %d reminder(s) queued", queued)
    return queued
