"""Period close benchmark: 10,000 monthly subscriptions with usage invoiced by one close run.

Seeds an organization with three metrics and a monthly plan in arrears (a sum charged standard,
a count charged graduated, a sum by `region` with two charge filters) through the services,
then 10,000 customers, each with an active subscription started at the beginning of last month
and a few events in last month, with bulk Core inserts (already matched: subscription, metric,
customer); `billing.services.usage.rebuild_usage` then computes the daily buckets from the
events, exactly as `flask --app app usage rebuild` does. Seeding is timed apart.

Then it times `billing.services.invoicing.close_periods(at=<end of last month + 1 h>)`, the
function the jobs process and `flask --app app billing close-periods` run: every subscription
gets one finalized invoice (base fee + one fee per charge and charge filter, numbered under the
customer's row lock, invoice.created in the outbox). It checks that exactly 10,000 invoices
exist and that a second run creates none. Target on 2 cores: < 30 s for 10,000 subscriptions.

Then the jobs process's PDF step: `--pdfs` (default 100) of the closed invoices rendered and
stored by `documents.store_missing`, in one process as the job runs, against bare WeasyPrint on
the same invoices' HTML. Target: >= 10 PDFs/s (bench/pdf_render.py measures the renderer alone,
with a pool of two processes).

    .venv/bin/python bench/period_close.py
    .venv/bin/python bench/period_close.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test   # and PostgreSQL
    .venv/bin/python bench/period_close.py --profile    # cProfile's top functions of the close
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import weasyprint  # noqa: E402
from _common import add_json_option, save_results, throwaway_postgresql  # noqa: E402
from current_usage import properties  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from billing.models import (  # noqa: E402
    Customer,
    Event,
    Invoice,
    InvoiceSubscription,
    OutboxEvent,
    Subscription,
)
from billing.pdf import render_invoice_html  # noqa: E402
from billing.serializers_invoices import serialize_invoice  # noqa: E402
from billing.services import audit, documents  # noqa: E402
from billing.services.invoice_documents import invoice_document  # noqa: E402
from billing.services.invoicing import close_periods  # noqa: E402
from billing.services.metrics import create_billable_metric  # noqa: E402
from billing.services.organizations import create_organization  # noqa: E402
from billing.services.plans import create_plan  # noqa: E402
from billing.services.usage import rebuild_usage  # noqa: E402
from extensions import db  # noqa: E402

TARGET_S = 30.0
TARGET_PDFS_PER_SECOND = 10.0
INSERT_CHUNK = 5_000

#: code → (aggregation, field, filter keys)
METRICS = {
    "storage_gb": ("sum_agg", "gb", []),
    "api_calls": ("count_agg", None, []),
    "requests": ("sum_agg", "n", [{"key": "region", "values": ["eu", "us", "apac"]}]),
}
GRADUATED = [
    {"from_value": 0, "to_value": 10, "per_unit_amount": "0.01", "flat_amount": "0"},
    {"from_value": 11, "to_value": None, "per_unit_amount": "0.001", "flat_amount": "5"},
]
CHARGES = [
    {"billable_metric_code": "storage_gb", "charge_model": "standard",
     "properties": {"amount": "0.10"}},
    {"billable_metric_code": "api_calls", "charge_model": "graduated",
     "properties": {"graduated_ranges": GRADUATED}},
    {"billable_metric_code": "requests", "charge_model": "standard",
     "properties": {"amount": "0.002"},
     "filters": [
         {"invoice_display_name": "Europe", "properties": {"amount": "0.003"},
          "values": {"region": ["eu"]}},
         {"properties": {"amount": "0.004"}, "values": {"region": ["us"]}},
     ]},
]  # fmt: skip


def month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def seed(subscriptions: int, events_each: int, rng: random.Random) -> tuple[int, datetime]:
    """The catalog through the services, customers, subscriptions and events in bulk, then the
    buckets; returns the organization id and the end of the period to close."""
    organization = create_organization("Bench Org")
    for code, (aggregation, field_name, filters) in METRICS.items():
        create_billable_metric(organization, {
            "name": code, "code": code, "aggregation_type": aggregation,
            "field_name": field_name, "filters": filters,
        }, audit.CLI)  # fmt: skip
    plan = create_plan(organization, {
        "name": "Usage", "code": "usage", "interval": "monthly", "amount_cents": 1000,
        "amount_currency": "EUR", "pay_in_advance": False, "charges": CHARGES,
    }, audit.CLI)  # fmt: skip
    metrics = {charge.billable_metric.code: charge.billable_metric.id for charge in plan.charges}
    organization_id, plan_id = organization.id, plan.id
    db.session.commit()

    period_end = month_start(datetime.now(UTC))
    period_start = month_start(period_end - timedelta(days=1))
    span = (period_end - period_start).total_seconds() - 1
    codes = list(METRICS)
    for first in range(0, subscriptions, INSERT_CHUNK):
        numbers = range(first, min(first + INSERT_CHUNK, subscriptions))
        customer_ids = db.session.execute(
            insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
            [{
                "lago_id": uuid.uuid4(), "organization_id": organization_id,
                "external_id": f"cust-{n}", "sequential_id": n + 1, "name": f"Customer {n}",
                "email": f"billing+{n}@example.com", "currency": "EUR", "timezone": "UTC",
                "search_text": f"customer {n} cust-{n}", "created_at": period_start,
                "updated_at": period_start,
            } for n in numbers],
        ).scalars().all()  # fmt: skip
        subscription_ids = db.session.execute(
            insert(Subscription).returning(Subscription.id, sort_by_parameter_order=True),
            [{
                "lago_id": uuid.uuid4(), "organization_id": organization_id,
                "customer_id": customer_id, "plan_id": plan_id, "external_id": f"sub-{n}",
                "status": "active", "billing_time": "calendar", "subscription_at": period_start,
                "started_at": period_start, "on_termination_invoice": "generate",
                "next_invoice_at": period_end, "created_at": period_start,
                "updated_at": period_start,
            } for n, customer_id in zip(numbers, customer_ids, strict=True)],
        ).scalars().all()  # fmt: skip
        events = []
        for n, customer_id, subscription_id in zip(
            numbers, customer_ids, subscription_ids, strict=True
        ):
            for k in range(events_each):
                code = codes[k % len(codes)]
                events.append({
                    "lago_id": uuid.uuid4(), "organization_id": organization_id,
                    "transaction_id": f"seed-{n}-{k}", "external_subscription_id": f"sub-{n}",
                    "code": code,
                    "timestamp": period_start + timedelta(seconds=rng.uniform(0, span)),
                    "properties": properties(code, rng), "precise_total_amount_cents": None,
                    "fingerprint": hashlib.sha256(f"{n}-{k}".encode()).hexdigest(),
                    "subscription_id": subscription_id, "billable_metric_id": metrics[code],
                    "customer_id": customer_id, "error_code": None, "created_at": period_start,
                })  # fmt: skip
        db.session.execute(insert(Event.__table__), events)
        db.session.commit()
    rebuild_usage()
    db.session.commit()
    return organization_id, period_end


def count(model: Any, organization_id: int) -> int:
    return db.session.scalar(
        select(func.count(model.id)).where(model.organization_id == organization_id)
    ) or 0  # fmt: skip


def run_backend(url: str, args: argparse.Namespace) -> dict[str, Any]:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    with app.app_context():
        dialect = db.engine.dialect.name
        upgrade()
        started = time.perf_counter()
        organization_id, period_end = seed(args.subscriptions, args.events, random.Random(7))
        if dialect == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            # the seeding's WAL is flushed now, not by a checkpoint in the middle of the timed
            # close (a real close starts from a database in its steady state)
            db.session.execute(text("CHECKPOINT"))
            db.session.commit()
        seed_s = time.perf_counter() - started
        print(
            f"[{dialect}] seeded {args.subscriptions:,} subscriptions, "
            f"{args.subscriptions * args.events:,} events in {seed_s:.0f} s",
            flush=True,
        )
        db.session.remove()

        at = period_end + timedelta(hours=1)
        profiler = cProfile.Profile() if args.profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        first = close_periods(at=at)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        db.session.remove()
        second_wall = time.perf_counter()
        second = close_periods(at=at)
        second_wall = time.perf_counter() - second_wall

        invoices = count(Invoice, organization_id)
        periods = db.session.scalar(
            select(func.count(func.distinct(InvoiceSubscription.subscription_id)))
        )
        created_events = db.session.scalar(
            select(func.count(OutboxEvent.id)).where(
                OutboxEvent.organization_id == organization_id,
                OutboxEvent.event_type == "invoice.created",
            )
        )
        total_cents = db.session.scalar(
            select(func.sum(Invoice.total_amount_cents)).where(
                Invoice.organization_id == organization_id
            )
        )
        # the webhook payload built in memory must be what the API shows of the stored invoice
        event = db.session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.event_type == "invoice.created")
            .order_by(OutboxEvent.id.desc())
            .limit(1)
        ).one()
        stored = db.session.scalars(
            select(Invoice).where(Invoice.lago_id == uuid.UUID(event.payload["lago_id"]))
        ).one()
        shown = json.loads(json.dumps(serialize_invoice(stored, include_fees=True)))
        same_payload = shown == event.payload
        version = db.session.execute(
            text("SELECT sqlite_version()" if dialect == "sqlite" else "SHOW server_version")
        ).scalar()
        db.session.remove()
        pdfs = pdf_generation(organization_id, args.pdfs) if args.pdfs else None
        db.session.remove()
        db.engine.dispose()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return {
        "dialect": dialect, "version": version, "wall": wall, "cpu": cpu, "first": first,
        "second": second, "second_wall": second_wall, "invoices": invoices, "periods": periods,
        "created_events": created_events, "total_cents": total_cents,
        "same_payload": same_payload, "pdfs": pdfs,
    }  # fmt: skip


def pdf_generation(organization_id: int, count: int) -> dict[str, float]:
    """The jobs process's PDF step on the closed invoices: `count` of them rendered and stored by
    `documents.store_missing` (one process, as the job runs), then the same invoices' HTML
    through bare WeasyPrint, the baseline."""
    wall, cpu, stored = time.perf_counter(), time.process_time(), 0
    while stored < count:
        batch = documents.store_missing(
            organization_id=organization_id, batch=min(10, count - stored)
        )
        db.session.commit()
        stored += batch.stored
        if not batch.claimed:
            break
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    invoices = db.session.scalars(
        select(Invoice).where(Invoice.organization_id == organization_id).limit(count)
    ).all()
    pages = [render_invoice_html(invoice_document(invoice)) for invoice in invoices]
    bare = time.perf_counter()
    for page in pages:
        weasyprint.HTML(string=page).write_pdf()
    bare = time.perf_counter() - bare
    return {"stored": stored, "rate": stored / wall, "cpu_ms": cpu * 1000 / max(stored, 1),
            "bare_rate": len(pages) / bare}  # fmt: skip


def report(result: dict[str, Any], expected: int) -> bool:
    first, second = result["first"], result["second"]
    per_ms = result["wall"] * 1000 / max(first.subscriptions, 1)
    met = result["wall"] < TARGET_S * expected / 10_000
    exact = (
        result["invoices"] == expected
        and result["periods"] == expected
        and result["created_events"] == expected
        and first.failed == []
        and second.invoices == 0
        and result["same_payload"]
    )
    print(f"\n{result['dialect']} {result['version']}: period close of {expected:,} subscriptions")
    print(f"  first run : {first.invoices:,} invoices in {result['wall']:.1f} s "
          f"(CPU {result['cpu']:.1f} s), {per_ms:.2f} ms per subscription, "
          f"{len(first.failed)} failed   target < {TARGET_S:.0f} s: "
          f"{'met' if met else 'MISSED'}")  # fmt: skip
    print(f"  second run: {second.invoices:,} invoices created, {second.subscriptions:,} "
          f"subscriptions due, {result['second_wall']:.2f} s")  # fmt: skip
    print(
        f"  in the database: {result['invoices']:,} invoices, {result['periods']:,} "
        f"subscriptions invoiced, {result['created_events']:,} invoice.created events, "
        f"total {result['total_cents'] or 0:,} cents: {'exact' if exact else 'WRONG'}"
    )
    print(f"  invoice.created payload = the API's invoice: {result['same_payload']}")
    pdfs = result["pdfs"]
    pdf_met = True
    if pdfs:
        pdf_met = pdfs["rate"] >= TARGET_PDFS_PER_SECOND
        print(
            f"  PDFs by the documents job (one process): {pdfs['stored']:,.0f} stored, "
            f"{pdfs['rate']:.1f}/s ({pdfs['cpu_ms']:.0f} ms CPU each); bare WeasyPrint of the "
            f"same HTML {pdfs['bare_rate']:.1f}/s, ratio {pdfs['rate'] / pdfs['bare_rate']:.2f}"
            f"   target ≥ {TARGET_PDFS_PER_SECOND:.0f}/s: {'met' if pdf_met else 'MISSED'}"
        )
    return met and exact and pdf_met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="also run on this PostgreSQL server")
    parser.add_argument("--sqlite-path", help="SQLite file (default: a temporary one)")
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=12, help="events per subscription")
    parser.add_argument("--profile", action="store_true", help="cProfile the first close")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--pdfs", type=int, default=100, help="closed invoices the documents job renders (0: none)"
    )
    add_json_option(parser)
    args = parser.parse_args()

    ok, results = True, []
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.sqlite_path or str(Path(tmp) / "period-close-bench.db")
            results.append(run_backend(f"sqlite:///{path}", args))
            ok &= report(results[-1], args.subscriptions)
    if args.database_url:
        with throwaway_postgresql(args.database_url, keep=False) as url:
            results.append(run_backend(url, args))
            ok &= report(results[-1], args.subscriptions)
    save_results("period_close", args, ok, {
        r["dialect"]: {
            "version": r["version"], "subscriptions": args.subscriptions, "wall_s": r["wall"],
            "cpu_s": r["cpu"], "invoices_first_run": r["first"].invoices,
            "failed": len(r["first"].failed), "invoices_second_run": r["second"].invoices,
            "invoices": r["invoices"], "periods": r["periods"],
            "created_events": r["created_events"], "total_cents": r["total_cents"],
            "same_payload": r["same_payload"], "pdfs": r["pdfs"],
            "target_s": TARGET_S * args.subscriptions / 10_000,
            "target_pdfs_per_s": TARGET_PDFS_PER_SECOND,
        }
        for r in results
    })  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
