"""Console list benchmark: server time of the customer list page with 100,000 customers.

Seeds N customers (default 100,000) with the customer-search benchmark's seeder, signs an agent
in, and times whole requests of the console's list page through the WSGI app (routing, the
listing service, the template): the plain list, sorted columns, live search, filters and their
combinations, as full pages and as htmx fragments, plus the saved views' counts that the sidebar
loads after each page. Target on 2 cores: p95 < 100 ms for every kind.

    .venv/bin/python bench/console_list.py
    .venv/bin/python bench/console_list.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test   # and PostgreSQL
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_json_option, percentile, save_results, throwaway_postgresql  # noqa: E402
from customer_search import maintain, seed  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app import create_app  # noqa: E402
from billing.models import Organization, SavedView  # noqa: E402
from billing.services import audit  # noqa: E402
from billing.services.organizations import create_agent  # noqa: E402
from extensions import db  # noqa: E402

TARGET_P95_MS = 100.0
BENCH_ACTOR = audit.Actor(type="system", source="cli", label="benchmark")


def scenarios(rng: random.Random, names: list[str]) -> dict[str, list[str]]:
    """Query strings of the list page, by kind; several variants of each."""
    prefixes = [name[:3].lower() for name in rng.sample(names, 6)]
    return {
        "plain list": ["", "page=2", "page=40"],
        "sorted": ["sort=name", "sort=-email", "sort=country&page=3"],
        "search, selective": [f"q={p}{rng.choice('aeiou')}" for p in prefixes[:3]]
        + ["q=enterprise+gold"],
        "search, broad": ["q=gmail", "q=gold", "q=smb"],
        "filters": ["country=FR", "currency=EUR&customer_type=company", "status=inactive",
                    "meta_key=tier&meta_value=gold",
                    "created_from=2024-01-01&created_to=2024-06-30"],
        "search + filters": ["q=gmail&country=DE", f"q={prefixes[3]}&currency=EUR",
                             "q=gold&created_from=2025-01-01&sort=name"],
    }  # fmt: skip


def sign_in(app: Any, organization_id: int) -> Any:
    """A test client whose session carries a signed-in agent, with three saved views."""
    organization = db.session.get_one(Organization, organization_id)
    agent = create_agent(organization, "bench@agents.test", "admin", "bench-password", BENCH_ACTOR)
    for name, query in (("Gold", "meta_key=tier&meta_value=gold"), ("French", "country=FR"),
                        ("Gmail", "q=gmail")):  # fmt: skip
        db.session.add(SavedView(organization_id=organization_id, agent_id=agent.id, name=name,
                                 query=query))  # fmt: skip
    db.session.commit()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(agent.id)
        session["_fresh"] = True
    return client


def run_backend(url: str, args: argparse.Namespace) -> dict[str, Any]:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    results: dict[str, dict[str, list[float]]] = {}
    with app.app_context():
        dialect = db.engine.dialect.name
        upgrade()
        rng = random.Random(args.seed)
        started = time.perf_counter()
        organization_id, sample = seed(args.customers, args.customers // 10, rng)
        maintain()
        print(f"[{dialect}] seeded in {time.perf_counter() - started:.0f} s", flush=True)
        client = sign_in(app, organization_id)
        names = [s.row["name"] for s in sample if s.row["name"]]
        requests: dict[str, list[tuple[str, bool]]] = {}
        for kind, queries in scenarios(random.Random(args.seed + 1), names).items():
            for htmx in (False, True):
                label = f"{kind} ({'htmx fragment' if htmx else 'full page'})"
                requests[label] = [(f"/customers?{query}", htmx) for query in queries]
        # What every console page loads right after it renders: the saved views' counts.
        requests["saved views' counts (sidebar, 3 views)"] = [("/views", True)]
        for label, urls in requests.items():
            timings: list[float] = []
            for _ in range(args.repeat):
                for url, htmx in urls:
                    headers = {"HX-Request": "true"} if htmx else {}
                    t0 = time.perf_counter()
                    response = client.get(url, headers=headers)
                    timings.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200, (url, response.status_code)
            results[label] = {"ms": timings}
        version = db.session.execute(
            text("SELECT sqlite_version()" if dialect == "sqlite" else "SHOW server_version")
        ).scalar()
        db.session.remove()
        db.engine.dispose()
    return {"dialect": dialect, "version": version, "results": results}


def report(result: dict[str, Any], customers: int) -> bool:
    print(f"\n{result['dialect']} {result['version']}: console list page, {customers:,} customers")
    print(f"{'request':<42} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
    ok = True
    everything: list[float] = []
    result["figures"] = figures = {}
    for label, data in result["results"].items():
        timings = data["ms"]
        everything += timings
        p95 = percentile(timings, 95)
        ok &= p95 < TARGET_P95_MS
        figures[label] = {"n": len(timings), "p50_ms": percentile(timings, 50), "p95_ms": p95}
        print(f"{label:<42} {len(timings):>4} {percentile(timings, 50):>8.1f} {p95:>8.1f}")
    p95_all = percentile(everything, 95)
    figures["all requests"] = {
        "n": len(everything), "p50_ms": percentile(everything, 50), "p95_ms": p95_all,
    }  # fmt: skip
    print(
        f"{'all requests':<42} {len(everything):>4} {percentile(everything, 50):>8.1f} "
        f"{p95_all:>8.1f}   target p95 < {TARGET_P95_MS:.0f} ms: {'met' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database-url", help="also run on this PostgreSQL server")
    parser.add_argument("--sqlite-path", help="SQLite file (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each query")
    parser.add_argument("--seed", type=int, default=7)
    add_json_option(parser)
    args = parser.parse_args()

    ok, results = True, []
    with tempfile.TemporaryDirectory() as tmp:
        path = args.sqlite_path or str(Path(tmp) / "console-bench.db")
        Path(path).unlink(missing_ok=True)
        results.append(run_backend(f"sqlite:///{path}", args))
        ok &= report(results[-1], args.customers)
    if args.database_url:
        with throwaway_postgresql(args.database_url, keep=False) as url:
            results.append(run_backend(url, args))
            ok &= report(results[-1], args.customers)
    save_results("console_list", args, ok, {
        r["dialect"]: {"version": r["version"], "customers": args.customers,
                       "target_p95_ms": TARGET_P95_MS, "requests": r["figures"]}
        for r in results
    })  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
