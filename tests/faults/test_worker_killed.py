"""Fault (b): a gunicorn worker is SIGKILLed while batches of 100 events are in flight.

gunicorn (2 sync workers, as in production) on a fresh database; 8 clients send batches of 100
events without pause, every event's transaction id naming its batch. Each worker is killed in
turn with SIGKILL (gunicorn's master starts a new one). A batch is one transaction: each must be
stored entirely (100 events) or not at all, whatever its client saw; every batch answered 200
must be stored entirely; the server keeps answering after the kills.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
from _common import flask, gunicorn, server_env, worker_pids
from load import API_KEY, seed

from tests.faults._support import BACKENDS, fresh_database, kill, rows

CLIENTS = 8
BATCH = 100


def send_batch(host: str, port: int, batch_id: str) -> str:
    """'ok', or what went wrong ('status 500', 'connection: …')."""
    events = [{
        "transaction_id": f"{batch_id}:{i}", "external_subscription_id": f"sub-{i % 10}",
        "code": "api_calls", "properties": {"units": 1},
    } for i in range(BATCH)]  # fmt: skip
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        connection.request("POST", "/api/v1/events/batch", body=json.dumps({"events": events}),
                           headers={"Authorization": f"Bearer {API_KEY}",
                                    "Content-Type": "application/json"})  # fmt: skip
        response = connection.getresponse()
        response.read()
        return "ok" if response.status == 200 else f"status {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        return f"connection: {type(exc).__name__}"
    finally:
        connection.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_batch_is_stored_whole_or_not_at_all(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        env = server_env(url)
        flask(env, "db", "upgrade")
        flask(env, "orgs", "create", "Faults Org", "--api-key", API_KEY)
        with gunicorn(env, 2) as (base, master):
            seed(base, 10)
            split = urlsplit(base)
            outcomes: dict[str, str] = {}
            lock = threading.Lock()
            stop = threading.Event()

            def client(n: int) -> None:
                k = 0
                while not stop.is_set():
                    batch_id = f"c{n}b{k}"
                    outcome = send_batch(split.hostname or "", split.port or 80, batch_id)
                    with lock:
                        outcomes[batch_id] = outcome
                    k += 1

            threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
            for thread in threads:
                thread.start()
            killed = []
            for _ in range(2):
                time.sleep(2)
                # the oldest worker: the other one may be one the master just started
                victim = worker_pids(master)[0]
                kill(victim)
                killed.append(victim)
            time.sleep(3)
            stop.set()
            for thread in threads:
                thread.join()
            # the server still answers once its workers were replaced
            assert send_batch(split.hostname or "", split.port or 80, "after") == "ok"
            outcomes["after"] = "ok"
            workers_now = worker_pids(master)

        stored = Counter(
            transaction_id.split(":")[0]
            for (transaction_id,) in rows(url, "SELECT transaction_id FROM events")
        )
    sent = Counter(outcome.split(":")[0] for outcome in outcomes.values())
    partial = {batch: count for batch, count in stored.items() if count != BATCH}
    lost = [
        batch for batch, outcome in outcomes.items() if outcome == "ok" and stored[batch] != BATCH
    ]
    failed = [batch for batch, outcome in outcomes.items() if outcome != "ok"]
    failed_stored = sum(1 for batch in failed if stored[batch] == BATCH)
    print(f"\n[{backend}] killed workers {killed} (now {workers_now}); {len(outcomes)} batches "
          f"sent: {dict(sent)}; stored {len(stored)} batches, {sum(stored.values())} events; "
          f"partially stored: {len(partial)}; answered 200 but missing: {len(lost)}; of the "
          f"{len(failed)} failed requests {failed_stored} stored whole, "
          f"{len(failed) - failed_stored} not at all")  # fmt: skip
    assert failed, "no batch was in flight when the workers were killed"
    assert partial == {}
    assert lost == []
    assert set(stored) <= set(outcomes)
    assert not set(killed) & set(workers_now)
