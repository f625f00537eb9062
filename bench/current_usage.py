"""Current usage benchmark: server time of GET /customers/{id}/current_usage as events pile up.

Seeds an organization over the API (in-process): five metrics (sum, count, max, latest, and a
sum with a `region` filter key), a monthly plan charging them (sum standard, count graduated,
max and latest standard, the filtered sum with two charge filters), the measured customer's
subscription started at the beginning of the month, and `--other-subscriptions` neighbours.
Events go in with bulk Core inserts, already matched (subscription, metric, customer), spread
over the current period up to now; then `billing.services.usage.rebuild_usage` computes the
daily buckets from them, exactly as `flask --app app usage rebuild` does. (Ingesting a million
events through `ingest_events` would time the ingestion benchmark again, slower.) 1% of the
events belong to the neighbours.

Then it times whole requests through the WSGI app (routing, API key, the usage service, the
serializer) at 10,000 and at 1,000,000 events in the period: p50/p95 over `--requests` each.
Targets on 2 cores: p95 < 10 ms at 10k events, < 100 ms at 1M.

    .venv/bin/python bench/current_usage.py
    .venv/bin/python bench/current_usage.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test   # and PostgreSQL
"""

from __future__ import annotations

import argparse
import gc
import hashlib
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

from _common import add_json_option, percentile, save_results, throwaway_postgresql  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from billing.models import BillableMetric, Event, Subscription  # noqa: E402
from billing.services import audit  # noqa: E402
from billing.services.organizations import create_api_key, create_organization  # noqa: E402
from billing.services.usage import rebuild_usage  # noqa: E402
from extensions import db  # noqa: E402

API_KEY = "ll_bench_0123456789abcdef0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
USAGE_URL = "/api/v1/customers/cust-0/current_usage?external_subscription_id=sub-0"
TARGETS_P95_MS = {10_000: 10.0, 1_000_000: 100.0}
INSERT_CHUNK = 10_000

#: code → (aggregation, field, filter keys)
METRICS = {
    "storage_gb": ("sum_agg", "gb", []),
    "api_calls": ("count_agg", None, []),
    "seats": ("max_agg", "seats", []),
    "balance": ("latest_agg", "value", []),
    "requests": ("sum_agg", "n", [{"key": "region", "values": ["eu", "us", "apac"]}]),
}
GRADUATED = [
    {"from_value": 0, "to_value": 1000, "per_unit_amount": "0.01", "flat_amount": "0"},
    {"from_value": 1001, "to_value": None, "per_unit_amount": "0.001", "flat_amount": "5"},
]
CHARGES = [
    {"billable_metric_code": "storage_gb", "charge_model": "standard",
     "properties": {"amount": "0.10"}},
    {"billable_metric_code": "api_calls", "charge_model": "graduated",
     "properties": {"graduated_ranges": GRADUATED}},
    {"billable_metric_code": "seats", "charge_model": "standard", "properties": {"amount": "4"}},
    {"billable_metric_code": "balance", "charge_model": "standard",
     "properties": {"amount": "0.001"}},
    {"billable_metric_code": "requests", "charge_model": "standard",
     "properties": {"amount": "0.002"},
     "filters": [
         {"invoice_display_name": "Europe", "properties": {"amount": "0.003"},
          "values": {"region": ["eu"]}},
         {"properties": {"amount": "0.004"}, "values": {"region": ["us"]}},
     ]},
]  # fmt: skip


