"""Contract tests: events and current usage through the official Lago SDK (1.55.0), over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from lago_python_client.client import Client
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import BatchEvent, Event

from tests.usage_helpers import live_metered

pytestmark = pytest.mark.live

AT = int(datetime(2024, 1, 15, tzinfo=UTC).timestamp())


@pytest.fixture
def sdk(live_server: Any) -> Client:
    raw_key, _organization_id, _subscription_id = live_metered(
        live_server, "storage", "sdk-sub", properties={"amount": "0.5"}
    )
    return Client(api_key=raw_key, api_url=live_server.url)


def storage_event(transaction_id: str, value: Any, timestamp: Any = AT) -> Event:
    return Event(
        transaction_id=transaction_id,
        external_subscription_id="sdk-sub",
        code="storage",
        timestamp=timestamp,
        properties={"value": value},
    )


def test_create_find_and_replay(sdk):
    created = sdk.events.create(storage_event("tx-1", 4))
    replay = sdk.events.create(storage_event("tx-1", 4))
    found = sdk.events.find("tx-1")

    assert created.transaction_id == "tx-1"
    assert created.external_subscription_id == "sdk-sub"
    assert created.timestamp == "2024-01-15T00:00:00.000Z"
    assert created.lago_subscription_id and created.lago_customer_id
    assert replay.lago_id == created.lago_id
    assert found.lago_id == created.lago_id
    assert found.properties == {"value": 4}


def test_reusing_a_transaction_id_for_another_payload_is_refused(sdk):
    sdk.events.create(storage_event("tx-1", 4))

    with pytest.raises(LagoApiError) as info:
        sdk.events.create(storage_event("tx-1", 5))

    assert info.value.status_code == 422
    assert info.value.response["error_details"] == {"transaction_id": ["value_already_exist"]}


def test_event_without_timestamp_is_now(sdk):
    created = sdk.events.create(storage_event("tx-now", 1, timestamp=None))

    assert created.timestamp.endswith("Z")


def test_find_unknown_event_is_404(sdk):
    with pytest.raises(LagoApiError) as info:
        sdk.events.find("nope")

    assert info.value.status_code == 404
    assert info.value.response["code"] == "event_not_found"


def test_batch_create_then_current_usage(sdk):
    now = int(datetime.now(UTC).timestamp())
    result = sdk.events.batch_create(
        BatchEvent(events=[storage_event(f"b{i}", "2.5", timestamp=now) for i in range(4)])
    )

    usage = sdk.customers.current_usage("cus-sdk-sub", "sdk-sub")

    assert result is None  # the SDK ignores the body of a batch
    assert usage.currency == "EUR"
    assert usage.lago_invoice_id is None
    [charge] = usage.charges_usage
    assert (charge.units, charge.events_count, charge.amount_cents) == ("10.0", 4, 500)
    assert charge.billable_metric.code == "storage"
    assert charge.filters == []
    assert (usage.amount_cents, usage.taxes_amount_cents, usage.total_amount_cents) == (500, 0, 500)


def test_invalid_batch_is_refused_whole(sdk):
    events = [storage_event("ok", 1), Event.construct(external_subscription_id="sdk-sub")]

    with pytest.raises(LagoApiError) as info:
        sdk.events.batch_create(BatchEvent.construct(events=events))

    assert info.value.status_code == 422
    assert "1" in info.value.response["error_details"]
    with pytest.raises(LagoApiError):
        sdk.events.find("ok")


def test_current_usage_errors(sdk):
    with pytest.raises(LagoApiError) as unknown_customer:
        sdk.customers.current_usage("ghost", "sdk-sub")
    with pytest.raises(LagoApiError) as unknown_subscription:
        sdk.customers.current_usage("cus-sdk-sub", "ghost")

    assert unknown_customer.value.status_code == 404
    assert unknown_customer.value.response["code"] == "customer_not_found"
    assert unknown_subscription.value.status_code == 405
    assert unknown_subscription.value.response["code"] == "no_active_subscription"
