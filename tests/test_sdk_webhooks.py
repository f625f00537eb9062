"""Contract test: webhook endpoints and the JWT public key through the official SDK
(lago-python-client 1.55.0, `client.webhook_endpoints`, `client.webhooks`) against a live
Ledgerline."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from lago_python_client.client import Client
from lago_python_client.models import WebhookEndpoint

from tests.test_sdk_contract import api_error, validation_body

pytestmark = pytest.mark.live


@pytest.fixture
def sdk(live_server: Any) -> Client:
    _organization_id, raw_key = live_server.new_organization()
    return Client(api_key=raw_key, api_url=live_server.url)


def test_webhook_endpoints_through_the_sdk(sdk):
    created = sdk.webhook_endpoints.create(
        WebhookEndpoint(
            webhook_url="https://backend.example.com/hooks",
            signature_algo="hmac",
            name="Backend",
            event_types=["customer.created"],
        )
    )
    assert (created.webhook_url, created.signature_algo) == (
        "https://backend.example.com/hooks",
        "hmac",
    )
    assert created.lago_id and created.lago_organization_id and created.created_at
    assert sdk.webhook_endpoints.find(created.lago_id).name == "Backend"
    listed = sdk.webhook_endpoints.find_all()
    assert [e.lago_id for e in listed["webhook_endpoints"]] == [created.lago_id]
    updated = sdk.webhook_endpoints.update(WebhookEndpoint(name="All"), created.lago_id)
    assert updated.name == "All"
    assert sdk.webhook_endpoints.destroy(created.lago_id).lago_id == created.lago_id
    gone = api_error(lambda: sdk.webhook_endpoints.find(created.lago_id))
    assert gone.response == {
        "status": 404,
        "error": "Not Found",
        "code": "webhook_endpoint_not_found",
    }


def test_bad_endpoint_url_reaches_the_sdk_as_422(sdk):
    error = api_error(
        lambda: sdk.webhook_endpoints.create(WebhookEndpoint(webhook_url="ftp://example.com"))
    )
    assert error.response == validation_body({"webhook_url": ["url_is_invalid"]})


def test_public_key_is_a_pem_the_sdk_decodes(sdk):
    pem = sdk.webhooks.public_key()
    assert isinstance(pem, bytes)
    serialization.load_pem_public_key(pem)  # a real RSA public key
    assert sdk.webhooks.public_key() == pem
