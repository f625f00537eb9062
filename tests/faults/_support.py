"""Helpers of the fault-injection tests: databases per backend, a throwaway PostgreSQL cluster,
and SQL counts. The servers themselves come from bench/_common.py (gunicorn as in production)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from glob import glob
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from _common import free_port, throwaway_postgresql  # noqa: E402

FAULTS_DATABASE_URL = os.environ.get("FAULTS_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if FAULTS_DATABASE_URL else [])


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on that backend (a file; or a throwaway database on the server of
    FAULTS_DATABASE_URL, dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'faults.db'}"
        return
    assert FAULTS_DATABASE_URL
    with throwaway_postgresql(FAULTS_DATABASE_URL) as url:
        yield url


def scalar(url: str, sql: str, **params: Any) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def rows(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)))
    finally:
        engine.dispose()


def seed_period_close(url: str, subscriptions: int) -> tuple[int, str]:
    """Migrate the empty database at `url` and seed it in this process with the period-close
    benchmark's seeder (`subscriptions` monthly subscriptions whose period has ended, two
    events each); the organization id and the --at of the close."""
    from flask_migrate import upgrade  # noqa: PLC0415
    from period_close import seed as seed_periods  # noqa: PLC0415

    from app import create_app  # noqa: PLC0415
    from extensions import db  # noqa: PLC0415

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "faults"})
    with app.app_context():
        upgrade()
        organization_id, period_end = seed_periods(subscriptions, 2, random.Random(5))
        db.session.remove()
        db.engine.dispose()
    return organization_id, (period_end + timedelta(hours=1)).isoformat()


def close_periods(url: str, at: str) -> subprocess.Popen[bytes]:
    """`flask --app app billing close-periods --at <at>` against `url`, output piped."""
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "faults", "FLASK_DEBUG": "0"}
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "flask", "--app", "app", "billing", "close-periods", "--at", at],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# A PostgreSQL cluster of our own, to restart without touching the machine's shared server


def _as_postgres(command: list[str]) -> list[str]:
    """Run as the `postgres` user when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *command]
    return ["su", "postgres", "-c", " ".join(command)]


class Cluster:
    """A throwaway PostgreSQL cluster (initdb in a temporary directory, pg_ctl on a free port)."""

    def __init__(self) -> None:
        binaries = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise RuntimeError("PostgreSQL's initdb is not installed (/usr/lib/postgresql/*/bin)")
        self.bin = Path(binaries[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="ledgerline-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(  # noqa: S603
            _as_postgres([str(self.bin / tool), *args]), check=True, capture_output=True
        )

    def _ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run("pg_ctl", action, "-D", str(self.data), "-o", options, "-l",
                  str(self.dir / "server.log"), "-w", *args)  # fmt: skip

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def destroy(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def postgresql_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                scalar(cluster.url, "SELECT 1")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield cluster
    finally:
        cluster.destroy()
