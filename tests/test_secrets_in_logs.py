"""No API key, portal token, password, signature or secret is ever written to a log.

Everything Ledgerline logs while a test drives logins, API calls, portal visits, inbound hooks
and webhook deliveries is captured (caplog: every logger, the dev server's request lines
included) and searched for each secret; gunicorn-style access lines are produced by gunicorn's
own logger and searched too.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from gunicorn.config import Config as GunicornConfig
from gunicorn.glogging import Logger as GunicornLogger
from sqlalchemy import update

from billing.models import Customer, DeliveryStatus, WebhookDelivery
from billing.services import portal as portal_service
from billing.services import webhooks
from blueprints.security import mask_secrets
from extensions import db
from tests import factories
from tests.factories import AGENT_PASSWORD
from tests.test_inbound_hooks import send
from tests.test_webhooks import Receiver


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join([record.getMessage() for record in caplog.records] + [caplog.text])


def assert_absent(secrets: dict[str, str], text: str) -> None:
    for name, secret in secrets.items():
        assert secret and secret not in text, f"the {name} was logged"


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (
            '"GET /portal/abc.def-ghi/invoices?lang=fr HTTP/1.1" 200',
            '"GET /portal/[masked]/invoices?lang=fr HTTP/1.1" 200',
        ),
        ("GET /documents/eyJ0.x_y HTTP/1.1", "GET /documents/[masked] HTTP/1.1"),
        (
            "GET /api/v1/customers?api_key=ll_123&page=2",
            "GET /api/v1/customers?api_key=[masked]&page=2",
        ),
        (
            "POST /x?access_token=1;secret=2&x-api-key=3",
            "POST /x?access_token=[masked];secret=[masked]&x-api-key=[masked]",
        ),
        ("Authorization: Bearer ll_live_secret", "Authorization: Bearer [masked]"),
        ("GET /customers?search=token HTTP/1.1", "GET /customers?search=token HTTP/1.1"),
    ],
)
def test_request_lines_are_masked(line: str, masked: str) -> None:
    assert mask_secrets(line) == masked


def test_logins_api_keys_portal_tokens_hooks_and_webhooks_leave_no_secret_in_the_logs(
    client: Any,
    org: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Other tests may have committed outbox events: deliver only this test's (see test_webhooks).
    while webhooks.dispatch_outbox():
        pass
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status.in_(DeliveryStatus.OPEN))
        .values(status=DeliveryStatus.FAILED)
    )
    caplog.set_level(logging.DEBUG)
    receiver = Receiver()
    try:
        raw_key = factories.make_api_key(org)
        api = {"Authorization": f"Bearer {raw_key}"}
        agent = factories.make_agent(org, "admin", email="lee@logs.test")
        customer = factories.make_customer(org, external_id="logs-acme")
        token = portal_service.issue_token("test-secret-key", customer)
        receiver_token = "rcv-" + uuid.uuid4().hex
        db.session.commit()

        # logins: a right and a wrong password
        for password in (AGENT_PASSWORD, "wrong-" + AGENT_PASSWORD):
            page = client.get("/login")
            csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)[1]
            form = {"csrf_token": csrf, "email": agent.email, "password": password}
            client.post("/login", data=form)
            client.post("/logout", data={"csrf_token": csrf})
        # API calls with the key, one of them also in the query string
        client.get("/api/v1/customers", headers=api)
        client.get(f"/api/v1/customers?api_key={raw_key}", headers=api)
        client.get("/api/v1/customers", headers={"Authorization": "Bearer wrong-key-1234567890"})
        endpoint = {"webhook_url": f"{receiver.url}?token={receiver_token}"}
        client.post("/api/v1/webhook_endpoints", json={"webhook_endpoint": endpoint}, headers=api)
        client.post("/api/v1/customers", json={"customer": {"external_id": "logs-2"}}, headers=api)
        portal_url = client.get("/api/v1/customers/logs-acme/portal_url", headers=api)
        assert token.split(".")[0] in portal_url.get_json()["customer"]["portal_url"]
        # portal visits, a read and a write
        client.get(f"/portal/{token}/")
        client.get(f"/portal/{token}/invoices?lang=fr")
        client.post(f"/portal/{token}/details", data={"name": "x"})
        client.get(f"/portal/{token}x/")  # a tampered link
        # inbound hooks: a good and a bad signature
        good = send(client, org, {"customer": {"external_id": "hook-1"}}, delivery="h-1")
        assert good.status_code == 201
        bad = send(client, org, {"customer": {}}, delivery="h-2", secret="not-the-secret")
        assert bad.status_code == 401
        # outgoing webhook deliveries, signed with the organization's secret
        while webhooks.dispatch_outbox():
            pass
        assert webhooks.deliver_due() >= 2
        assert receiver.requests
        signatures = {
            r["headers"][name]
            for r in receiver.requests
            for name in ("X-Lago-Signature", "X-Ledgerline-Signature")
        }
    finally:
        receiver.close()

    secrets = {
        "password": AGENT_PASSWORD,
        "API key": raw_key,
        "portal token": token,
        "portal token's signature": token.rsplit(".", 1)[-1],
        "inbound secret": org.inbound_secret,
        "webhook secret": org.webhook_secret,
        "webhook endpoint's own token": receiver_token,
    }
    secrets |= {f"signature {n}": s.split("v1=")[-1] for n, s in enumerate(signatures)}
    text = logged_text(caplog)
    assert "HTTP Request: POST" in text  # the webhook requests were logged, masked
    assert_absent(secrets, text)


@pytest.mark.live
def test_the_dev_server_request_log_masks_tokens_and_key_parameters(
    live_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """`flask run` / `flask serve` log one line per request through werkzeug's logger."""
    caplog.set_level(logging.INFO)
    org_id, raw_key = live_server.new_organization()
    live_server.seed(org_id, [{"external_id": "dev-log"}])
    with live_server.app.app_context():
        customer = db.session.scalars(
            db.select(Customer).where(
                Customer.organization_id == org_id, Customer.external_id == "dev-log"
            )
        ).one()
        token = portal_service.issue_token("test-secret-key", customer)
    base = live_server.url
    httpx.get(f"{base}/portal/{token}/")
    httpx.get(f"{base}/portal/{token}/invoices", params={"lang": "de"})
    httpx.get(f"{base}/api/v1/customers", params={"api_key": raw_key, "page": 1})
    httpx.get(f"{base}/api/v1/customers", headers={"Authorization": f"Bearer {raw_key}"})
    httpx.get(f"{base}/documents/{token}")

    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/portal/[masked]/invoices?lang=de" in line for line in lines), lines
    assert any("api_key=[masked]&page=1" in line for line in lines), lines
    assert_absent({"portal token": token, "API key": raw_key}, "\n".join(lines))
    assert_absent({"portal token": token, "API key": raw_key}, caplog.text)


