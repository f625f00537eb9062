"""POST/GET /api/v1/events: validation, idempotency, matching, outbox, buckets, listing."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from billing.models import Event, OutboxEvent, UsageBucket
from billing.timeutil import set_clock
from extensions import db
from tests import factories
from tests.usage_helpers import (
    add_charge,
    event,
    live_metered,
    make_metric,
    make_plan,
    make_subscription,
)

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
STARTED = datetime(2024, 1, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def setup(org: Any, db_session: Any) -> Any:
    set_clock(lambda: NOW)
    customer = factories.make_customer(org, timezone="Europe/Paris")
    metric = make_metric(org, "sum_agg", "value", code="storage")
    counter = make_metric(org, "count_agg", code="calls")
    plan = make_plan(org)
    add_charge(plan, metric)
    subscription = make_subscription(org, customer, plan, STARTED, external_id="sub-1")

    class Setup:
        pass

    s = Setup()
    s.org, s.customer, s.metric, s.counter, s.plan, s.subscription = (
        org, customer, metric, counter, plan, subscription,
    )  # fmt: skip
    return s


def post(api_client: Any, payload: dict[str, Any]) -> Any:
    return api_client.post("/api/v1/events", json={"event": payload})


def batch(api_client: Any, payloads: list[Any]) -> Any:
    return api_client.post("/api/v1/events/batch", json={"events": payloads})


def count_events(setup: Any) -> int:
    """The events of the test's organization (live-server tests commit theirs)."""
    return db.session.scalar(
        select(func.count()).select_from(Event).where(Event.organization_id == setup.org.id)
    )


def buckets(setup: Any) -> list[UsageBucket]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(UsageBucket)
            .where(UsageBucket.subscription_id == setup.subscription.id)
            .order_by(UsageBucket.day)
        )
    )


def validation(details: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }


def test_post_event_stores_matches_and_answers_lagos_shape(api_client, setup):
    response = post(
        api_client,
        event("sub-1", "storage", "tx-1", timestamp=1710500000.1234, properties={"value": "2.5"}),
    )

    assert response.status_code == 200
    body = response.json["event"]
    assert body["transaction_id"] == "tx-1"
    assert body["external_subscription_id"] == "sub-1"
    assert body["code"] == "storage"
    assert body["timestamp"] == "2024-03-15T10:53:20.123Z"
    assert body["properties"] == {"value": "2.5"}
    assert body["precise_total_amount_cents"] is None
    assert body["lago_subscription_id"] == str(setup.subscription.lago_id)
    assert body["lago_customer_id"] == str(setup.customer.lago_id)
    assert body["created_at"] == "2024-03-15T12:00:00Z"
    [bucket] = buckets(setup)
    assert (bucket.day.isoformat(), bucket.events_count, bucket.sum_value) == (
        "2024-03-15",
        1,
        Decimal("2.5"),
    )


def test_answers_echo_any_json_properties_as_sent(api_client, setup):
    """The answer's properties are those sent, whatever JSON they hold: integers beyond 64
    bits and non-ASCII text included (the fast encoder refuses the former)."""
    properties = {"value": 1, "big": 2**70, "label": "Zürich – 東京", "nested": [1.5, None]}

    single = post(api_client, event("sub-1", "storage", "tx-p1", properties=properties))
    batched = batch(api_client, [event("sub-1", "storage", f"tx-p{i}", properties=properties)
                                 for i in (2, 3)])  # fmt: skip

    assert single.status_code == batched.status_code == 200
    assert single.json["event"]["properties"] == properties
    assert [item["properties"] for item in batched.json["events"]] == [properties] * 2


