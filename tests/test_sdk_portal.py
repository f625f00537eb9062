"""Contract test: `client.customers.portal_url(external_id)` of the official Lago SDK against a
live Ledgerline, and the link it returns opening the portal over real HTTP (no cookie set)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lago_python_client.client import Client
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import Customer

pytestmark = pytest.mark.live


def test_portal_url_returns_a_working_link_and_404s_unknown_customers(live_server: Any) -> None:
    _organization_id, raw_key = live_server.new_organization()
    sdk = Client(api_key=raw_key, api_url=live_server.url)
    sdk.customers.create(Customer(external_id="portal-sdk", name="Portal SDK Ltd"))

    url = sdk.customers.portal_url("portal-sdk")
    assert isinstance(url, str)
    assert url.startswith("http://testserver/portal/") and url.endswith("/")  # PUBLIC_URL
    page = httpx.get(live_server.url + url.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert "Portal SDK Ltd" in page.text
    assert "set-cookie" not in page.headers
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    with pytest.raises(LagoApiError) as caught:
        sdk.customers.portal_url("nobody-here")
    assert caught.value.status_code == 404
    assert caught.value.response == {
        "status": 404,
        "error": "Not Found",
        "code": "customer_not_found",
    }
