"""Settings › Webhooks in the console: endpoints, delivery log, replay, test event, roles."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from billing.models import ActivityLog, WebhookDelivery, WebhookEndpoint
from billing.serializers import serialize_customer
from billing.services import events, outbox, wallets, webhooks
from extensions import db
from tests import factories
from tests.test_inbound_hooks import send

URL = "/settings/webhooks"


def endpoints(org: Any) -> list[WebhookEndpoint]:
    return list(
        db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.organization_id == org.id))
    )


def test_admin_adds_an_endpoint_for_some_events(agent_client: Any, org: Any) -> None:
    page = agent_client.get(URL)
    assert page.status_code == 200
    assert "No endpoint yet" in page.text
    assert str(org.lago_id) in page.text  # the id inbound hooks name
    response = agent_client.post(
        URL,
        data={
            "webhook_url": "https://backend.example.com/hooks",
            "name": "Backend",
            "signature_algo": "hmac",
            "event_types": ["customer.created", "invoice.created"],
        },
    )
    assert response.status_code == 302
    (endpoint,) = endpoints(org)
    assert endpoint.event_types == ["customer.created", "invoice.created"]
    assert endpoint.signature_algo == "hmac"
    assert response.location.endswith(f"{URL}/{endpoint.lago_id}")
    detail = agent_client.get(response.location)
    assert "Backend" in detail.text and "No deliveries yet" in detail.text
    assert "Backend" in agent_client.get(URL).text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com", "Enter an http:// or https:// address."),
        ("", "This field is required."),
    ],
)
def test_bad_url_is_shown_next_to_the_field(
    agent_client: Any, org: Any, url: str, message: str
) -> None:
    response = agent_client.post(URL, data={"webhook_url": url, "signature_algo": "jwt"})
    assert response.status_code == 422
    field = re.search(r'id="field-webhook_url">(.*?)</div>', response.text, re.S)
    assert field and message in field.group(1)
    assert endpoints(org) == []


def test_edit_test_event_replay_and_delete(agent_client: Any, org: Any) -> None:
    endpoint = webhooks.create_endpoint(
        org, {"webhook_url": "https://a.example.com/h"}, factories.TEST_ACTOR
    )
    db.session.commit()
    url = f"{URL}/{endpoint.lago_id}"
    saved = agent_client.post(
        url, data={"webhook_url": "https://b.example.com/h", "signature_algo": "jwt"}
    )
    assert saved.status_code == 200 and "Endpoint saved." in saved.text
    assert endpoint.webhook_url == "https://b.example.com/h"
    assert endpoint.event_types is None  # nothing ticked: every event

    queued = agent_client.post(f"{url}/test")
    assert "Test event queued" in queued.text
    (delivery,) = db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    ).all()
    assert delivery.event_type == "webhook.test"
    detail = agent_client.get(f"{URL}/deliveries/{delivery.lago_id}")
    assert detail.status_code == 200
    assert "&#34;webhook_type&#34;: &#34;webhook.test&#34;" in detail.text  # the payload, indented
    delivery.status = "failed"
    db.session.commit()
    replayed = agent_client.post(f"{URL}/deliveries/{delivery.lago_id}/replay")
    assert replayed.status_code == 302
    assert delivery.status == "pending"

    assert agent_client.post(f"{url}/delete").status_code == 302
    assert endpoints(org) == []
    types = set(
        db.session.scalars(
            select(ActivityLog.activity_type).where(ActivityLog.resource_type.like("webhook%"))
        )
    )
    assert {
        "webhook_endpoint.updated",
        "webhook_endpoint.test_sent",
        "webhook_delivery.replayed",
        "webhook_endpoint.deleted",
    } <= types


@pytest.mark.parametrize("role", ["support", "viewer"])
def test_only_admins_manage_webhooks(make_agent_client: Any, org: Any, role: str) -> None:
    client = make_agent_client(role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, data={"webhook_url": "https://x.example.com"}).status_code == 403
    assert endpoints(org) == []


def test_another_organizations_endpoint_is_404(agent_client: Any) -> None:
    other = factories.make_organization()
    endpoint = webhooks.create_endpoint(
        other, {"webhook_url": "https://x.example.com"}, factories.TEST_ACTOR
    )
    db.session.commit()
    assert agent_client.get(f"{URL}/{endpoint.lago_id}").status_code == 404
    assert agent_client.post(f"{URL}/{endpoint.lago_id}/delete").status_code == 404


def test_deliveries_about_a_customer_show_on_its_activity_tab(agent_client: Any, org: Any) -> None:
    webhooks.create_endpoint(org, {"webhook_url": "https://a.example.com"}, factories.TEST_ACTOR)
    customer = factories.make_customer(org)
    outbox.emit(org.id, "customer.updated", "customer", serialize_customer(customer))
    db.session.commit()
    webhooks.dispatch_outbox()
    db.session.commit()
    page = agent_client.get(f"/customers/{customer.lago_id}/activity")
    assert "Webhooks about this customer" in page.text
    assert "customer.updated" in page.text


def test_wallet_transaction_and_event_error_deliveries_reach_the_customer(
    agent_client: Any, org: Any
) -> None:
    webhooks.create_endpoint(org, {"webhook_url": "https://a.example.com"}, factories.TEST_ACTOR)
    customer = factories.make_customer(org, currency="EUR")
    subscription = factories.make_subscription(org, customer)
    wallets.create_wallet(
        org,
        {"external_customer_id": customer.external_id, "rate_amount": "1", "granted_credits": "5"},
        factories.TEST_ACTOR,
    )
    events.ingest_event(
        org,
        {
            "transaction_id": "t-1",
            "external_subscription_id": subscription.external_id,
            "code": "no_such_metric",
        },
    )
    db.session.commit()
    webhooks.dispatch_outbox()
    db.session.commit()
    page = agent_client.get(f"/customers/{customer.lago_id}/activity")
    deliveries = page.text.split("Webhooks about this customer", 1)[1]
    for event_type in ("wallet_transaction.created", "event.error"):
        assert f'<code class="code-chip">{event_type}</code>' in deliveries


def row(page: Any, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}">(.*?)</tr>', page.text, re.S)
    assert match, row_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def test_a_delivered_row_shows_status_attempts_response_and_time(
    agent_client: Any, org: Any
) -> None:
    endpoint = webhooks.create_endpoint(
        org, {"webhook_url": "https://a.example.com/h"}, factories.TEST_ACTOR
    )
    delivery = webhooks.send_test(org, endpoint, factories.TEST_ACTOR)
    db.session.commit()
    webhooks.record(webhooks.Attempt(delivery.id, 503, 1200, "HTTP 503"))
    failed_once = row(agent_client.get(f"{URL}/{endpoint.lago_id}"), f"delivery-{delivery.lago_id}")
    assert "retrying" in failed_once and "HTTP 503 1200 ms" in failed_once
    webhooks.record(webhooks.Attempt(delivery.id, 200, 87, None))
    shown = row(agent_client.get(f"{URL}/{endpoint.lago_id}"), f"delivery-{delivery.lago_id}")
    assert shown.startswith("webhook.test succeeded 2 HTTP 200 87 ms"), shown


def test_inbound_deliveries_are_listed(agent_client: Any, client: Any, org: Any) -> None:
    assert send(client, org, {"customer": {"name": "Acme"}}, delivery="crm-41").status_code == 201
    assert send(client, org, None, raw=b"{oops", delivery="crm-42").status_code == 400
    page = agent_client.get(URL)
    table = page.text.split("Inbound deliveries", 1)[1]
    created = re.search(r"crm-41</td>(.*?)</tr>", table, re.S)
    refused = re.search(r"crm-42</td>(.*?)</tr>", table, re.S)
    assert created and "HTTP 201" in created.group(1) and ">Acme</a>" in created.group(1)
    assert refused and "HTTP 400" in refused.group(1) and "not JSON" in refused.group(1)
