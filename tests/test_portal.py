"""The customer portal as its visitors and the seller use it: signed links (expiry at exactly
12 hours on a frozen clock, tampering, revocation), the access matrix (no portal URL serves
another customer's or organization's data), embedding headers and the absence of cookies, the
pages and their filters, self-service billing details, and the visit's language."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from billing import pdf
from billing.models import ActivityLog, OutboxEvent
from billing.services import portal as portal_service
from extensions import db
from tests import factories
from tests.test_console_invoices import at, billed_customer, close, invoice_of, text

SECRET = "test-secret-key"  # conftest's SECRET_KEY
TWELVE_HOURS = 12 * 3600


#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = at("2026-04-01T08:00:00")


def link(customer: Any) -> str:
    """The path of a fresh portal link of `customer`."""
    return f"/portal/{portal_service.issue_token(SECRET, customer)}/"


@pytest.fixture
def acme(org: Any, clock: Any) -> Any:
    """Acme (Paris, EUR): April billed and finalized (10 € + 3 × 0.50 € = 11.50 €)."""
    customer, _subscription = billed_customer(org, clock, "Acme")
    return customer


@pytest.fixture
def billed(org: Any, clock: Any, acme: Any) -> Any:
    """Acme with its finalized April invoice, and Initech (same organization) with its own."""
    initech, _ = billed_customer(org, clock, "Initech", units=5)
    close(clock)
    clock[0] = at("2026-05-02T09:00:00")
    return {"acme": invoice_of(org, acme), "initech": invoice_of(org, initech), "other": initech}


def visits(customer: Any) -> list[ActivityLog]:
    return list(
        db.session.scalars(
            select(ActivityLog).where(
                ActivityLog.customer_id == customer.id,
                ActivityLog.activity_type == "portal.visited",
            )
        )
    )


# --- links ----------------------------------------------------------------------------------


def test_api_portal_url_returns_an_absolute_link_that_opens_the_portal(
    api_client: Any, client: Any, org: Any, clock: Any
) -> None:
    customer = factories.make_customer(org, external_id="acme", name="Acme Corp")
    response = api_client.get("/api/v1/customers/acme/portal_url")
    assert response.status_code == 200
    url = response.get_json()["customer"]["portal_url"]
    assert re.fullmatch(r"http://testserver/portal/[A-Za-z0-9_\-.]+/", url)
    page = client.get(url.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert "Acme Corp" in text(page)
    assert customer.portal_version == 0


def test_api_portal_url_of_an_unknown_customer_is_404(api_client: Any) -> None:
    response = api_client.get("/api/v1/customers/nobody/portal_url")
    assert response.status_code == 404
    assert response.get_json()["code"] == "customer_not_found"


def test_a_link_expires_at_exactly_twelve_hours(client: Any, org: Any, clock: Any) -> None:
    customer = factories.make_customer(org)
    issued = at("2026-04-01T08:00:00")
    clock[0] = issued
    path = link(customer)
    clock[0] = issued + timedelta(seconds=TWELVE_HOURS - 1)
    assert client.get(path).status_code == 200
    clock[0] = issued + timedelta(seconds=TWELVE_HOURS)
    expired = client.get(path)
    assert expired.status_code == 403
    assert "This link has expired" in text(expired)
    assert "Ask for a new one" in text(expired)


def test_an_expired_link_says_so_in_the_customers_language(
    client: Any, org: Any, clock: Any
) -> None:
    customer = factories.make_customer(org, billing_configuration={"document_locale": "de"})
    path = link(customer)
    clock[0] += timedelta(hours=12)
    response = client.get(path)
    assert response.status_code == 403
    assert "Dieser Link ist abgelaufen" in text(response)
    assert '<html lang="de">' in response.get_data(as_text=True)
    assert "Ce lien a expiré" in text(client.get(path + "?lang=fr"))


def test_the_lifetime_is_configurable(app: Any, client: Any, org: Any, clock: Any) -> None:
    customer = factories.make_customer(org)
    path = link(customer)
    app.config["PORTAL_TOKEN_MAX_AGE"] = 60
    try:
        clock[0] += timedelta(seconds=60)
        assert client.get(path).status_code == 403
    finally:
        app.config["PORTAL_TOKEN_MAX_AGE"] = TWELVE_HOURS


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature
        lambda token: "x" + token,  # payload
        lambda token: "not-a-token",
        lambda token: "a.b.c",
        lambda token: "%00",
    ],
)
def test_a_tampered_link_gets_the_expired_page_without_details(
    client: Any, org: Any, clock: Any, mangle: Any
) -> None:
    customer = factories.make_customer(org, name="Secret Name")
    token = portal_service.issue_token(SECRET, customer)
    response = client.get(f"/portal/{mangle(token)}/")
    assert response.status_code == 403
    assert "This link has expired" in text(response)
    assert "Secret Name" not in text(response)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_a_token_signed_with_another_key_or_salt_is_refused(
    client: Any, org: Any, clock: Any
) -> None:
    from datetime import UTC, datetime

    from itsdangerous import URLSafeTimedSerializer

    clock[0] = datetime.now(UTC)  # itsdangerous signs with the real clock
    customer = factories.make_customer(org)
    payload = [org.id, customer.lago_id.hex, 0]
    for secret, salt in (("other-secret", "ledgerline.portal"), (SECRET, "wtf-csrf-token")):
        token = URLSafeTimedSerializer(secret, salt=salt).dumps(payload)
        assert client.get(f"/portal/{token}/").status_code == 403
    genuine = URLSafeTimedSerializer(SECRET, salt="ledgerline.portal").dumps(payload)
    assert client.get(f"/portal/{genuine}/").status_code == 200
    forged = URLSafeTimedSerializer(SECRET, salt="ledgerline.portal").dumps(["1", "x", "y"])
    assert client.get(f"/portal/{forged}/").status_code == 403


def test_revoking_kills_every_outstanding_link_and_is_audited(
    agent_client: Any, client: Any, org: Any, clock: Any
) -> None:
    customer = factories.make_customer(org)
    first, second = link(customer), link(customer)
    assert client.get(first).status_code == 200

    page = agent_client.get(f"/customers/{customer.lago_id}/portal")
    assert page.status_code == 200
    assert "http://testserver/portal/" in text(page)

    refused = agent_client.post(f"/customers/{customer.lago_id}/portal/revoke", {})
    assert refused.status_code == 422  # the confirmation box is required
    assert client.get(first).status_code == 200

    done = agent_client.post(f"/customers/{customer.lago_id}/portal/revoke", {"confirm": "y"})
    assert done.status_code == 302
    for path in (first, second):
        response = client.get(path)
        assert response.status_code == 403
        assert "This link has expired" in text(response)
    assert client.get(link(customer)).status_code == 200  # a new link works
    [entry] = db.session.scalars(
        select(ActivityLog).where(ActivityLog.activity_type == "customer.portal_links_revoked")
    )
    assert (entry.customer_id, entry.actor_type) == (customer.id, "agent")
    assert entry.changes == {"portal_version": [0, 1]}


def test_viewers_get_no_portal_link_and_cannot_revoke(
    make_agent_client: Any, org: Any, clock: Any
) -> None:
    viewer = make_agent_client("viewer")
    customer = factories.make_customer(org)
    assert viewer.get(f"/customers/{customer.lago_id}/portal").status_code == 403
    response = viewer.post(f"/customers/{customer.lago_id}/portal/revoke", {"confirm": "y"})
    assert response.status_code == 403


def test_a_deleted_customers_links_stop_working(client: Any, org: Any, clock: Any) -> None:
    from billing.services import customers as customer_service

    customer = factories.make_customer(org)
    path = link(customer)
    customer_service.delete_customer(org, customer, factories.TEST_ACTOR)
    db.session.commit()
    assert client.get(path).status_code == 403


def test_visits_are_logged_once_per_link_per_thirty_minutes(
    client: Any, org: Any, clock: Any
) -> None:
    customer = factories.make_customer(org)
    path = link(customer)
    headers = {"User-Agent": "TestBrowser/1.0"}
    client.get(path, headers=headers)
    client.get(path + "invoices", headers=headers)
    [entry] = visits(customer)
    assert entry.actor_type == "portal" and entry.source == "portal"
    assert entry.changes["user_agent"] == [None, "TestBrowser/1.0"]
    assert entry.changes["ip_address"] == [None, "127.0.0.1"]

    clock[0] += timedelta(minutes=29)
    client.get(path)
    assert len(visits(customer)) == 1
    client.get(link(customer))  # another link: its own visit
    assert len(visits(customer)) == 2
    clock[0] += timedelta(minutes=2)
    client.get(path)
    assert len(visits(customer)) == 3


# --- headers: embedding, no cookie -------------------------------------------------------------


def portal_urls(path: str, invoice: Any) -> list[str]:
    return [
        path,
        path + "invoices",
        path + "invoices?status=paid&q=x",
        path + "usage",
        path + "details",
        path + "theme.css",
        path + f"invoices/{invoice.lago_id}.pdf",
        path + "invoices/00000000-0000-0000-0000-000000000000.pdf",
        path + "nothing-here",
    ]


def test_every_portal_response_frames_only_for_the_allowed_origins_and_sets_no_cookie(
    agent_client: Any, org: Any, clock: Any, acme: Any, billed: Any
) -> None:
    org.portal_embed_origins = ["https://app.example.com", "https://*.example.org"]
    db.session.commit()
    client = agent_client.client  # a browser where an agent is signed in too
    path = link(acme)
    for url in [*portal_urls(path, billed["acme"]), "/portal/tampered/"]:
        response = client.get(url)
        assert "Set-Cookie" not in response.headers, url
        csp = response.headers["Content-Security-Policy"]
        if url.startswith("/portal/tampered"):
            assert "frame-ancestors 'none'" in csp
        else:
            assert "frame-ancestors https://app.example.com https://*.example.org" in csp, url
            assert "X-Frame-Options" not in response.headers
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert response.headers["Referrer-Policy"] == "no-referrer"
    nonce_page = client.get(path + "details")
    nonce = re.search(r'name="nonce" value="([^"]+)"', nonce_page.get_data(as_text=True))
    assert nonce
    post = client.post(path + "details", data={"nonce": nonce.group(1), "name": "Acme"})
    assert post.status_code == 200 and "Set-Cookie" not in post.headers


def test_without_allowed_origins_the_portal_refuses_framing(
    client: Any, org: Any, clock: Any
) -> None:
    customer = factories.make_customer(org)
    response = client.get(link(customer))
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    console = client.get("/login")
    assert "frame-ancestors 'none'" in console.headers["Content-Security-Policy"]


def test_an_expired_genuine_link_keeps_the_organizations_framing(
    client: Any, org: Any, clock: Any
) -> None:
    org.portal_embed_origins = ["https://app.example.com"]
    db.session.commit()
    customer = factories.make_customer(org)
    path = link(customer)
    clock[0] += timedelta(hours=13)
    response = client.get(path)
    assert response.status_code == 403
    assert "frame-ancestors https://app.example.com" in response.headers["Content-Security-Policy"]


# --- access matrix --------------------------------------------------------------------------------


def test_no_portal_url_serves_another_customers_or_organizations_invoice(
    client: Any, org: Any, clock: Any, acme: Any, billed: Any
) -> None:
    other_org = factories.make_organization()
    stranger, _ = billed_customer(other_org, clock, "Stranger")
    close(clock, "2026-05-01T00:00:20")
    foreign = invoice_of(other_org, stranger)
    clock[0] = at("2026-05-02T09:00:00")
    path = link(acme)

    own = client.get(path + f"invoices/{billed['acme'].lago_id}.pdf")
    assert own.status_code == 200
    assert own.mimetype == "application/pdf" and own.data.startswith(b"%PDF")
    assert f'filename="{billed["acme"].number}.pdf"' in own.headers["Content-Disposition"]
    for invoice_id in (billed["initech"].lago_id, foreign.lago_id, "not-a-uuid", "1"):
        response = client.get(path + f"invoices/{invoice_id}.pdf")
        assert response.status_code == 404, invoice_id
        assert not response.data.startswith(b"%PDF")

    listing = text(client.get(path + "invoices"))
    assert billed["acme"].number in listing
    assert billed["initech"].number not in listing and foreign.number not in listing
    searched = text(client.get(path + f"invoices?q={billed['initech'].number}"))
    assert billed["initech"].number not in searched
    overview = text(client.get(path))
    assert "Initech" not in overview and "Stranger" not in overview


def test_a_draft_invoice_is_not_downloadable(client: Any, org: Any, clock: Any) -> None:
    customer, _ = billed_customer(org, clock, "Globex", grace=3)
    close(clock)
    draft = invoice_of(org, customer)
    assert draft.status == "draft"
    path = link(customer)
    assert client.get(path + f"invoices/{draft.lago_id}.pdf").status_code == 404
    assert draft.number not in text(client.get(path + "invoices"))


# --- pages ---------------------------------------------------------------------------------------


def test_overview_shows_totals_per_currency(
    client: Any, org: Any, clock: Any, acme: Any, billed: Any
) -> None:
    body = text(client.get(link(acme) + "?lang=en"))
    assert "Total invoiced €11.50" in body
    assert "Outstanding €11.50" in body
    assert "Overdue €0.00" in body
    assert billed["acme"].number in body


def test_invoice_history_filters_and_searches_with_htmx_fragments(
    client: Any, org: Any, clock: Any, acme: Any, billed: Any
) -> None:
    invoice = billed["acme"]
    path = link(acme)
    cases = [
        ("", True),
        ("status=unpaid", True),
        ("status=paid", False),
        ("status=overdue", False),
        (f"q={invoice.number}", True),
        ("q=11.50", True),
        ("q=11,50", True),
        ("q=11.51", False),
        ("q=NOPE-999", False),
        ("status=bogus&page=abc", True),
    ]
    for query, shown in cases:
        response = client.get(f"{path}invoices?{query}", headers={"HX-Request": "true"})
        assert response.status_code == 200, query
        html = response.get_data(as_text=True)
        assert "<html" not in html and 'id="invoice-table"' in html
        assert (invoice.number in html) is shown, query

    invoice.payment_status = "succeeded"
    db.session.commit()
    assert invoice.number in text(client.get(f"{path}invoices?status=paid"))
    assert invoice.number not in text(client.get(f"{path}invoices?status=unpaid"))
    # the page's htmx requests carry the token in their URL
    page = client.get(f"{path}invoices").get_data(as_text=True)
    assert f'hx-get="{path}invoices"' in page


def test_usage_page_draws_a_chart_per_metric(client: Any, org: Any, clock: Any) -> None:
    customer, _subscription = billed_customer(org, clock, "Umbrella", units=4)
    clock[0] = at("2026-04-20T12:00:00")
    response = client.get(link(customer) + "usage?lang=fr")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<svg" in html and 'class="chart-bar"' in html
    body = text(response)
    assert "API calls par jour" in body
    assert "2,00 €" in body  # 4 calls × 0.50 € so far
    assert "style=" not in html and "<script>" not in html


# --- self-service billing details ----------------------------------------------------------------


def _nonce(client: Any, path: str) -> str:
    html = client.get(path + "details").get_data(as_text=True)
    match = re.search(r'name="nonce" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_billing_details_are_saved_audited_as_the_portal_and_emitted(
    client: Any, org: Any, clock: Any
) -> None:
    customer = factories.make_customer(org, name="Old Name", document_locale=None)
    path = link(customer)
    form = {
        "nonce": _nonce(client, path),
        "name": "New Name",
        "legal_name": "New Name SAS",
        "email": "ap@new.example.com",
        "address_line1": "1 rue de la Paix",
        "zipcode": "75002",
        "city": "Paris",
        "country": "fr",
        "tax_identification_number": "FR123",
        "document_locale": "de",
    }
    response = client.post(path + "details", data=form)
    assert response.status_code == 200
    assert "Ihre Rechnungsdaten wurden gespeichert." in text(response)  # now in German
    db.session.refresh(customer)
    assert (customer.name, customer.legal_name, customer.country) == (
        "New Name", "New Name SAS", "FR"
    )  # fmt: skip
    assert customer.document_locale == "de"
    [entry] = db.session.scalars(
        select(ActivityLog).where(
            ActivityLog.customer_id == customer.id, ActivityLog.activity_type == "customer.updated"
        )
    )
    assert (entry.actor_type, entry.source) == ("portal", "portal")
    assert entry.changes["name"] == ["Old Name", "New Name"]
    events = db.session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.organization_id == customer.organization_id,
            OutboxEvent.event_type == "customer.updated",
        )
    ).all()
    assert [e.payload["name"] for e in events] == ["New Name"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "Enter a valid e-mail address"),
        ("country", "XX", "Choose a country from the list."),
        ("document_locale", "ja", "Choose a language from the list."),
        ("name", "x" * 300, "This is too long."),
    ],
)
def test_invalid_billing_details_show_field_errors_and_save_nothing(
    client: Any, org: Any, clock: Any, field: str, value: str, message: str
) -> None:
    customer = factories.make_customer(org, name="Kept", document_locale="en")
    path = link(customer)
    response = client.post(
        path + "details", data={"nonce": _nonce(client, path), "name": "Changed", field: value}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(rf'id="e-{field}">[^<]*{re.escape(message)}', html) or (
        field in ("country", "document_locale") and message in html
    )
    db.session.refresh(customer)
    assert customer.name == "Kept"


def test_a_write_without_a_valid_nonce_is_refused(client: Any, org: Any, clock: Any) -> None:
    customer = factories.make_customer(org, name="Kept")
    path = link(customer)
    other = link(factories.make_customer(org))
    for nonce in ("", "forged", _nonce(client, other)):  # another link's nonce too
        response = client.post(path + "details", data={"nonce": nonce, "name": "Changed"})
        assert response.status_code == 400
    db.session.refresh(customer)
    assert customer.name == "Kept"


# --- language ---------------------------------------------------------------------------------


def test_the_language_follows_customer_then_organization_and_is_switchable(
    client: Any, org: Any, clock: Any
) -> None:
    org.document_locale = "fr"
    db.session.commit()
    german = factories.make_customer(org, billing_configuration={"document_locale": "de"})
    plain = factories.make_customer(org)
    assert "Rechnungen" in text(client.get(link(german)))
    assert "Factures" in text(client.get(link(plain)))
    switched = client.get(link(german) + "?lang=sv")
    assert "Fakturor" in text(switched)
    html = switched.get_data(as_text=True)
    assert re.search(r'href="/portal/[^"]+/invoices\?lang=sv"', html)  # carried in links
    assert '<html lang="sv">' in html
    assert "Rechnungen" in text(client.get(link(german) + "?lang=klingon"))


@pytest.mark.parametrize("locale", pdf.LOCALES)
def test_every_portal_page_is_shown_in_every_locale(
    client: Any, org: Any, clock: Any, acme: Any, billed: Any, locale: str
) -> None:
    catalog = pdf.translations(locale)
    for page in ("", "invoices", "usage", "details"):
        response = client.get(f"{link(acme)}{page}?lang={locale}")
        assert response.status_code == 200, page
        html = response.get_data(as_text=True)
        assert f'<html lang="{locale}">' in html
        for label in ("Overview", "Invoices", "Usage", "Billing details"):
            assert f">{catalog.gettext(label)}</a>" in html, (page, label)
        assert locale == "en" or ">Billing details</a>" not in html


def test_labels_defined_once_are_shown_in_each_visits_language(
    client: Any, org: Any, clock: Any
) -> None:
    """The invoice filters and the field errors are made at import: each visit reads its own."""
    customer = factories.make_customer(org, name="Kept", document_locale="en")
    path = link(customer)
    french = text(client.get(path + "invoices?lang=fr"))
    assert all(label in french for label in ("Toutes", "Payée", "Non payée", "En retard"))
    german = text(client.get(path + "invoices?lang=de"))
    assert all(label in german for label in ("Alle", "Bezahlt", "Unbezahlt", "Überfällig"))
    assert "Unpaid" in text(client.get(path + "invoices"))  # the customer's own language again
    response = client.post(
        path + "details?lang=fr",
        data={"nonce": _nonce(client, path), "name": "x" * 300, "country": "XX"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r'id="e-name">[^<]*C&#39;est trop long\.', html)
    assert "Choisissez un pays dans la liste." in html


# --- prepaid credits and credit notes ------------------------------------------------------------


def test_overview_shows_the_prepaid_credits_and_credit_notes_with_their_pdf_only(
    client: Any, org: Any, clock: Any, acme: Any, billed: Any
) -> None:
    from billing.services import credit_notes, wallets

    def credit(invoice: Any, cents: int) -> Any:
        fee = invoice.fees[0]
        data = {"invoice_id": str(invoice.lago_id), "reason": "other", "credit_amount_cents": cents,
                "items": [{"fee_id": str(fee.lago_id), "amount_cents": cents}]}  # fmt: skip
        return credit_notes.create_credit_note(invoice, data, factories.TEST_ACTOR)

    own, other = credit(billed["acme"], 200), credit(billed["initech"], 300)
    wallets.create_wallet(
        org,
        {"external_customer_id": acme.external_id, "rate_amount": "1", "granted_credits": "25"},
        factories.TEST_ACTOR,
    )
    db.session.commit()
    path = link(acme)

    body = text(client.get(path + "?lang=en"))
    assert "Prepaid credits Balance €25.00" in body
    assert own.number in body and other.number not in body
    pdf = client.get(path + f"credit_notes/{own.lago_id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert f'filename="{own.number}.pdf"' in pdf.headers["Content-Disposition"]
    for credit_note_id in (other.lago_id, "not-a-uuid", billed["acme"].lago_id):
        response = client.get(path + f"credit_notes/{credit_note_id}.pdf")
        assert response.status_code == 404, credit_note_id
    assert "Guthaben 25,00 €" in text(client.get(path + "?lang=de"))  # in the visit's language