def test_gunicorn_access_lines_mask_tokens_and_key_parameters(app: Any, tmp_path: Path) -> None:
    """gunicorn's access log (`--access-logfile`) goes through the `gunicorn.access` logger,
    which the app masks like the dev server's."""
    config = GunicornConfig()
    config.set("accesslog", str(tmp_path / "access.log"))
    config.set(
        "access_log_format",
        '%(h)s "%(r)s" %(s)s %(U)s?%(q)s "%(f)s" "%({authorization}i)s"',
    )
    logger = GunicornLogger(config)
    token = "eyJjIjo0Mn0.Zx9-abc.secretsig"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/portal/{token}/?lang=fr&token={token}",
        "PATH_INFO": f"/portal/{token}/",
        "QUERY_STRING": f"lang=fr&token={token}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.5",
        "HTTP_REFERER": f"https://billing.example.com/portal/{token}/invoices",
    }
    request = SimpleNamespace(headers=[("AUTHORIZATION", "Bearer ll_live_key_123456")])
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    try:
        logger.access(response, request, environ, timedelta(milliseconds=5))
    finally:
        for handler in logger.access_log.handlers:
            handler.flush()
    line = (tmp_path / "access.log").read_text()

    assert '"GET /portal/[masked]/?lang=fr&token=[masked] HTTP/1.1" 200' in line
    assert "Bearer [masked]" in line
    assert_absent({"portal token": token, "API key": "ll_live_key_123456"}, line)
    assert "secretsig" not in line