def test_absent_or_null_timestamp_means_now_and_is_local_day_bucketed(api_client, setup):
    set_clock(lambda: datetime(2024, 3, 15, 23, 30, tzinfo=UTC))  # 00:30 on the 16th in Paris
    assert post(api_client, event("sub-1", "calls", "a")).status_code == 200
    response = post(api_client, event("sub-1", "calls", "b", timestamp=None, properties=None))

    assert response.json["event"]["timestamp"] == "2024-03-15T23:30:00.000Z"
    assert response.json["event"]["properties"] == {}
    [bucket] = buckets(setup)
    assert (bucket.day.isoformat(), bucket.events_count) == ("2024-03-16", 2)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1710500000, "2024-03-15T10:53:20.000Z"),
        (1710500000.5, "2024-03-15T10:53:20.500Z"),
        ("1710500000", "2024-03-15T10:53:20.000Z"),
        ("1710500000.999", "2024-03-15T10:53:20.999Z"),
    ],
)
def test_timestamp_formats(api_client, setup, timestamp, expected):
    response = post(api_client, event("sub-1", "calls", timestamp=timestamp))

    assert response.status_code == 200
    assert response.json["event"]["timestamp"] == expected


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        ({"transaction_id": None}, {"transaction_id": ["value_is_mandatory"]}),
        ({"transaction_id": ""}, {"transaction_id": ["value_is_mandatory"]}),
        ({"external_subscription_id": None}, {"external_subscription_id": ["value_is_mandatory"]}),
        ({"code": "  "}, {"code": ["value_is_mandatory"]}),
        ({"timestamp": "yesterday"}, {"timestamp": ["invalid_format"]}),
        ({"timestamp": ""}, {"timestamp": ["invalid_format"]}),
        ({"timestamp": True}, {"timestamp": ["invalid_format"]}),
        ({"timestamp": 1e20}, {"timestamp": ["invalid_format"]}),
        ({"properties": [1, 2]}, {"properties": ["value_is_invalid"]}),
        (
            {"precise_total_amount_cents": "abc"},
            {"precise_total_amount_cents": ["value_is_invalid"]},
        ),
        ({"transaction_id": "x" * 256}, {"transaction_id": ["value_is_too_long"]}),
    ],
)
def test_invalid_event_is_refused_and_nothing_is_stored(api_client, setup, fields, details):
    response = post(api_client, {**event("sub-1", "calls"), **fields})

    assert response.status_code == 422
    assert response.json == validation(details)
    assert count_events(setup) == 0


def test_missing_event_root_is_400(api_client, setup):
    response = api_client.post("/api/v1/events", json={"transaction_id": "x"})

    assert response.status_code == 400
    assert response.json["status"] == 400


def test_identical_replay_answers_the_stored_event_and_counts_once(api_client, setup):
    payload = event("sub-1", "storage", "tx-1", timestamp=1710500000, properties={"value": 3})
    first = post(api_client, payload)
    second = post(api_client, payload)

    assert second.status_code == 200
    assert second.json == first.json
    assert count_events(setup) == 1
    assert [b.sum_value for b in buckets(setup)] == [Decimal(3)]


def test_replay_without_timestamp_is_identical(api_client, setup):
    first = post(api_client, event("sub-1", "calls", "tx-1"))
    set_clock(lambda: datetime(2024, 3, 15, 13, 0, tzinfo=UTC))
    second = post(api_client, event("sub-1", "calls", "tx-1", timestamp=None))

    assert second.status_code == 200
    assert second.json["event"]["timestamp"] == first.json["event"]["timestamp"]
    assert count_events(setup) == 1


def test_same_transaction_id_with_another_payload_is_refused(api_client, setup):
    post(
        api_client, event("sub-1", "storage", "tx-1", timestamp=1710500000, properties={"value": 3})
    )
    response = post(
        api_client, event("sub-1", "storage", "tx-1", timestamp=1710500000, properties={"value": 4})
    )

    assert response.status_code == 422
    assert response.json == validation({"transaction_id": ["value_already_exist"]})
    assert count_events(setup) == 1
    assert [b.sum_value for b in buckets(setup)] == [Decimal(3)]


