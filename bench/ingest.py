"""Ingestion benchmark: events per second through the real HTTP API, against gunicorn.

Starts gunicorn (2 workers, the production entry point `app:create_app()`) on its own fresh
database, creates a metric, a plan and subscriptions over the API, then drives it with `wrk`
(Debian package `wrk`; a C load generator, so the generator costs little of the 2 cores) and a
Lua script that gives every event a unique transaction id:

* single events: `POST /api/v1/events`, one event per request;
* batches: `POST /api/v1/events/batch`, 100 events per request.

After each run it counts the stored events and checks them against wrk's successful requests.
Baseline in the same run: a bare sqlite3 `executemany` of the same rows into the same `events`
table (same unique key and indexes, created by the migrations), in 100-row transactions.
Targets on 2 cores: single ≥ 2,000 events/s; batch ≥ 30,000 events/s and ≥ 30% of the baseline.

    .venv/bin/python bench/ingest.py
    .venv/bin/python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import (  # noqa: E402
    add_json_option,
    cpu_seconds,
    flask,
    gunicorn,
    save_results,
    server_env,
    throwaway_postgresql,
    worker_pids,
)

BIN = Path(sys.executable).parent
API_KEY = "ll_bench_0123456789abcdef0123456789abcdef"
METRIC = "api_calls"
BATCH_SIZE = 100
TARGET_SINGLE = 2_000
TARGET_BATCH = 30_000
TARGET_BATCH_RATIO = 0.30
WRK = shutil.which("wrk")

LUA = """
local counter = 0
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(key)s"}
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
local function event()
  counter = counter + 1
  return string.format(
    '{"transaction_id":"%(run)s-%%d-%%d","external_subscription_id":"sub-%%d",' ..
    '"code":"%(metric)s","properties":{"units":%%d}}',
    tid, counter, counter %% %(subscriptions)d, counter %% 7 + 1)
end
function request()
  if %(batch)d == 0 then
    return wrk.format("POST", "/api/v1/events", headers, '{"event":' .. event() .. '}')
  end
  local items = {}
  for i = 1, %(batch)d do items[i] = event() end
  return wrk.format("POST", "/api/v1/events/batch", headers,
                    '{"events":[' .. table.concat(items, ",") .. ']}')
end
"""


def seed_over_api(base: str, subscriptions: int) -> None:
    """A sum metric, a plan charging it, and `subscriptions` customers subscribed to it."""
    api = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {API_KEY}"})

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = api.post(path, json=body)
        if response.status_code != 200:
            raise SystemExit(f"seeding {path} failed: {response.status_code} {response.text}")
        return response.json()

    metric = post("/billable_metrics", {"billable_metric": {
        "name": "API calls", "code": METRIC, "aggregation_type": "sum_agg", "field_name": "units",
    }})["billable_metric"]  # fmt: skip
    post("/plans", {"plan": {
        "name": "Bench", "code": "bench", "interval": "monthly", "amount_cents": 1000,
        "amount_currency": "EUR", "pay_in_advance": False,
        "charges": [{"billable_metric_id": metric["lago_id"], "charge_model": "standard",
                     "properties": {"amount": "0.01"}}],
    }})  # fmt: skip
    for n in range(subscriptions):
        post("/subscriptions", {"subscription": {
            "external_customer_id": f"cust-{n}", "external_id": f"sub-{n}", "plan_code": "bench",
        }})  # fmt: skip


def run_wrk(
    base: str, batch: int, args: argparse.Namespace, tmp: Path, workers: list[int]
) -> dict[str, Any]:
    """Drive the server with wrk; returns the count of requests, of failed ones, the duration,
    and the CPU seconds the gunicorn workers spent meanwhile."""
    script = tmp / f"ingest-{batch}.lua"
    script.write_text(LUA % {
        "key": API_KEY, "run": uuid.uuid4().hex[:8], "metric": METRIC, "batch": batch,
        "subscriptions": args.subscriptions,
    })  # fmt: skip
    cpu_before = cpu_seconds(workers)
    output = subprocess.run(  # noqa: S603
        [WRK, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s",
         "-s", str(script), base],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    worker_cpu = cpu_seconds(workers) - cpu_before
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    seconds = float(re.search(r"requests in ([\d.]+)s", output).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests": requests,
        "seconds": seconds,
        "failed": int(failed.group(1)) if failed else 0,
        "socket_errors": errors.group(1) if errors else "",
        "worker_cpu": worker_cpu,
    }


def bare_flask(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The same wrk runs against bench/echo_app.py (a bare Flask app that parses the bodies and
    echoes them) under the same gunicorn: the most any Flask view can serve on this machine."""
    results: dict[str, Any] = {}
    with gunicorn(dict(os.environ), args.workers, app="echo_app:app", cwd=ROOT / "bench") as (
        base,
        master,
    ):
        workers = worker_pids(master)
        for label, batch in (("single events", 0), (f"batches of {BATCH_SIZE}", BATCH_SIZE)):
            run = run_wrk(base, batch, args, tmp, workers)
            run["events_per_s"] = (run["requests"] - run["failed"]) * max(batch, 1) / run["seconds"]
            results[label] = run
    return results


def stored_events(url: str) -> int:
    from sqlalchemy import create_engine, text  # noqa: PLC0415

    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM events")).scalar_one()
    engine.dispose()
    return int(count)


