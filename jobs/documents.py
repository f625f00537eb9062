"""Job: render and store the PDFs of finalized invoices that have none yet."""

from __future__ import annotations

import logging
import time

from billing.services import documents
from extensions import db, reset_write_intent, set_write_intent

log = logging.getLogger(__name__)

#: seconds one run renders at most; what is left waits for the next run
RUN_BUDGET_SECONDS = 45.0


def run_document_generation() -> int:
    """Store the missing PDFs, a batch per transaction; returns how many were stored.

    Several jobs processes may run this at once: each batch is claimed with SKIP LOCKED
    (PostgreSQL) and the documents' unique key stores a second render of the same owner never.
    """
    # A cheap read first: on SQLite it takes no write lock, and this runs every minute.
    token = set_write_intent(False)
    try:
        missing = documents.any_missing()
        db.session.commit()
    finally:
        reset_write_intent(token)
    if not missing:
        return 0
    started = time.monotonic()
    stored = 0
    failed: list[tuple[str, int]] = []
    while time.monotonic() - started < RUN_BUDGET_SECONDS:
        try:
            batch = documents.store_missing(skip=failed)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        stored += batch.stored
        failed += batch.failed  # retried by the next run, not again by this one
        if not batch.claimed:
            break
    if stored:
        log.info("documents: %r PDF(s) generated", stored)
    return stored
