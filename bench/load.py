"""Load benchmark: mixed traffic from 32 concurrent clients against gunicorn, no errors allowed.

Starts gunicorn (2 sync workers, `app:create_app()`, RATE_LIMITS_ENABLED=0) on a fresh database,
seeds over the API a sum metric, a plan and `--subscriptions` customers subscribed to it, signs
an agent in through the console's login form and fetches portal links over the API. Then
`--clients` clients (threads spread over `--processes` generator processes on the same machine,
each request on a new `http.client` connection, as gunicorn's sync workers close them) send for
`--duration` seconds a weighted mix of what a busy day looks like:

* event ingestion: single events (`POST /api/v1/events`) and batches of 100
  (`POST /api/v1/events/batch`), every event a new transaction id;
* current usage (`GET /api/v1/customers/<id>/current_usage`);
* the API's customer list, plain and searched (`GET /api/v1/customers?search_term=…`);
* the console's customer list, full page and htmx live search, as the signed-in agent;
* the portal's overview and invoice list, with a portal link's token.

Every answer but a 200 counts as an error (and every transport error); a "database is locked"
anywhere in an answer is reported apart. After the run the stored events are counted against
the successful ingestion requests. Reported: p50/p95/p99 per kind of request and the overall
throughput. Target: 0 errors, on SQLite and on PostgreSQL (`--database-url`).

    .venv/bin/python bench/load.py
    .venv/bin/python bench/load.py --duration 10 --clients 8      # a quick run
    .venv/bin/python bench/load.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test  # and PostgreSQL
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    add_json_option,
    cpu_seconds,
    flask,
    gunicorn,
    percentile,
    save_results,
    server_env,
    throwaway_postgresql,
    worker_pids,
)

API_KEY = "ll_bench_0123456789abcdef0123456789abcdef"
AGENT_EMAIL = "load@agents.test"
AGENT_PASSWORD = "load-bench-password"  # noqa: S105
METRIC = "api_calls"
BATCH_SIZE = 100
PORTAL_LINKS = 20
#: kind of request → weight in the mix
MIX = {
    "event (single)": 30,
    "events (batch of 100)": 6,
    "current usage": 14,
    "API customer list": 8,
    "API customer search": 8,
    "console customer list": 8,
    "console search (htmx)": 8,
    "portal overview": 9,
    "portal invoices": 9,
}
INGESTION = {"event (single)": 1, "events (batch of 100)": BATCH_SIZE}
SEARCH_TERMS = ["cust-1", "customer 4", "billing", "example.com", "cust-9", "zzz-none"]


@dataclass
class Plan:
    """What a generator process needs: where to send what, and for how long."""

    host: str
    port: int
    clients: int
    duration: float
    subscriptions: int
    session_cookie: str
    portal_paths: list[str]
    seed: int
    start_at: float = 0.0
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


def request_for(kind: str, plan: Plan, rng: random.Random, counter: Callable[[], int]) -> tuple:
    """(method, path, body, headers) of one request of that kind."""
    api = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    n = rng.randrange(plan.subscriptions)

    def event() -> dict[str, Any]:
        m = rng.randrange(plan.subscriptions)
        return {
            "transaction_id": f"{plan.run}-{plan.seed}-{counter()}",
            "external_subscription_id": f"sub-{m}", "code": METRIC,
            "properties": {"units": rng.randint(1, 7)},
        }  # fmt: skip

    if kind == "event (single)":
        return "POST", "/api/v1/events", json.dumps({"event": event()}), api
    if kind == "events (batch of 100)":
        body = json.dumps({"events": [event() for _ in range(BATCH_SIZE)]})
        return "POST", "/api/v1/events/batch", body, api
    if kind == "current usage":
        path = f"/api/v1/customers/cust-{n}/current_usage?external_subscription_id=sub-{n}"
        return "GET", path, None, api
    if kind == "API customer list":
        return "GET", f"/api/v1/customers?per_page=20&page={rng.randint(1, 3)}", None, api
    if kind == "API customer search":
        term = rng.choice(SEARCH_TERMS).replace(" ", "+")
        return "GET", f"/api/v1/customers?per_page=20&search_term={term}", None, api
    console = {"Cookie": plan.session_cookie}
    if kind == "console customer list":
        return "GET", f"/customers?page={rng.randint(1, 2)}", None, console
    if kind == "console search (htmx)":
        term = rng.choice(SEARCH_TERMS).replace(" ", "+")
        return "GET", f"/customers?q={term}", None, {**console, "HX-Request": "true"}
    portal = rng.choice(plan.portal_paths)
    if kind == "portal overview":
        return "GET", portal, None, {}
    return "GET", f"{portal}invoices", None, {}


def generate(plan: Plan) -> dict[str, Any]:
    """One generator process: `plan.clients` threads, each sending requests one after the
    other until the deadline. Returns per kind the latencies (ms) and the errors."""
    latencies: dict[str, list[float]] = {kind: [] for kind in MIX}
    errors: dict[str, list[str]] = {kind: [] for kind in MIX}
    locked = [0]
    lock = threading.Lock()
    sequence = iter(range(10**12))

    def counter() -> int:
        with lock:
            return next(sequence)

    kinds, weights = list(MIX), list(MIX.values())
    # every process stops at the same instant (the deadline is set after the slowest start)
    deadline = time.monotonic() + plan.duration - (time.time() - plan.start_at)

    def client(index: int) -> None:
        rng = random.Random(plan.seed * 1000 + index)
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            method, path, body, headers = request_for(kind, plan, rng, counter)
            started = time.perf_counter()
            connection = http.client.HTTPConnection(plan.host, plan.port, timeout=60)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                status, payload = 0, repr(exc).encode()
            finally:
                connection.close()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if status == 200:
                    latencies[kind].append(elapsed)
                else:
                    errors[kind].append(f"{status} {payload[:300].decode(errors='replace')}")
                if b"database is locked" in payload:
                    locked[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(plan.clients)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "errors": errors, "locked": locked[0], "started": started,
            "ended": time.time()}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Set-up


def seed(base: str, subscriptions: int) -> list[str]:
    """A sum metric, a plan charging it, `subscriptions` subscribed customers; returns portal
    paths of the first customers."""
    api = httpx.Client(
        base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    )

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = api.request(method, path, json=body)
        if response.status_code != 200:
            raise SystemExit(f"seeding {path} failed: {response.status_code} {response.text}")
        return response.json()

    metric = call("POST", "/billable_metrics", {"billable_metric": {
        "name": "API calls", "code": METRIC, "aggregation_type": "sum_agg", "field_name": "units",
    }})["billable_metric"]  # fmt: skip
    call("POST", "/plans", {"plan": {
        "name": "Load", "code": "load", "interval": "monthly", "amount_cents": 1000,
        "amount_currency": "EUR", "pay_in_advance": False,
        "charges": [{"billable_metric_id": metric["lago_id"], "charge_model": "standard",
                     "properties": {"amount": "0.01"}}],
    }})  # fmt: skip
    for n in range(subscriptions):
        call("POST", "/customers", {"customer": {
            "external_id": f"cust-{n}", "name": f"Customer {n}",
            "email": f"billing+{n}@example.com", "currency": "EUR",
        }})  # fmt: skip
        call("POST", "/subscriptions", {"subscription": {
            "external_customer_id": f"cust-{n}", "external_id": f"sub-{n}", "plan_code": "load",
        }})  # fmt: skip
    paths = []
    for n in range(min(PORTAL_LINKS, subscriptions)):
        url = call("GET", f"/customers/cust-{n}/portal_url")["customer"]["portal_url"]
        paths.append(urlsplit(url).path)
    return paths


def sign_in(base: str) -> str:
    """The console's session cookie of the agent, through the login form."""
    with httpx.Client(base_url=base, timeout=30) as browser:
        page = browser.get("/login").text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        if token is None:
            raise SystemExit("no CSRF token on the login page")
        response = browser.post("/login", data={
            "csrf_token": token.group(1), "email": AGENT_EMAIL, "password": AGENT_PASSWORD,
        })  # fmt: skip
        if response.status_code != 302:
            raise SystemExit(f"login failed: {response.status_code}")
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        if browser.get("/customers", headers={"Cookie": cookie}).status_code != 200:
            raise SystemExit("the signed-in agent cannot open the customer list")
        return cookie


