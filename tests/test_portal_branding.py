"""The portal as the seller's customers see it beyond its pages' data: the organization's brand
colour and logo, the demo link `make run` prints, dates in a customer's own far time zone, and
the console's way to hand a link out (Actions → Portal link…, copy and open)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask

from billing import demo_metering
from billing.demo import DEMO_ORG_NAME, seed_demo
from billing.demo_portal import demo_portal_banner
from billing.services import portal as portal_service
from tests import factories
from tests.test_console_invoices import at, close, invoice_of, text
from tests.test_portal import SECRET, link

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = at("2026-04-01T08:00:00")


def attribute(page: str, pattern: str) -> str:
    """The unescaped value captured by `pattern` in the page's HTML (one match expected)."""
    match = re.search(pattern, page)
    assert match, pattern
    return html.unescape(match.group(1))


# --- brand colour and logo -------------------------------------------------------------------


def test_the_brand_colour_reaches_the_portals_stylesheet(client: Any, org: Any, clock: Any) -> None:
    org.brand_color = "#aa3355"
    customer = factories.make_customer(org, name="Acme")
    page = client.get(link(customer)).get_data(as_text=True)
    theme_url = attribute(page, r'<link rel="stylesheet" href="([^"]*/theme\.css)"')
    theme = client.get(theme_url)
    assert theme.status_code == 200 and theme.mimetype == "text/css"
    assert "--brand: #aa3355;" in theme.get_data(as_text=True)
    with client.get("/static/css/portal.css") as stylesheet:
        portal_css = stylesheet.get_data(as_text=True)
    assert "var(--brand)" in portal_css  # the colour is what the portal draws with

    org.brand_color = "#1f7a4d"
    assert "--brand: #1f7a4d;" in client.get(theme_url).get_data(as_text=True)


def test_the_organizations_logo_is_shown_and_served(client: Any, org: Any, clock: Any) -> None:
    org.logo, org.logo_content_type = PNG, "image/png"
    customer = factories.make_customer(org, name="Acme")
    page = client.get(link(customer)).get_data(as_text=True)
    logo_url = attribute(page, r'<img class="portal-logo" src="([^"]+)"')
    assert f'alt="{org.name}"' in page
    logo = client.get(logo_url)
    assert logo.status_code == 200
    assert logo.mimetype == "image/png" and logo.data == PNG
    assert logo_url.startswith(link(customer).rsplit("/", 2)[0])  # behind the link's token


def test_without_a_logo_the_portal_names_the_organization_and_serves_none(
    client: Any, org: Any, clock: Any
) -> None:
    assert org.logo is None
    customer = factories.make_customer(org, name="Acme")
    path = link(customer)
    response = client.get(path)
    page = response.get_data(as_text=True)
    assert "portal-logo" not in page
    assert f'<span class="portal-org">{org.name}</span>' in page
    assert client.get(path + "logo").status_code == 404
    # the default colour still gives the portal a theme
    assert "--brand: #" in client.get(path + "theme.css").get_data(as_text=True)


def test_a_foreign_link_gets_no_logo(client: Any, org: Any, clock: Any) -> None:
    org.logo, org.logo_content_type = PNG, "image/png"
    customer = factories.make_customer(org)
    forged = link(customer).replace("/portal/", "/portal/x", 1)
    assert client.get(forged + "logo").status_code == 403


# --- the demo's link -------------------------------------------------------------------------