def test_same_transaction_id_on_another_subscription_is_another_event(api_client, setup):
    make_subscription(setup.org, setup.customer, setup.plan, STARTED, external_id="sub-2")
    post(api_client, event("sub-1", "calls", "tx-1"))
    response = post(api_client, event("sub-2", "calls", "tx-1"))

    assert response.status_code == 200
    assert count_events(setup) == 2


def test_batch_stores_all_in_order(api_client, setup):
    payloads = [
        event("sub-1", "storage", f"b{i}", timestamp=1710500000 + i, properties={"value": i})
        for i in range(5)
    ]
    response = batch(api_client, payloads)

    assert response.status_code == 200
    assert [e["transaction_id"] for e in response.json["events"]] == [f"b{i}" for i in range(5)]
    [bucket] = buckets(setup)
    assert (bucket.events_count, bucket.sum_value, bucket.max_value, bucket.latest_value) == (
        5,
        Decimal(10),
        Decimal(4),
        Decimal(4),
    )


def test_buckets_add_up_exactly_across_requests(api_client, setup):
    """The bucket merge runs in SQL (NUMERIC on PostgreSQL, Decimal functions on SQLite): sums
    stay exact, max keeps the larger value, and an older event sent later does not replace the
    latest value (an equal timestamp does: the later-ingested event wins)."""
    sent = [
        (1710500000, "0.1"),
        (1710500060, "0.2"),
        (1710500030, "10.50"),  # the max, but older than the latest
        (1710500060, "9.999"),  # same time as the latest: replaces it
    ]
    for number, (timestamp, value) in enumerate(sent):
        payload = event("sub-1", "storage", f"x{number}", timestamp=timestamp)
        assert post(api_client, {**payload, "properties": {"value": value}}).status_code == 200

    [bucket] = buckets(setup)

    assert (bucket.events_count, bucket.sum_value, bucket.max_value, bucket.latest_value) == (
        4,
        Decimal("20.799"),
        Decimal("10.50"),
        Decimal("9.999"),
    )
    assert str(bucket.sum_value) == "20.799"
    assert bucket.latest_timestamp == datetime.fromtimestamp(1710500060, UTC)


def test_batch_events_at_one_time_leave_the_last_sent_as_latest(api_client, setup):
    latest = make_metric(setup.org, "latest_agg", "value", code="level")
    payloads = [
        event("sub-1", "level", f"t{n}", timestamp=1710500000, properties={"value": n})
        for n in (5, 3, 9, 4)
    ]

    assert batch(api_client, payloads).status_code == 200

    [bucket] = [b for b in buckets(setup) if b.billable_metric_id == latest.id]
    assert (bucket.events_count, bucket.latest_value) == (4, Decimal(4))


def test_batch_over_several_subscriptions_and_codes_matches_each_event(api_client, setup):
    other = make_subscription(
        setup.org, factories.make_customer(setup.org), setup.plan, STARTED, external_id="sub-2"
    )
    payloads = [
        event("sub-1", "storage", "m1", timestamp=1710500000, properties={"value": 1}),
        event("sub-2", "storage", "m2", timestamp=1710500000, properties={"value": 2}),
        event("sub-2", "calls", "m3", timestamp=1710500000),
        event("sub-3", "calls", "m4", timestamp=1710500000),
    ]

    response = batch(api_client, payloads)

    assert response.status_code == 200
    assert [e["lago_subscription_id"] for e in response.json["events"]] == [
        str(setup.subscription.lago_id),
        str(other.lago_id),
        str(other.lago_id),
        None,
    ]
    db.session.expire_all()
    by_key = {
        (b.subscription_id, b.billable_metric_id): (b.events_count, b.sum_value)
        for b in db.session.scalars(
            select(UsageBucket).where(
                UsageBucket.subscription_id.in_([setup.subscription.id, other.id])
            )
        )
    }
    assert by_key == {
        (setup.subscription.id, setup.metric.id): (1, Decimal(1)),
        (other.id, setup.metric.id): (1, Decimal(2)),
        (other.id, setup.counter.id): (1, Decimal(0)),
    }


