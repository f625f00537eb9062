"""The portal embedded cross-site in a real browser: a host page on http://localhost:<port2>
frames the portal served from http://127.0.0.1:<port1> (another site), with third-party cookies
blocked; the visitor filters invoices (htmx) and downloads a PDF inside the frame."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from billing.models import Organization
from billing.services import portal as portal_service
from billing.timeutil import set_clock
from extensions import db
from tests.test_browser import launch_chromium, pytestmark  # noqa: F401  (same skip rules)
from tests.test_console_invoices import at, billed_customer, close, invoice_of

playwright = pytest.importorskip("playwright.sync_api")


class _HostPage(BaseHTTPRequestHandler):
    """The seller's product: one page that frames the portal link it is given."""

    portal_url = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = (
            "<!doctype html><title>Seller app</title><h1>Seller app</h1>"
            f'<iframe id="portal" src="{self.portal_url}" width="360" height="800"></iframe>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def host_server() -> Iterator[tuple[ThreadingHTTPServer, type[_HostPage]]]:
    handler = type("HostPage", (_HostPage,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def test_the_portal_works_framed_by_another_site_without_cookies(
    live_server: Any, backend: str, host_server: Any
) -> None:
    if backend != "sqlite":
        pytest.skip("browser tests run on one backend")
    server, handler = host_server
    host_origin = f"http://localhost:{server.server_port}"
    org_id, _key = live_server.new_organization()
    clock = [at("2026-04-01T08:00:00")]
    set_clock(lambda: clock[0])
    user_data = tempfile.mkdtemp(prefix="ledgerline-chromium-")
    try:
        with live_server.app.app_context():
            organization = db.session.get_one(Organization, org_id)
            organization.portal_embed_origins = [host_origin]
            customer, _ = billed_customer(organization, clock, "Framed Co")
            close(clock)
            invoice = invoice_of(organization, customer)
            number = invoice.number
            clock[0] = at("2026-05-02T09:00:00")
            token = portal_service.issue_token(live_server.app.secret_key, customer)
            db.session.commit()
        handler.portal_url = f"{live_server.url}/portal/{token}/invoices"

        with playwright.sync_playwright() as p:
            context = launch_chromium(
                p,
                user_data,
                "--test-third-party-cookie-phaseout",  # third-party cookies blocked
                accept_downloads=True,
                viewport={"width": 800, "height": 900},
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(10_000)

            page.goto(f"{host_origin}/")
            frame = page.frame_locator("#portal")
            frame.locator("#invoice-table").wait_for()
            assert number in frame.locator("#invoice-table").inner_text()

            # Filter to paid invoices (none), then back to unpaid ones: htmx swaps the table.
            frame.locator("label:has-text('Paid') span").first.click()
            frame.locator("#invoice-table:has-text('No invoices match.')").wait_for()
            frame.locator("label:has-text('Unpaid') span").click()
            frame.locator(f"#invoice-table:has-text('{number}')").wait_for()

            # Search by amount.
            frame.locator("input[name=q]").fill("11.50")
            frame.locator(f"#invoice-table:has-text('{number}')").wait_for()

            with page.expect_download() as caught:
                frame.locator("a.download").first.click()
            download = caught.value
            assert download.suggested_filename == f"{number}.pdf"
            path = download.path()
            assert path is not None
            with open(path, "rb") as handle:
                assert handle.read(5) == b"%PDF-"

            assert context.cookies() == []
            assert errors == []

            # Without the host among the allowed origins, the browser refuses to frame it.
            with live_server.app.app_context():
                db.session.get_one(Organization, org_id).portal_embed_origins = []
                db.session.commit()
            page.goto(f"{host_origin}/")
            page.wait_for_timeout(1000)
            assert frame.locator("#invoice-table").count() == 0
            context.close()
    finally:
        set_clock(None)
        shutil.rmtree(user_data, ignore_errors=True)
