"""APScheduler wiring only. Jobs are plain functions registered in JOBS by each capability.

Several jobs processes may run at once (one per host, say): every job is written so that
correctness comes from database constraints and row locks, not from being the only runner.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from app import ensure_secret_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    """A job function (called inside an app context) and its APScheduler trigger arguments."""

    id: str
    func: Callable[[], Any]
    trigger: str
    trigger_args: dict[str, Any]


#: registered jobs; later capabilities append theirs (period close, webhooks, ...)
JOBS: list[JobSpec] = []


def build_scheduler(app: Flask) -> BackgroundScheduler:
    # APScheduler logs every run at INFO; a job that runs every few seconds would flood the log.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    scheduler = BackgroundScheduler(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
    )
    for spec in JOBS:
        scheduler.add_job(
            _in_app_context(app, spec),
            spec.trigger,
            id=spec.id,
            name=spec.id,
            replace_existing=True,
            **spec.trigger_args,
        )
    return scheduler


def _in_app_context(app: Flask, spec: JobSpec) -> Callable[[], None]:
    def run() -> None:
        with app.app_context():
            try:
                ensure_secret_key(app)  # when the database was unreachable at start-up
                spec.func()
            except Exception:
                log.exception("job %r failed", spec.id)
                raise

    run.__name__ = spec.id
    return run


def run_scheduler(app: Flask) -> None:
    """Run until SIGINT or SIGTERM, then let running jobs finish and exit."""
    # A plain flag, not a threading.Event: setting an Event from a signal handler can deadlock
    # when the signal lands while the main thread holds the Event's own lock.
    stop_requested: list[str] = []

    def request_stop(signum: int, _frame: Any) -> None:
        stop_requested.append(signal.Signals(signum).name)

    # Handlers first: a signal arriving while the scheduler starts still stops it cleanly.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    scheduler = build_scheduler(app)
    scheduler.start()
    log.info(
        "jobs process started with %d job(s): %s", len(JOBS), [j.id for j in JOBS] or "none yet"
    )
    while not stop_requested:
        time.sleep(0.2)
    log.info("jobs process: %s received, shutting down", stop_requested[0])
    scheduler.shutdown(wait=True)
    log.info("jobs process stopped")


# --- registered jobs (imported last: job modules may use the names above) ----------------------

from jobs.imports import run_queued_imports  # noqa: E402

# Up to three imports at once per process: while one long import runs, the next ticks still
# pick up other queued imports instead of being skipped.
JOBS.append(
    JobSpec("customer_imports", run_queued_imports, "interval", {"seconds": 2, "max_instances": 3})
)

from jobs.subscriptions import run_subscription_moves  # noqa: E402

# Pending starts, downgrades and planned ends, checked every minute.
JOBS.append(JobSpec("subscription_moves", run_subscription_moves, "interval", {"seconds": 60}))

from jobs.invoicing import run_draft_finalization, run_overdue_marking, run_period_close  # noqa: E402

# Ended periods are invoiced within a minute; drafts and overdue flags follow shortly.
JOBS.append(JobSpec("period_close", run_period_close, "interval", {"seconds": 60}))
JOBS.append(JobSpec("draft_finalization", run_draft_finalization, "interval", {"seconds": 60}))
JOBS.append(JobSpec("overdue_invoices", run_overdue_marking, "interval", {"seconds": 300}))

from jobs.documents import run_document_generation  # noqa: E402

# PDFs of newly finalized invoices, a minute at most after finalization.
JOBS.append(JobSpec("documents", run_document_generation, "interval", {"seconds": 60}))
from jobs.webhooks import run_webhook_delivery, run_webhook_dispatch  # noqa: E402

JOBS.append(JobSpec("webhook_dispatch", run_webhook_dispatch, "interval", {"seconds": 2}))
JOBS.append(JobSpec("webhook_delivery", run_webhook_delivery, "interval", {"seconds": 2}))
from jobs.wallets import run_wallet_expiration  # noqa: E402

# Wallets past their expiration time are terminated within a minute.
JOBS.append(JobSpec("wallet_expiration", run_wallet_expiration, "interval", {"seconds": 60}))
from jobs.mail import run_dunning, run_mail_delivery  # noqa: E402

# E-mails go out within seconds of being queued; reminders are checked every 10 minutes.
JOBS.append(JobSpec("mail_delivery", run_mail_delivery, "interval", {"seconds": 5}))
JOBS.append(JobSpec("dunning", run_dunning, "interval", {"seconds": 600}))
from jobs.rate_limits import run_rate_limit_purge  # noqa: E402

# Ended rate limit windows are deleted every ten minutes (the table holds one row per key).
JOBS.append(JobSpec("rate_limit_purge", run_rate_limit_purge, "interval", {"seconds": 600}))
