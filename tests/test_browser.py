"""The console in a real browser (Debian's Chromium driven by Playwright), as an agent uses it.

Runs on SQLite only (it tests the pages, not the database). The README's screenshots come from
docs/screenshots.py (`make screenshots`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.factories import AGENT_PASSWORD

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.live,
    # CI installs Chromium and must run these; elsewhere they are skipped without it.
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason="Debian's chromium is not installed",
    ),
]


def launch_chromium(p: Any, user_data: str, *extra_args: str, **options: Any) -> Any:
    """Debian's headless Chromium with a profile of its own and nothing phoning home."""
    return p.chromium.launch_persistent_context(
        user_data,
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", *extra_args,
        ],
        **options,
    )  # fmt: skip


def wait_settled(page: Any) -> None:
    """Wait until htmx has finished every request and swap: content it has just swapped in only
    gets its hx-* behaviour when it settles (20 ms later), and a click or a change in that window
    would be lost."""
    busy = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"
    page.wait_for_function(f"() => !document.querySelector('{busy}')")


@pytest.fixture
def browser_page(live_server, backend):
    if backend != "sqlite":
        pytest.skip("browser tests run on one backend")
    user_data = tempfile.mkdtemp(prefix="ledgerline-chromium-")
    with playwright.sync_playwright() as p:
        context = launch_chromium(p, user_data, viewport={"width": 1360, "height": 860})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(10_000)
        yield page, errors
        context.close()
    shutil.rmtree(user_data, ignore_errors=True)


def test_an_agent_works_through_a_customer_in_the_browser(live_server, browser_page):
    page, errors = browser_page
    org_id, _key = live_server.new_organization()
    email = live_server.new_agent(org_id, "admin")
    live_server.seed(
        org_id,
        [
            {"external_id": "acme", "name": "Acme Corporation", "country": "US", "currency": "USD",
             "email": "billing@acme.test",
             "metadata": [{"key": "plan_tier", "value": "enterprise"}]},
            {"external_id": "globex", "name": "Globex GmbH", "country": "DE", "currency": "EUR",
             "email": "finance@globex.test",
             "metadata": [{"key": "plan_tier", "value": "growth"}]},
            {"external_id": "initech", "name": "Initech SAS", "country": "FR", "currency": "EUR",
             "email": "compta@initech.test"},
        ],
    )  # fmt: skip
    base = live_server.url

    # Log in.
    page.goto(f"{base}/customers")
    page.fill("#email", email)
    page.fill("#password", AGENT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/customers")
    assert page.locator("#customer-table tbody tr").count() == 3

    # Search by a metadata value: live, and the URL follows.
    page.keyboard.press("/")
    page.keyboard.type("enterprise")
    page.wait_for_url(re.compile(r"q=enterprise"))
    page.wait_for_function("document.querySelectorAll('#customer-table tbody tr').length === 1")
    assert "Acme Corporation" in page.inner_text("#customer-table")

    # Open it with the keyboard.
    page.locator("#search").blur()
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/customers/[0-9a-f-]{36}$"))
    assert page.inner_text("h1") == "Acme Corporation"
    assert page.inner_text("#external-id") == "acme"

    # Edit it: a bad e-mail is refused next to its field, then fixed.
    page.click("summary:has-text('Actions')")
    page.click("text=Edit customer")
    page.fill("#email", "not-an-email")
    page.click("text=Save changes")
    page.wait_for_selector("#field-email .field-error")
    page.fill("#email", "ap@acme.test")
    page.fill("#city", "Springfield")
    page.click("#add-metadata")
    page.wait_for_selector("input[name='metadata-1-key']")
    page.fill("input[name='metadata-1-key']", "account_manager")
    page.fill("input[name='metadata-1-value']", "Dana")
    page.click("text=Save changes")
    page.wait_for_url(re.compile(r"/customers/[0-9a-f-]{36}$"))
    assert "ap@acme.test" in page.inner_text(".customer-contact")
    assert "Dana" in page.inner_text("#customer-tab")

    # Create a customer without an external id: one is generated.
    page.keyboard.press("n")
    page.wait_for_url(f"{base}/customers/new")
    page.fill("#name", "Northwind Traders")
    page.select_option("#currency", "AUD")
    page.click("text=Create customer")
    page.wait_for_url(re.compile(r"/customers/[0-9a-f-]{36}$"))
    assert re.fullmatch(r"cus_[0-9A-Z]{26}", page.inner_text("#external-id"))

    # Save a view of the euro customers; it shows in the sidebar with its count.
    page.goto(f"{base}/customers")
    page.select_option("select[name=currency]", "EUR")
    page.wait_for_url(re.compile(r"currency=EUR"))
    page.wait_for_function("document.querySelectorAll('#customer-table tbody tr').length === 2")
    page.fill("input[name=name]", "Euro customers")
    page.click("text=Save view")
    page.wait_for_selector("#saved-views a:has-text('Euro customers')")
    # The counts arrive just after the page (the sidebar loads them with htmx).
    page.wait_for_function("!document.querySelector('#saved-views').textContent.includes('…')")
    assert page.inner_text("#saved-views").split("Euro customers")[1].strip().startswith("2")

    # Delete Globex after reading what it does.
    page.click("text=Globex GmbH")
    page.click("summary:has-text('Actions')")
    page.click("text=Delete customer…")
    assert "can be used again" in page.inner_text(".consequences")
    page.check("#confirm")
    page.click("button:has-text('Delete customer')")
    page.wait_for_url(f"{base}/customers")
    assert "Globex" not in page.inner_text("#customer-table")

    # The one refused form answers 422 by design; nothing else may fail.
    assert [e for e in errors if "422" not in e] == []