def stored_events(url: str) -> int:
    from sqlalchemy import create_engine, text  # noqa: PLC0415

    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM events")).scalar_one()
    engine.dispose()
    return int(count)


def run_backend(url: str, args: argparse.Namespace) -> dict[str, Any]:
    env = server_env(url)
    flask(env, "db", "upgrade")
    flask(env, "orgs", "create", "Load Org", "--api-key", API_KEY)
    flask(env, "agents", "create", AGENT_EMAIL, "--org", "Load Org", "--role", "admin",
          "--password", AGENT_PASSWORD)  # fmt: skip
    with gunicorn(env, args.workers) as (base, master):
        started = time.perf_counter()
        portal_paths = seed(base, args.subscriptions)
        cookie = sign_in(base)
        print(f"seeded {args.subscriptions} subscriptions in {time.perf_counter() - started:.0f} s",
              flush=True)  # fmt: skip
        workers = worker_pids(master)
        before = stored_events(url)
        split = urlsplit(base)
        processes = max(1, min(args.processes, args.clients))
        shares = [args.clients // processes + (i < args.clients % processes)
                  for i in range(processes)]  # fmt: skip
        plans = [
            Plan(split.hostname or "127.0.0.1", split.port or 80, share, args.duration,
                 args.subscriptions, cookie, portal_paths, seed=i)
            for i, share in enumerate(shares)
        ]  # fmt: skip
        cpu_before = cpu_seconds(workers)
        with ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            list(pool.map(time.sleep, [0] * processes))  # the processes started and imported
            for plan in plans:
                plan.start_at = time.time()
            parts = list(pool.map(generate, plans))
        wall = max(part["ended"] for part in parts) - min(part["started"] for part in parts)
        worker_cpu = cpu_seconds(workers) - cpu_before
        stored = stored_events(url) - before
        dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    kinds: dict[str, dict[str, Any]] = {}
    everything: list[float] = []
    for kind in MIX:
        ms = [value for part in parts for value in part["latencies"][kind]]
        errors = [error for part in parts for error in part["errors"][kind]]
        everything += ms
        kinds[kind] = {
            "requests": len(ms) + len(errors),
            "errors": len(errors),
            "error_samples": sorted(set(errors))[:3],
            "p50_ms": percentile(ms, 50) if ms else None,
            "p95_ms": percentile(ms, 95) if ms else None,
            "p99_ms": percentile(ms, 99) if ms else None,
            "per_s": len(ms) / wall,
        }
    expected = sum(
        (kinds[kind]["requests"] - kinds[kind]["errors"]) * size for kind, size in INGESTION.items()
    )
    total = sum(k["requests"] for k in kinds.values())
    return {
        "dialect": dialect,
        "kinds": kinds,
        "requests": total,
        "errors": sum(k["errors"] for k in kinds.values()),
        "database_locked": sum(part["locked"] for part in parts),
        "seconds": wall,
        "per_s": total / wall,
        "p50_ms": percentile(everything, 50) if everything else None,
        "p95_ms": percentile(everything, 95) if everything else None,
        "p99_ms": percentile(everything, 99) if everything else None,
        "events_expected": expected,
        "events_stored": stored,
        "events_per_s": stored / wall,
        "worker_cpu_s": worker_cpu,
        "clients": args.clients,
        "processes": processes,
        "workers": args.workers,
    }


