"""Security headers on every kind of response, and what a trusted proxy may change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, abort

from app import create_app
from billing.services import documents
from billing.services import portal as portal_service
from blueprints.documents.views import pdf_response
from tests import factories
from tests.conftest import TEST_CONFIG

BASE_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


def assert_protected(response: Any, what: str) -> None:
    for name in BASE_HEADERS:
        assert response.headers.get(name), f"{what}: no {name}"
    assert response.headers["X-Content-Type-Options"] == "nosniff", what
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors" in csp, f"{what}: framing is not decided ({csp})"
    assert "Strict-Transport-Security" not in response.headers, f"{what}: HSTS over http"


@pytest.fixture(scope="module")
def raw_app(database_url: str) -> Iterator[Flask]:
    """An app of its own with routes that fail on purpose and a PDF route."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})

    def console_crash() -> str:
        raise RuntimeError("boom")

    def api_crash() -> str:
        raise RuntimeError("boom")

    def forbidden() -> str:
        abort(403)

    def a_pdf() -> Any:
        return pdf_response(b"%PDF-1.4\n%%EOF\n", "invoice.pdf")

    app.add_url_rule("/crash", view_func=console_crash)
    app.add_url_rule("/api/v1/crash-test", view_func=api_crash)
    app.add_url_rule("/forbidden", view_func=forbidden)
    app.add_url_rule("/a.pdf", view_func=a_pdf)
    yield app


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/login", 200),
        ("/", 302),  # redirect to the login
        ("/no-such-page", 404),
        ("/forbidden", 403),
        ("/crash", 500),
        ("/api/v1/customers", 401),
        ("/api/v1/no-such-resource", 404),
        ("/api/v1/crash-test", 500),  # Lago's JSON for an unexpected error
        ("/crash-test-not-api", 404),
        ("/hooks/customers", 405),  # GET on a POST route
        ("/static/css/ledgerline.css", 200),
        ("/static/js/console.js", 200),
        ("/static/missing.css", 404),
        ("/documents/not-a-valid-link", 403),
        ("/portal/not-a-valid-token/", 403),
        ("/a.pdf", 200),
        ("/health", 200),
    ],
)
def test_every_kind_of_response_carries_the_security_headers(
    raw_app: Flask, path: str, status: int
) -> None:
    response = raw_app.test_client().get(path)
    response.close()  # static files are streamed

    assert response.status_code == status
    assert_protected(response, path)


def test_an_unexpected_error_is_a_plain_page_with_the_headers(raw_app: Flask) -> None:
    response = raw_app.test_client().get("/crash")
    assert response.status_code == 500
    assert "Traceback" not in response.text
    assert response.headers["X-Frame-Options"] == "DENY"


def test_api_json_and_pdfs_are_never_sniffed_or_framed(raw_app: Flask) -> None:
    client = raw_app.test_client()
    api = client.get("/api/v1/customers")
    pdf = client.get("/a.pdf")
    assert api.mimetype == "application/json"
    assert pdf.mimetype == "application/pdf"
    for response in (api, pdf):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_portal_keeps_its_own_policy_and_sends_no_referrer(client: Any, org: Any) -> None:
    org.portal_embed_origins = ["https://app.example.com"]
    customer = factories.make_customer(org)
    token = portal_service.issue_token("test-secret-key", customer)

    response = client.get(f"/portal/{token}/")

    assert response.status_code == 200
    assert_protected(response, "portal")
    assert "frame-ancestors https://app.example.com" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"  # the token is in the URL
    assert "X-Frame-Options" not in response.headers  # it may be framed by that origin


def test_a_stored_pdf_behind_a_download_link_sends_no_referrer(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "read_download_token", lambda token: ("invoice", "x"))
    monkeypatch.setattr(documents, "linked_pdf", lambda kind, owner: (b"%PDF-1.4", "a.pdf", None))

    response = client.get("/documents/some-signed-link")

    assert response.mimetype == "application/pdf"
    assert_protected(response, "download link")
    assert response.headers["Referrer-Policy"] == "no-referrer"  # the link's token is its path


# --- HSTS and the proxy flag --------------------------------------------------------------------


def test_hsts_is_sent_over_https_only(raw_app: Flask) -> None:
    client = raw_app.test_client()
    secure = client.get("/login", base_url="https://billing.example.com")
    plain = client.get("/login", base_url="http://billing.example.com")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in plain.headers
    error = client.get("/no-such-page", base_url="https://billing.example.com")
    assert error.headers["Strict-Transport-Security"]


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.50"}


def test_forwarded_headers_are_ignored_without_a_trusted_proxy(raw_app: Flask) -> None:
    assert raw_app.config["TRUSTED_PROXIES"] == 0
    response = raw_app.test_client().get("/login", headers=FORWARDED)
    assert "Strict-Transport-Security" not in response.headers


def test_a_trusted_proxy_sets_the_scheme_and_the_client_address(database_url: str) -> None:
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "TRUSTED_PROXIES": 1})
    seen: dict[str, Any] = {}

    def whoami() -> str:
        from flask import request

        seen.update(address=request.remote_addr, secure=request.is_secure)
        return "ok"

    app.add_url_rule("/whoami", view_func=whoami)
    response = app.test_client().get(
        "/whoami", headers=FORWARDED, environ_base={"REMOTE_ADDR": "10.1.1.1"}
    )
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert seen == {"address": "203.0.113.50", "secure": True}
    # one proxy trusted: a second, client-made X-Forwarded-For entry does not win
    app.test_client().get(
        "/whoami",
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.51"},
        environ_base={"REMOTE_ADDR": "10.1.1.1"},
    )
    assert seen["address"] == "203.0.113.51"