def baseline(rows: int, path: Path) -> float:
    """Rows/s of a bare sqlite3 executemany into the migrated `events` table, 100 rows a time.
    The rows are those ingestion stores: matched to one of 100 subscriptions (and its customer)
    and the metric, so the subscription and customer indexes are written as the API writes them
    (rows with null ids there would all go to one place of those indexes)."""
    flask({**os.environ, "DATABASE_URL": f"sqlite:///{path}"}, "db", "upgrade")
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    batches = []
    for start in range(0, rows, BATCH_SIZE):
        batch = []
        for n in range(start, min(start + BATCH_SIZE, rows)):
            properties = json.dumps({"units": n % 7 + 1})
            batch.append((
                str(uuid.uuid4()), 1, f"base-{n}", f"sub-{n % 100}", METRIC, now, properties,
                hashlib.sha256(properties.encode()).hexdigest(), n % 100 + 1, 1, n % 100 + 1, now,
            ))  # fmt: skip
        batches.append(batch)
    started = time.perf_counter()
    for batch in batches:
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO events (lago_id, organization_id, transaction_id, "
            "external_subscription_id, code, timestamp, properties, fingerprint, "
            "subscription_id, billable_metric_id, customer_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return rows / elapsed


def run_backend(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    env = server_env(url)  # no rate limits: wrk's connections all come from 127.0.0.1
    flask(env, "db", "upgrade")
    flask(env, "orgs", "create", "Bench Org", "--api-key", API_KEY)
    results: dict[str, Any] = {}
    wal = Path(url.removeprefix("sqlite:///") + "-wal") if url.startswith("sqlite:") else None
    with gunicorn(env, args.workers) as (base, master):
        seed_over_api(base, args.subscriptions)
        workers = worker_pids(master)
        for label, batch in (("single events", 0), (f"batches of {BATCH_SIZE}", BATCH_SIZE)):
            before = stored_events(url)
            run = run_wrk(base, batch, args, tmp, workers)
            stored = stored_events(url) - before
            # the WAL file only grows (to the largest it had to be between checkpoints)
            run["wal_bytes"] = wal.stat().st_size if wal and wal.exists() else None
            per_request = max(batch, 1)
            expected = (run["requests"] - run["failed"]) * per_request
            results[label] = {
                **run,
                "events_per_s": expected / run["seconds"],
                "stored": stored,
                # wrk stops mid-request at the deadline: a request it gave up on may still be
                # stored, so at most `connections` requests' worth may differ
                "consistent": 0 <= stored - expected <= args.connections * per_request,
            }
    return results


def report(
    name: str,
    results: dict[str, Any],
    base_rate: float,
    args: argparse.Namespace,
    ceiling: dict[str, Any],
) -> bool:
    print(
        f"\n{name}: gunicorn {args.workers} workers; wrk {args.threads} threads, "
        f"{args.connections} connections, {args.duration} s per run"
    )
    ok = True
    for label, r in results.items():
        rate = r["events_per_s"]
        target = TARGET_SINGLE if label.startswith("single") else TARGET_BATCH
        met = rate >= target and r["failed"] == 0 and r["consistent"]
        line = (
            f"  {label:<20} {rate:>9,.0f} events/s  ({r['requests']:,} requests in "
            f"{r['seconds']:.1f} s, {r['failed']} failed, {r['stored']:,} stored"
            f"{'' if r['consistent'] else ' — MISMATCH'})  target ≥ {target:,}: "
        )
        if not label.startswith("single"):
            ratio = rate / base_rate
            met &= ratio >= TARGET_BATCH_RATIO
            line += f"{'met' if met else 'MISSED'}; {ratio:.0%} of the bare sqlite3 baseline"
        else:
            line += "met" if met else "MISSED"
        print(line + (f" socket errors: {r['socket_errors']}" if r["socket_errors"] else ""))
        cpu_ms = r["worker_cpu"] / max(r["requests"], 1) * 1000
        print(
            f"  {'':<20} worker CPU {cpu_ms:.2f} ms a request ({r['worker_cpu']:.1f} s in all)"
            f"; {rate / ceiling[label]['events_per_s']:.0%} of the bare Flask ceiling"
            + (f"; WAL file {r['wal_bytes'] / 2**20:.1f} MB" if r["wal_bytes"] else "")
        )
        ok &= met
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="also run on this PostgreSQL server")
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--baseline-rows", type=int, default=300_000)
    add_json_option(parser)
    args = parser.parse_args()
    if WRK is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2

    ok = True
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "ingest-bench.db"
        sqlite_results = run_backend(f"sqlite:///{path}", args, tmp)
        base_rate = baseline(args.baseline_rows, tmp / "baseline.db")
        print(
            f"\nbaseline: bare sqlite3 executemany into the same events table, "
            f"{BATCH_SIZE}-row transactions: {base_rate:,.0f} rows/s"
        )
        ceiling = bare_flask(args, tmp)
        print("ceiling: a bare Flask view parsing and echoing the same bodies, same gunicorn:")
        for label, run in ceiling.items():
            cpu_ms = run["worker_cpu"] / max(run["requests"], 1) * 1000
            print(
                f"  {label:<20} {run['events_per_s']:>9,.0f} events/s, "
                f"worker CPU {cpu_ms:.2f} ms a request"
            )
        ok &= report(f"SQLite {sqlite3.sqlite_version}", sqlite_results, base_rate, args, ceiling)
        figures: dict[str, Any] = {
            "baseline_rows_per_s": base_rate, "bare_flask": ceiling, "duration_s": args.duration,
            "connections": args.connections, "workers": args.workers,
            "targets": {"single": TARGET_SINGLE, "batch": TARGET_BATCH,
                        "batch_ratio": TARGET_BATCH_RATIO},
            "sqlite": sqlite_results,
        }  # fmt: skip
        if args.database_url:
            with throwaway_postgresql(args.database_url, keep=False) as url:
                figures["postgresql"] = run_backend(url, args, tmp)
                ok &= report("PostgreSQL", figures["postgresql"], base_rate, args, ceiling)
    save_results("ingest", args, ok, figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