def report(name: str, r: dict[str, Any]) -> bool:
    print(
        f"\n{name}: gunicorn {r['workers']} workers; {r['clients']} clients in {r['processes']} "
        f"processes for {r['seconds']:.1f} s"
    )
    print(f"{'request':<24} {'n':>7} {'errors':>6} {'/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8}")  # fmt: skip

    def ms(value: float | None) -> str:
        return f"{value:8.1f}" if value is not None else f"{'—':>8}"

    for kind, k in r["kinds"].items():
        print(f"{kind:<24} {k['requests']:>7,} {k['errors']:>6} {k['per_s']:>7.1f} "
              f"{ms(k['p50_ms'])} {ms(k['p95_ms'])} {ms(k['p99_ms'])}")  # fmt: skip
        for sample in k["error_samples"]:
            print(f"    error: {sample[:160]!r}")
    print(f"{'all requests':<24} {r['requests']:>7,} {r['errors']:>6} {r['per_s']:>7.1f} "
          f"{ms(r['p50_ms'])} {ms(r['p95_ms'])} {ms(r['p99_ms'])}")  # fmt: skip
    consistent = r["events_stored"] == r["events_expected"]
    print(
        f"events: {r['events_stored']:,} stored, {r['events_expected']:,} accepted "
        f"({'consistent' if consistent else 'MISMATCH'}), {r['events_per_s']:,.0f} events/s; "
        f"worker CPU {r['worker_cpu_s']:.1f} s; 'database is locked': {r['database_locked']}"
    )
    ok = r["errors"] == 0 and r["database_locked"] == 0 and consistent
    print(f"target 0 errors: {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="also run on this PostgreSQL server")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (60)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--processes", type=int, default=4, help="generator processes (4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--skip-sqlite", action="store_true")
    add_json_option(parser)
    args = parser.parse_args()

    ok, results = True, {}
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            results["sqlite"] = run_backend(f"sqlite:///{Path(tmp) / 'load-bench.db'}", args)
        ok &= report("SQLite", results["sqlite"])
    if args.database_url:
        with throwaway_postgresql(args.database_url) as url:
            results["postgresql"] = run_backend(url, args)
        ok &= report("PostgreSQL", results["postgresql"])
    save_results("load", args, ok, results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
