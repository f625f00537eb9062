"""Fault (c): PostgreSQL stops and starts again under load; Ledgerline is not restarted.

A PostgreSQL cluster of the test's own (initdb in a temporary directory, pg_ctl on a free port:
the machine's shared server is never touched) serves gunicorn (2 sync workers). Clients send a
mix of API requests (single events, batches, current usage, the customer list) without pause;
PostgreSQL is stopped (fast shutdown: sessions are cut mid-transaction), left down 3 s, and
started again. While it is down every answer must be Lago's 503 JSON error — no HTML, no stack
trace, no dropped connection — and once it is back the same workers must answer 200 again
(their pool replaces the dead connections: pool_pre_ping).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

from _common import flask, gunicorn, server_env, worker_pids
from load import API_KEY, seed

from tests.faults._support import postgresql_cluster, scalar

CLIENTS = 6
DOWN_SECONDS = 3
EXPECTED_503 = {"status": 503, "error": "Service Unavailable", "code": "database_unavailable"}


def request(host: str, port: int, n: int) -> tuple[int, str, bytes]:
    """One request of the mix: status, content type, body (status 0: the connection failed)."""
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    kind = n % 4
    if kind == 0:
        body = json.dumps({"event": {"transaction_id": f"t{n}", "external_subscription_id": "sub-1",
                                     "code": "api_calls", "properties": {"units": 1}}})  # fmt: skip
        method, path = "POST", "/api/v1/events"
    elif kind == 1:
        body = json.dumps({"events": [{
            "transaction_id": f"t{n}-{i}", "external_subscription_id": f"sub-{i % 5}",
            "code": "api_calls", "properties": {"units": 1},
        } for i in range(100)]})  # fmt: skip
        method, path = "POST", "/api/v1/events/batch"
    elif kind == 2:
        body, method = None, "GET"
        path = "/api/v1/customers/cust-2/current_usage?external_subscription_id=sub-2"
    else:
        body, method, path = None, "GET", "/api/v1/customers?per_page=20"
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    except (OSError, http.client.HTTPException) as exc:
        return 0, "", repr(exc).encode()
    finally:
        connection.close()


def test_requests_fail_cleanly_while_postgresql_restarts_and_then_recover():
    with postgresql_cluster() as cluster:
        scalar(cluster.url, "SELECT 1")
        env = server_env(cluster.url)
        flask(env, "db", "upgrade")
        flask(env, "orgs", "create", "Faults Org", "--api-key", API_KEY)
        with gunicorn(env, 2) as (base, master):
            seed(base, 5)
            workers = worker_pids(master)
            split = urlsplit(base)
            answers: list[tuple[float, int, str, bytes]] = []
            lock = threading.Lock()
            stop = threading.Event()
            counter = iter(range(10**9))

            def client() -> None:
                while not stop.is_set():
                    with lock:
                        n = next(counter)
                    status, content_type, body = request(split.hostname or "", split.port or 80, n)
                    with lock:
                        answers.append((time.monotonic(), status, content_type, body))

            threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
            for thread in threads:
                thread.start()
            time.sleep(3)
            stopped_at = time.monotonic()
            cluster.stop()
            time.sleep(DOWN_SECONDS)
            cluster.start()
            started_at = time.monotonic()
            time.sleep(8)
            stop.set()
            for thread in threads:
                thread.join()
            assert worker_pids(master) == workers, "a worker died: Ledgerline was restarted"

    before = [a for a in answers if a[0] < stopped_at]
    during = [a for a in answers if stopped_at <= a[0] < started_at]
    after = [a for a in answers if a[0] >= started_at]
    # a request answered within 2 s of the restart may still have met the old server
    settled = [a for a in after if a[0] >= started_at + 2]
    failed = [a for a in answers if a[1] != 200]
    statuses = Counter(a[1] for a in answers)
    print(f"\n{len(answers)} requests: {dict(statuses)}; before the stop {len(before)} "
          f"({sum(a[1] == 200 for a in before)} ok), while down {len(during)} "
          f"({sum(a[1] == 503 for a in during)} × 503), after the start {len(after)} "
          f"({sum(a[1] == 200 for a in after)} ok; from 2 s after: "
          f"{sum(a[1] == 200 for a in settled)}/{len(settled)} ok)")  # fmt: skip
    if failed:
        print(f"a failed answer: {failed[0][1]} {failed[0][2]} {failed[0][3].decode()!r}")
    assert all(a[1] == 200 for a in before)
    assert failed, "no request met the stopped server"
    assert {a[1] for a in failed} == {503}, Counter(a[1] for a in failed)
    for _, _, content_type, body in failed:
        assert content_type == "application/json"
        assert json.loads(body) == EXPECTED_503
        assert b"Traceback" not in body and b"<" not in body
    assert settled and all(a[1] == 200 for a in settled)