def post(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/api/v1{path}", json=body, headers=HEADERS)
    if response.status_code != 200:
        raise SystemExit(f"seeding {path} failed: {response.status_code} {response.text}")
    return response.get_json()


def seed_catalog(client: Any, others: int) -> None:
    """The metrics, the plan, the measured subscription `sub-0` and its neighbours."""
    for code, (aggregation, field_name, filters) in METRICS.items():
        post(client, "/billable_metrics", {"billable_metric": {
            "name": code, "code": code, "aggregation_type": aggregation,
            "field_name": field_name, "filters": filters,
        }})  # fmt: skip
    post(client, "/plans", {"plan": {
        "name": "Usage", "code": "usage", "interval": "monthly", "amount_cents": 1000,
        "amount_currency": "EUR", "pay_in_advance": False, "charges": CHARGES,
    }})  # fmt: skip
    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for n in range(others + 1):
        post(client, "/subscriptions", {"subscription": {
            "external_customer_id": f"cust-{n}", "external_id": f"sub-{n}", "plan_code": "usage",
            "subscription_at": month_start.isoformat().replace("+00:00", "Z"),
        }})  # fmt: skip


def properties(code: str, rng: random.Random) -> dict[str, Any]:
    if code == "storage_gb":
        return {"gb": rng.randint(1, 10)}
    if code == "seats":
        return {"seats": rng.randint(1, 50)}
    if code == "balance":
        return {"value": f"{rng.randint(0, 99_999)}.{rng.randint(0, 99):02d}"}
    if code == "requests":
        return {"n": rng.randint(1, 5), "region": rng.choice(["eu", "us", "apac", "none"])}
    return {}


def add_events(count: int, start: int, rng: random.Random) -> None:
    """`count` matched events, 99% for sub-0 and 1% for its neighbours, between the start of
    the current period and now; then the subscriptions' buckets rebuilt from all their events."""
    subscriptions = db.session.execute(
        select(Subscription.id, Subscription.external_id, Subscription.customer_id,
               Subscription.organization_id, Subscription.started_at)
    ).all()  # fmt: skip
    measured = next(s for s in subscriptions if s.external_id == "sub-0")
    neighbours = [s for s in subscriptions if s.external_id != "sub-0"] or [measured]
    metrics = {row.code: row.id for row in db.session.execute(select(BillableMetric))
               .scalars()}  # fmt: skip
    codes = list(metrics)
    now = datetime.now(UTC)
    span = max((now - measured.started_at).total_seconds() - 1, 1)
    created = now
    table = Event.__table__
    for chunk_start in range(start, start + count, INSERT_CHUNK):
        rows = []
        for n in range(chunk_start, min(chunk_start + INSERT_CHUNK, start + count)):
            subscription = measured if n % 100 else rng.choice(neighbours)
            code = codes[n % len(codes)]
            props = properties(code, rng)
            rows.append({
                "lago_id": uuid.uuid4(), "organization_id": subscription.organization_id,
                "transaction_id": f"seed-{n}", "external_subscription_id": subscription.external_id,
                "code": code,
                "timestamp": measured.started_at + timedelta(seconds=rng.uniform(0, span)),
                "properties": props, "precise_total_amount_cents": None,
                "fingerprint": hashlib.sha256(str(n).encode()).hexdigest(),
                "subscription_id": subscription.id, "billable_metric_id": metrics[code],
                "customer_id": subscription.customer_id, "error_code": None,
                "created_at": created,
            })  # fmt: skip
        db.session.execute(insert(table), rows)
        db.session.commit()
    rebuild_usage([s.id for s in subscriptions])
    db.session.commit()


def time_requests(app: Any, repeat: int) -> list[float]:
    client = app.test_client()
    for _ in range(10):  # warm-up: statement caches, first connection
        assert client.get(USAGE_URL, headers=HEADERS).status_code == 200
    # time in a process that looks like a web worker: seeding garbage collected, heap frozen
    gc.collect()
    gc.freeze()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(USAGE_URL, headers=HEADERS)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    gc.unfreeze()
    return timings


def run_backend(url: str, args: argparse.Namespace) -> dict[str, Any]:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    results: dict[int, dict[str, Any]] = {}
    with app.app_context():
        dialect = db.engine.dialect.name
        upgrade()
        organization = create_organization("Bench Org")
        create_api_key(organization, audit.CLI, raw_key=API_KEY)
        db.session.commit()
        seed_catalog(app.test_client(), args.other_subscriptions)
        rng = random.Random(args.seed)
        seeded = 0
        for size in args.sizes:
            started = time.perf_counter()
            add_events(size - seeded, seeded, rng)
            seeded = size
            if dialect == "postgresql":
                db.session.execute(text("ANALYZE"))
                db.session.commit()
            seed_s = time.perf_counter() - started
            print(f"[{dialect}] {size:,} events seeded in {seed_s:.0f} s", flush=True)
            db.session.remove()
            results[size] = {"ms": time_requests(app, args.requests)}
        version = db.session.execute(
            text("SELECT sqlite_version()" if dialect == "sqlite" else "SHOW server_version")
        ).scalar()
        body = app.test_client().get(USAGE_URL, headers=HEADERS).get_json()["customer_usage"]
        db.session.remove()
        db.engine.dispose()
    return {"dialect": dialect, "version": version, "results": results, "last": body}


def report(result: dict[str, Any], requests: int) -> bool:
    print(f"\n{result['dialect']} {result['version']}: current usage, {requests} requests a size")
    print(f"{'events in the period':<22} {'p50 ms':>8} {'p95 ms':>8}   target")
    ok = True
    result["figures"] = {}
    for size, data in result["results"].items():
        p95 = percentile(data["ms"], 95)
        target = TARGETS_P95_MS.get(size)
        met = target is None or p95 < target
        ok &= met
        result["figures"][size] = {
            "requests": len(data["ms"]), "p50_ms": percentile(data["ms"], 50), "p95_ms": p95,
            "target_p95_ms": target, "met": met,
        }  # fmt: skip
        verdict = f"p95 < {target:.0f} ms: {'met' if met else 'MISSED'}" if target else ""
        print(f"{size:<22,} {percentile(data['ms'], 50):>8.1f} {p95:>8.1f}   {verdict}")
    last = result["last"]
    counted = sum(charge["events_count"] for charge in last["charges_usage"])
    print(f"  (last answer: {counted:,} events counted, amount_cents {last['amount_cents']:,})")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="also run on this PostgreSQL server")
    parser.add_argument("--sqlite-path", help="SQLite file (default: a temporary one)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per size")
    parser.add_argument("--other-subscriptions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    add_json_option(parser)
    args = parser.parse_args()

    ok, results = True, []
    with tempfile.TemporaryDirectory() as tmp:
        path = args.sqlite_path or str(Path(tmp) / "current-usage-bench.db")
        results.append(run_backend(f"sqlite:///{path}", args))
        ok &= report(results[-1], args.requests)
    if args.database_url:
        with throwaway_postgresql(args.database_url, keep=False) as url:
            results.append(run_backend(url, args))
            ok &= report(results[-1], args.requests)
    save_results("current_usage", args, ok, {
        r["dialect"]: {"version": r["version"], "sizes": r["figures"]} for r in results
    })  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