def test_batch_duplicate_inside_counts_once(api_client, setup):
    payload = event("sub-1", "storage", "dup", timestamp=1710500000, properties={"value": 7})
    response = batch(api_client, [payload, payload])

    assert response.status_code == 200
    assert [e["lago_id"] for e in response.json["events"]] == [
        response.json["events"][0]["lago_id"]
    ] * 2
    assert count_events(setup) == 1
    assert [b.sum_value for b in buckets(setup)] == [Decimal(7)]


def test_batch_with_a_conflicting_duplicate_inside_is_refused(api_client, setup):
    response = batch(
        api_client,
        [
            event("sub-1", "storage", "dup", properties={"value": 1}),
            event("sub-1", "storage", "dup", properties={"value": 2}),
        ],
    )

    assert response.status_code == 422
    assert response.json == validation({"1": {"transaction_id": ["value_already_exist"]}})
    assert count_events(setup) == 0


def test_batch_with_a_replay_and_a_new_event_counts_the_new_one(api_client, setup):
    old = event("sub-1", "storage", "old", timestamp=1710500000, properties={"value": 1})
    post(api_client, old)
    response = batch(
        api_client,
        [old, event("sub-1", "storage", "new", timestamp=1710500001, properties={"value": 2})],
    )

    assert response.status_code == 200
    assert count_events(setup) == 2
    assert [b.sum_value for b in buckets(setup)] == [Decimal(3)]


def test_batch_reusing_a_stored_key_is_refused_whole(api_client, setup):
    post(api_client, event("sub-1", "storage", "old", properties={"value": 1}))
    response = batch(
        api_client,
        [
            event("sub-1", "storage", "new", properties={"value": 5}),
            event("sub-1", "storage", "old", properties={"value": 9}),
        ],
    )

    assert response.status_code == 422
    assert response.json == validation({"1": {"transaction_id": ["value_already_exist"]}})
    assert count_events(setup) == 1
    assert [b.sum_value for b in buckets(setup)] == [Decimal(1)]


def test_invalid_batch_item_rejects_the_whole_batch_keyed_by_index(api_client, setup):
    response = batch(
        api_client,
        [
            event("sub-1", "calls"),
            {"external_subscription_id": "sub-1", "code": "calls"},
            event("sub-1", "calls", timestamp="nope"),
        ],
    )

    assert response.status_code == 422
    assert response.json == validation(
        {
            "1": {"transaction_id": ["value_is_mandatory"]},
            "2": {"timestamp": ["invalid_format"]},
        }
    )
    assert count_events(setup) == 0
    assert buckets(setup) == []


@pytest.mark.parametrize(
    ("events", "code"),
    [([], "no_events"), (None, "no_events"), ([{}] * 101, "too_many_events")],
)
def test_batch_size_limits(api_client, setup, events, code):
    response = api_client.post("/api/v1/events/batch", json={"events": events})

    assert response.status_code == 422
    assert response.json == validation({"events": [code]})


def test_batch_of_100_is_accepted(api_client, setup):
    response = batch(api_client, [event("sub-1", "calls") for _ in range(100)])

    assert response.status_code == 200
    assert buckets(setup)[0].events_count == 100


@pytest.mark.parametrize(
    ("payload", "error_code"),
    [
        (event("nope", "calls"), "subscription_not_found"),
        (event("sub-1", "unknown_metric"), "billable_metric_not_found"),
        (event("sub-1", "storage", properties={"other": 1}), "invalid_field_value"),
        (event("sub-1", "storage", properties={"value": "many"}), "invalid_field_value"),
        # before the subscription started
        (event("sub-1", "calls", timestamp=STARTED.timestamp() - 1), "subscription_not_found"),
    ],
)
def test_unmatched_events_are_stored_flagged_and_announced(api_client, setup, payload, error_code):
    response = post(api_client, payload)

    assert response.status_code == 200
    stored = db.session.scalars(select(Event).where(Event.organization_id == setup.org.id)).one()
    assert stored.error_code == error_code
    assert buckets(setup) == []
    outbox = db.session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.organization_id == setup.org.id, OutboxEvent.event_type == "event.error"
        )
    ).one()
    assert outbox.object_type == "event_error"
    assert outbox.payload["error_code"] == error_code
    assert outbox.payload["event"]["transaction_id"] == payload["transaction_id"]


