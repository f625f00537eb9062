"""The processes an operator starts: the jobs process and `make run`'s web + jobs pair."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from billing.demo import DEMO_API_KEY

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.live


def flask(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


@pytest.fixture
def env(tmp_path):
    """An environment with a database of its own (these tests run real processes)."""
    environ = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledgerline.db'}",
        "SECRET_KEY": "process-test",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(flask("db", "upgrade"), cwd=ROOT, env=environ, check=True, capture_output=True)
    return environ


def wait_for_line(process: subprocess.Popen, needle: str, timeout: float = 20) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    output = "".join(seen)
    raise AssertionError(f"{needle!r} never logged (exit {process.poll()}); got:\n{output}")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_jobs_process_starts_logs_and_stops_cleanly(env, stop_signal):
    with subprocess.Popen(
        flask("jobs", "run"), cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            wait_for_line(process, "jobs process started")
            process.send_signal(stop_signal)
            assert process.wait(timeout=20) == 0
            assert "jobs process stopped" in process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_runs_web_and_jobs_and_ctrl_c_stops_both(env):
    subprocess.run(flask("demo", "seed"), cwd=ROOT, env=env, check=True, capture_output=True)
    port = free_port()
    with subprocess.Popen(
        flask("serve"), cwd=ROOT, env={**env, "PORT": str(port)},
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as process:  # fmt: skip
        try:
            serve_and_stop(process, port)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


def serve_and_stop(process: subprocess.Popen, port: int) -> None:
    wait_for_line(process, "jobs process started")
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            health = httpx.get(f"{base}/health", timeout=2)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "web server never answered"
            time.sleep(0.2)
    assert health.json() == {"status": "ok"}
    customers = httpx.get(
        f"{base}/api/v1/customers", headers={"Authorization": f"Bearer {DEMO_API_KEY}"}
    )
    assert customers.json()["meta"]["total_count"] >= 18

    # Ctrl-C in a terminal signals the whole foreground process group.
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=20)
    output = process.stderr.read()
    assert "jobs process stopped" in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/health", timeout=2)


def test_without_secret_key_the_server_opens_the_links_other_processes_signed(env):
    """`make run` sets no SECRET_KEY: the portal links in the e-mails `demo seed` stored, and the
    one `serve` prints, open on the web server (one installation secret, not one per process)."""
    env = {key: value for key, value in env.items() if key != "SECRET_KEY"}
    subprocess.run(flask("demo", "seed"), cwd=ROOT, env=env, check=True, capture_output=True)
    database = sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///"))
    try:
        bodies = [row[0] for row in database.execute("SELECT body_text FROM emails")]
    finally:
        database.close()
    mailed = sorted({m for body in bodies for m in re.findall(r"/portal/[^/\s]+/", body)})
    assert mailed
    port = free_port()
    with subprocess.Popen(
        flask("serve"), cwd=ROOT, env={**env, "PORT": str(port)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as process:  # fmt: skip
        try:
            banner = process.stdout.readline() + process.stdout.readline()
            printed = re.search(r"/portal/[^/\s]+/", banner)
            assert printed, banner
            wait_for_line(process, "jobs process started")
            base = f"http://127.0.0.1:{port}"
            for path in [printed.group(0), *mailed]:
                page = get_when_up(f"{base}{path}")
                assert page.status_code == 200, path  # not the 403 "link expired" page
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


def get_when_up(url: str) -> httpx.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            assert time.monotonic() < deadline, "web server never answered"
            time.sleep(0.2)


SEED_WEBHOOKS = """
from app import create_app
from billing.services import audit, customers, organizations, webhooks
from extensions import db
import sys
app = create_app()
with app.app_context():
    org = organizations.create_organization("Hooks")
    webhooks.create_endpoint(org, {"webhook_url": sys.argv[1], "signature_algo": "hmac"}, audit.CLI)
    for n in range(int(sys.argv[2])):
        customers.upsert_customer(org, {"external_id": f"c{n}"}, audit.CLI)
    db.session.commit()
"""


def test_killing_the_jobs_process_mid_delivery_loses_no_webhook(env):
    """SIGKILL while a webhook request is in flight; a new jobs process sends everything."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[str] = []

    class SlowReceiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.3)  # long enough for the kill to land mid-request
            received.append(self.headers["X-Lago-Unique-Key"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**env, "WEBHOOK_TIMEOUT_SECONDS": "1"}
    count = 12
    url = f"http://127.0.0.1:{server.server_port}/hooks"
    subprocess.run(
        [sys.executable, "-c", SEED_WEBHOOKS, url, str(count)],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    try:
        first = subprocess.Popen(flask("jobs", "run"), cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.15)  # the next request is in flight
        first.kill()
        first.wait()
        assert 0 < len(received) < count
        with subprocess.Popen(
            flask("jobs", "run"), cwd=ROOT, env=env, stderr=subprocess.DEVNULL
        ) as second:
            try:
                deadline = time.monotonic() + 60
                while len(set(received)) < count and time.monotonic() < deadline:
                    time.sleep(0.2)
            finally:
                second.terminate()
                second.wait(timeout=20)
    finally:
        server.shutdown()
        server.server_close()
    assert len(set(received)) == count  # every customer.created delivered, at least once
