"""Several clients at once against a real server: upserts never duplicate, never collide."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = pytest.mark.live

CLIENTS = 12


def post_customers(live_server, raw_key, payloads):
    headers = {"Authorization": f"Bearer {raw_key}"}

    def post(payload):
        return httpx.post(
            f"{live_server.url}/api/v1/customers",
            json={"customer": payload},
            headers=headers,
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(post, payloads))


def test_concurrent_upserts_of_one_new_external_id_create_it_once(live_server):
    _org_id, raw_key = live_server.new_organization()

    responses = post_customers(
        live_server, raw_key, [{"external_id": "race", "name": f"n{i}"} for i in range(CLIENTS)]
    )

    assert [r.status_code for r in responses] == [200] * CLIENTS
    assert len({r.json()["customer"]["lago_id"] for r in responses}) == 1
    listing = httpx.get(
        f"{live_server.url}/api/v1/customers",
        headers={"Authorization": f"Bearer {raw_key}"},
    ).json()
    assert listing["meta"]["total_count"] == 1


def test_concurrent_creations_get_distinct_sequential_ids(live_server):
    _org_id, raw_key = live_server.new_organization()

    responses = post_customers(
        live_server, raw_key, [{"external_id": f"c{i}"} for i in range(CLIENTS)]
    )

    assert [r.status_code for r in responses] == [200] * CLIENTS
    sequential_ids = sorted(r.json()["customer"]["sequential_id"] for r in responses)
    assert sequential_ids == list(range(1, CLIENTS + 1))