def test_deleted_metric_code_does_not_match(api_client, setup):
    setup.counter.deleted_at = NOW
    db.session.commit()

    post(api_client, event("sub-1", "calls", "tx"))

    error_code = select(Event.error_code).where(Event.organization_id == setup.org.id)
    assert db.session.scalars(error_code).one() == "billable_metric_not_found"


def test_event_goes_to_the_subscription_active_at_its_timestamp(api_client, setup):
    old = setup.subscription
    old.status, old.terminated_at = "terminated", datetime(2024, 2, 1, tzinfo=UTC)
    db.session.commit()
    new = make_subscription(
        setup.org, setup.customer, setup.plan, datetime(2024, 2, 1, tzinfo=UTC), external_id="sub-1"
    )
    pending = make_subscription(
        setup.org, setup.customer, setup.plan, datetime(2024, 3, 1, tzinfo=UTC),
        external_id="sub-1", status="pending",
    )  # fmt: skip

    before = post(
        api_client, event("sub-1", "calls", timestamp=datetime(2024, 1, 20, tzinfo=UTC).timestamp())
    )
    after = post(
        api_client, event("sub-1", "calls", timestamp=datetime(2024, 3, 5, tzinfo=UTC).timestamp())
    )

    assert before.json["event"]["lago_subscription_id"] == str(old.lago_id)
    assert after.json["event"]["lago_subscription_id"] == str(new.lago_id)
    assert str(pending.lago_id) not in {before.json["event"]["lago_subscription_id"]}


def test_precise_total_amount_cents_is_kept_as_a_decimal_string(api_client, setup):
    response = post(api_client, event("sub-1", "calls", precise_total_amount_cents="12.345"))

    assert response.json["event"]["precise_total_amount_cents"] == "12.345"


def test_show_event_by_transaction_id(api_client, setup):
    make_subscription(setup.org, setup.customer, setup.plan, STARTED, external_id="sub-2")
    post(api_client, event("sub-1", "calls", "tx"))
    set_clock(lambda: datetime(2024, 3, 15, 13, 0, tzinfo=UTC))
    post(api_client, event("sub-2", "calls", "tx"))

    latest = api_client.get("/api/v1/events/tx")
    chosen = api_client.get("/api/v1/events/tx?external_subscription_id=sub-1")
    missing = api_client.get("/api/v1/events/nope")

    assert latest.json["event"]["external_subscription_id"] == "sub-2"
    assert chosen.json["event"]["external_subscription_id"] == "sub-1"
    assert missing.status_code == 404
    assert missing.json == {"status": 404, "error": "Not Found", "code": "event_not_found"}


def test_events_are_scoped_to_the_organization(api_client, setup, client):
    post(api_client, event("sub-1", "calls", "tx"))
    other_key = factories.make_api_key(factories.make_organization())

    response = client.get("/api/v1/events/tx", headers={"Authorization": f"Bearer {other_key}"})

    assert response.status_code == 404


def test_list_events_with_filters_newest_first(api_client, setup):
    for i in range(3):
        set_clock(lambda i=i: datetime(2024, 3, 15, 12, i, tzinfo=UTC))
        post(api_client, event("sub-1", "calls", f"c{i}", timestamp=1710000000 + i * 86400))
    post(api_client, event("sub-1", "storage", "s", properties={"value": 1}))

    everything = api_client.get("/api/v1/events?per_page=2")
    calls = api_client.get("/api/v1/events?code=calls&timestamp_from=2024-03-10T16:00:00Z")

    assert [e["transaction_id"] for e in everything.json["events"]] == ["s", "c2"]
    assert everything.json["meta"]["total_count"] == 4
    assert [e["transaction_id"] for e in calls.json["events"]] == ["c2", "c1"]
    bad = api_client.get("/api/v1/events?timestamp_to=someday")
    assert bad.status_code == 422
    # instants before year 1 or after 9999 in UTC were a 500 (OverflowError)
    for query in (
        "timestamp_from=0001-01-01T00:00:00%2B05:00",
        "timestamp_to=9999-12-31T23:00:00-05:00",
    ):
        assert api_client.get(f"/api/v1/events?{query}").status_code == 422, query


