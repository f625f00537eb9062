"""What the benchmarks share: a gunicorn server of the app, throwaway databases, percentiles,
the machine's description, and the results protocol.

Results protocol: besides printing its figures, every benchmark writes them as JSON — to the
file given with `--json PATH`, or else to `$BENCH_RESULTS_DIR/<name>.json` when that variable is
set (`make bench` sets it) — and `bench/report.py` renders docs/benchmarks.md from those files.
Each file is `{"bench": name, "command": ..., "machine": {...}, "ok": bool, "results": ...}`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import normalize_database_url  # noqa: E402

#: the local PostgreSQL server `make bench` uses by default
DEFAULT_POSTGRESQL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# ---------------------------------------------------------------------------------------------
# Numbers


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# ---------------------------------------------------------------------------------------------
# Databases and servers


@contextmanager
def throwaway_postgresql(server_url: str, keep: bool = False) -> Iterator[str]:
    """A database created on that PostgreSQL server for one run, dropped afterwards."""
    server = make_url(normalize_database_url(server_url))
    name = f"ledgerline_bench_{os.getpid()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        if keep:
            print(f"kept PostgreSQL database {name!r}: {url}")
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flask(env: dict[str, str], *args: str) -> str:
    """Run `flask --app app <args>` from the repository root; its standard output."""
    result = subprocess.run(  # noqa: S603
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout


def server_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked server: its database, a fixed secret, no debug, and no
    rate limits (a benchmark's clients all come from 127.0.0.1)."""
    return {
        **os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench-secret", "FLASK_DEBUG": "0",
        "RATE_LIMITS_ENABLED": "0", **extra,
    }  # fmt: skip


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's children (its workers)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far, from /proc/<pid>/stat."""
    ticks = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # after "(comm)": fields from state on
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def gunicorn(
    env: dict[str, str],
    workers: int,
    *extra_args: str,
    app: str = "app:create_app()",
    cwd: Path = ROOT,
) -> Iterator[tuple[str, int]]:
    """A gunicorn server of the app (`app:create_app()` unless told another, sync workers) on a
    free port; yields its base URL and the master's pid."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [str(BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", *extra_args, app],
        cwd=cwd, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded machine takes its time importing the app
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


# ---------------------------------------------------------------------------------------------
# The machine


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip() if ":" in line else line
    except OSError:
        return None
    return None


def postgresql_version(url: str) -> str | None:
    try:
        engine = create_engine(normalize_database_url(url))
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar()
        engine.dispose()
        return str(version)
    except Exception:  # noqa: BLE001 - no server: the report says so
        return None


def machine(database_url: str | None = None) -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, SQLite and PostgreSQL versions, load average."""
    memory_kb = _first("/proc/meminfo", "MemTotal")
    os_name = _first("/etc/os-release", "PRETTY_NAME=")
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory_kb.split()[0]) / 2**20, 1) if memory_kb else None,
        "os": (os_name or "").split("=", 1)[-1].strip('"') or platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgresql_version(database_url) if database_url else None,
        "load_average": round(os.getloadavg()[0], 2),
    }


# ---------------------------------------------------------------------------------------------
# Results protocol


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the figures as JSON there (default: $BENCH_RESULTS_DIR/<bench>.json "
        "when BENCH_RESULTS_DIR is set)",
    )


def save_results(name: str, args: argparse.Namespace, ok: bool, results: Any) -> Path | None:
    """Write one benchmark's figures for bench/report.py; returns the file, if any."""
    path: Path | None = Path(args.json) if getattr(args, "json", None) else None
    if path is None and os.environ.get("BENCH_RESULTS_DIR"):
        path = Path(os.environ["BENCH_RESULTS_DIR"]) / f"{name}.json"
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    command = ".venv/bin/python " + shlex.join(
        [str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]]
    )
    document = {
        "bench": name,
        "command": command,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(getattr(args, "database_url", None)),
        "ok": ok,
        "results": results,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"figures written to {path}")
    return path
