"""Job: run queued customer imports (CSV files too large to run during a console request)."""

from __future__ import annotations

import logging

from billing.errors import NotAllowed
from billing.models import CustomerImport
from billing.services import imports
from extensions import db, reset_write_intent, set_write_intent

log = logging.getLogger(__name__)


def run_queued_imports() -> CustomerImport | None:
    """Re-queue stalled runs, claim one queued import and run it, committing after each batch
    so that the console's progress bar moves. Returns the import it ran, if any."""
    # A cheap read first: on SQLite it takes no write lock, and this runs every two seconds.
    token = set_write_intent(False)
    try:
        waiting = imports.imports_waiting()
        db.session.commit()
    finally:
        reset_write_intent(token)
    if not waiting:
        return None
    imports.requeue_stalled_imports()
    customer_import = imports.claim_queued_import()
    db.session.commit()
    if customer_import is None:
        return None
    run_claimed_import(customer_import)
    return customer_import


def run_claimed_import(customer_import: CustomerImport) -> None:
    """Run an import this process holds (status running) to the end, or mark it failed."""
    import_id = customer_import.id
    log.info(
        "customer import %r: running from row %r of %r",
        str(customer_import.lago_id),
        customer_import.processed_rows,
        customer_import.total_rows,
    )
    try:
        imports.run_import(
            customer_import,
            imports.actor_for(customer_import),
            progress=lambda _import: db.session.commit(),
        )
        db.session.commit()
    except imports.ImportSuperseded:
        db.session.rollback()
        log.warning("customer import %r was taken over by another process", import_id)
        return
    except Exception:
        db.session.rollback()
        log.exception("customer import %r failed", import_id)
        failed = db.session.get_one(CustomerImport, import_id)
        try:
            imports.fail_import(failed, imports.failure_message(failed))
        except NotAllowed:
            db.session.rollback()
            return
        db.session.commit()
        return
    log.info(
        "customer import %r done: %r created, %r updated, %r rows refused",
        import_id,
        customer_import.created_count,
        customer_import.updated_count,
        len(customer_import.row_errors),
    )