def test_unauthenticated_event_post_is_401(client, setup):
    response = client.post("/api/v1/events", json={"event": event("sub-1", "calls")})

    assert response.status_code == 401


# ---------------------------------------------------------------------------------------------
# Concurrency (a live server: several connections at once)


@pytest.mark.live
def test_concurrent_replays_of_one_transaction_id_store_one_event(live_server):
    raw_key, organization_id, subscription_id = live_metered(live_server, "race", "race-sub")
    payload = event("race-sub", "race", "race-tx", timestamp=1710500000, properties={"value": 2})

    responses = post_concurrently(live_server, raw_key, "/events", [{"event": payload}] * 8)

    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.json()["event"]["lago_id"] for r in responses}) == 1
    with live_server.app.app_context():
        stored = db.session.scalar(
            select(func.count()).where(Event.organization_id == organization_id)
        )
        assert stored == 1
        assert live_bucket(subscription_id) == (1, Decimal(2))


@pytest.mark.live
def test_concurrent_batches_on_one_bucket_add_up(live_server):
    raw_key, _organization_id, subscription_id = live_metered(live_server, "bucket_race", "bsub")
    bodies = [
        {
            "events": [
                event(
                    "bsub",
                    "bucket_race",
                    f"t{i}-{j}",
                    timestamp=1710500000,
                    properties={"value": 1},
                )
                for j in range(20)
            ]
        }
        for i in range(6)
    ]

    responses = post_concurrently(live_server, raw_key, "/events/batch", bodies)

    assert [r.status_code for r in responses] == [200] * 6
    with live_server.app.app_context():
        assert live_bucket(subscription_id) == (120, Decimal(120))


@pytest.mark.live
def test_an_invalid_batch_is_answered_while_another_process_writes(live_server):
    """Authentication and the batch's validation take no write lock on SQLite: a batch refused
    for its content is answered at once while another process holds the lock."""
    database = make_url(live_server.app.config["SQLALCHEMY_DATABASE_URI"])
    if database.get_backend_name() != "sqlite":
        pytest.skip("SQLite's single write lock")
    raw_key, organization_id, _subscription_id = live_metered(live_server, "locked", "lsub")
    valid = event("lsub", "locked", "l-1", timestamp=1710500000, properties={"value": 1})
    # the first use records the key's last use (a write), before the lock is taken
    assert post_concurrently(live_server, raw_key, "/events", [{"event": valid}])[0].is_success
    writer = sqlite3.connect(database.database, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        invalid = [{**valid, "transaction_id": "l-2"}, {**valid, "code": None}]
        response = post_concurrently(live_server, raw_key, "/events/batch", [{"events": invalid}])[
            0
        ]
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert response.status_code == 422
    assert response.json()["error_details"] == {"1": {"code": ["value_is_mandatory"]}}
    with live_server.app.app_context():
        stored = db.session.scalar(
            select(func.count()).where(Event.organization_id == organization_id)
        )
        assert stored == 1


def post_concurrently(
    live_server: Any, raw_key: str, path: str, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    def send(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{live_server.url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {raw_key}"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def live_bucket(subscription_id: int) -> tuple[int, Decimal]:
    [bucket] = db.session.scalars(
        select(UsageBucket).where(UsageBucket.subscription_id == subscription_id)
    ).all()
    return bucket.events_count, bucket.sum_value