def test_the_demo_portal_link_printed_by_make_run_opens(
    app: Flask, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the demo without its PDFs (rendering them takes long; the portal lists the invoices)
    monkeypatch.setattr(demo_metering, "seed_documents", lambda organization: 0)
    seed_demo()
    banner = demo_portal_banner("http://testserver", app.secret_key)
    match = re.search(
        r"Customer portal \(demo, valid 12 hours\): http://testserver(/portal/\S+/)", banner
    )
    assert match, banner
    access = portal_service.open_link(SECRET, match.group(1).split("/")[2], 3600)
    assert access.organization.name == DEMO_ORG_NAME
    page = client.get(match.group(1))
    assert page.status_code == 200
    body = text(page)
    assert access.customer.display_name in body
    assert "Latest invoices" in body  # the demo customer with the most invoices


def test_without_demo_data_serve_prints_no_portal_link(app: Flask, db_session: Any) -> None:
    assert demo_portal_banner("http://testserver", app.secret_key) == ""


# --- a customer's own time zone ----------------------------------------------------------------


def kiritimati_customer(org: Any, clock: Any) -> tuple[Any, Any]:
    """A customer at UTC+14 (Pacific/Kiritimati) on a 10 € monthly plan from 1 April there,
    with 3 API calls on 10 April."""
    customer = factories.make_customer(
        org, external_id="kiri", name="Line Islands Co", currency="EUR",
        timezone="Pacific/Kiritimati", document_locale="en",
    )  # fmt: skip
    metric = factories.make_billable_metric(org, name="API calls", code="calls_kiri")
    charge = {
        "billable_metric_id": str(metric.lago_id),
        "charge_model": "standard",
        "properties": {"amount": "0.5"},
    }
    plan = factories.make_plan(org, charges=[charge], name="Starter", amount_cents=1000)
    subscription = factories.make_subscription(
        org, customer, plan, external_id="sub-kiri", subscription_at="2026-04-01T00:00:00+14:00"
    )
    factories.send_event(org, subscription, at("2026-04-10T10:00:00"), value=3)
    return customer, subscription


def test_dates_are_the_customers_own_across_a_day_boundary(
    client: Any, org: Any, clock: Any
) -> None:
    customer, _ = kiritimati_customer(org, clock)

    # 30 April 09:59 UTC is 23:59 on 30 April in Kiritimati: still April's period there
    clock[0] = at("2026-04-30T09:59:00")
    usage = text(client.get(link(customer) + "usage"))
    assert "Billing period: Apr 1, 2026 – Apr 30, 2026" in usage

    # ten minutes later it is 1 May in Kiritimati (still 30 April in UTC): April is invoiced
    # there, dated 1 May, and the open period is May
    close(clock, "2026-04-30T10:09:00")
    invoice = invoice_of(org, customer)
    assert invoice.issuing_date.isoformat() == "2026-05-01"
    path = link(customer)
    usage = text(client.get(path + "usage"))
    assert "Billing period: May 1, 2026 – May 31, 2026" in usage
    invoices = text(client.get(path + "invoices"))
    assert f"May 1, 2026 {invoice.number}" in invoices
    assert "Apr 30, 2026" not in invoices


# --- the console hands links out -------------------------------------------------------------


def test_the_console_offers_a_portal_link_to_copy_and_open(
    agent_client: Any, client: Any, org: Any, clock: Any
) -> None:
    customer = factories.make_customer(org, name="Acme Corp")
    page = agent_client.get(f"/customers/{customer.lago_id}").get_data(as_text=True)
    portal_page = attribute(page, r'<a role="menuitem" href="([^"]+)">Portal link…</a>')
    assert portal_page == f"/customers/{customer.lago_id}/portal"

    response = agent_client.get(portal_page)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    url = attribute(page, r'<code id="portal-url">([^<]+)</code>')
    assert re.fullmatch(r"http://testserver/portal/[A-Za-z0-9_\-.]+/", url)
    copy_target = attribute(
        page, r'<button type="button" class="button" data-copy="([^"]+)">Copy link</button>'
    )
    assert copy_target == "#portal-url"  # copies exactly the URL shown
    opened = attribute(
        page, r'<a class="button" href="([^"]+)" target="_blank"[^>]*>Open portal</a>'
    )
    assert opened == url
    portal = client.get(url.removeprefix("http://testserver"))
    assert portal.status_code == 200
    assert "Acme Corp" in text(portal)
