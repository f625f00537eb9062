"""Invoice PDFs end to end: what the customer reads in the PDF of a real invoice, the job that
stores them (and credit notes') once, the API's download and its signed links, and the
console's preview.

Invoices come from the real period close with a frozen clock; PDF text is extracted with
poppler's pdftotext (tests/test_pdf.py), as a customer's PDF reader shows it.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner
from sqlalchemy import event, func, select, update

from billing.demo_documents import seed_documents
from billing.models import Document, Invoice, OutboxEvent, Subscription
from billing.services import credit_notes, documents, invoicing
from billing.services.customers import upsert_customer
from billing.services.invoice_documents import invoice_document
from extensions import db
from tests import factories
from tests.test_console_invoices import CLOCK_START, at, billed_customer, close, invoice_of
from tests.test_pdf import needs_pdftotext, normalize, pdf_text

#: the console invoice tests' start of the `clock` fixture, used here too
__all__ = ["CLOCK_START"]

INVOICE_NOT_FOUND = {"status": 404, "error": "Not Found", "code": "invoice_not_found"}


def bill(
    org: Any,
    clock: Any,
    name: str,
    *,
    grace: int = 0,
    units: int = 3,
    locale: str | None = None,
    **fields: Any,
) -> Invoice:
    """`name`, in Paris, on a 10 € plan with 0.50 € per API call and `units` calls in April,
    30 days to pay; April closed on 1 May (finalized at once, or a draft with `grace` days).
    `locale` and `fields` (any Lago customer field) are set through the customer upsert."""
    customer, _subscription = billed_customer(
        org, clock, name, grace=grace, units=units, net_payment_term=30
    )
    if locale or fields:
        config = {"billing_configuration": {"document_locale": locale}} if locale else {}
        upsert_customer(
            org, {"external_id": customer.external_id, **config, **fields}, factories.TEST_ACTOR
        )
        db.session.commit()
    close(clock)
    return invoice_of(org, customer)


def documents_of(org: Any) -> list[Document]:
    return list(
        db.session.scalars(
            select(Document).where(Document.organization_id == org.id).order_by(Document.id)
        )
    )


def generated_events(org: Any) -> list[OutboxEvent]:
    return list(
        db.session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.organization_id == org.id,
                OutboxEvent.event_type == "invoice.generated",
            )
        )
    )


def local(url: str) -> str:
    """A file_url as the test client requests it (PUBLIC_URL is http://testserver in tests)."""
    assert url.startswith("http://testserver/documents/"), url
    return url.removeprefix("http://testserver")


# --- what the PDF says ---------------------------------------------------------------------------

LOCALES = [
    # customer's locale, organization's locale, label, due date as written, 11.50 € as written
    ("en", "en", "Invoice", "May 31, 2026", "€11.50"),
    ("fr", "en", "Facture", "31 mai 2026", "11,50 €"),
    (None, "fr", "Facture", "31 mai 2026", "11,50 €"),  # the organization's locale, by default
    (None, "de", "Rechnung", "31. Mai 2026", "11,50 €"),
]


@needs_pdftotext
@pytest.mark.parametrize(("locale", "org_locale", "label", "due", "total"), LOCALES)
def test_the_pdf_of_a_real_invoice_holds_its_number_customer_and_total(
    org, clock, locale, org_locale, label, due, total
):
    org.document_locale = org_locale
    invoice = bill(org, clock, "Acme Rocket Works", locale=locale)

    text = pdf_text(documents.generate_invoice_pdf(invoice).content)

    assert invoice.number in text and invoice.number.endswith("-001")
    assert "Acme Rocket Works" in text
    assert invoice.total_amount_cents == 1150  # 10 € base fee + 3 calls × 0.50 €
    assert normalize(total) in text
    assert label in text and due in text


@needs_pdftotext
def test_the_pdf_prints_fee_lines_customer_details_and_flagged_metadata(org, clock):
    invoice = bill(
        org,
        clock,
        "Globex",
        legal_name="Globex Corporation SA",
        address_line1="12 rue de la Paix",
        zipcode="75002",
        city="Paris",
        country="FR",
        tax_identification_number="FR40123456824",
        metadata=[
            {"key": "PO number", "value": "PO-77", "display_in_invoice": True},
            {"key": "account manager", "value": "Dana", "display_in_invoice": False},
        ],
    )

    text = pdf_text(documents.render_pdf("invoice", invoice))

    for expected in (
        org.name,
        "Globex Corporation SA",
        "12 rue de la Paix",
        "75002 Paris",
        "France",
        "Tax ID: FR40123456824",
        "Starter",  # the base fee: 1 × 10 €
        "API calls",  # the usage: 3 × 0.50 €
        "€10.00",
        "€0.50",
        "€1.50",
        "Apr 1 – 30, 2026",  # the billing period, in Paris
        "PO number PO-77",
        "Payable within 30 days",
    ):
        assert expected in text, expected
    assert "Dana" not in text  # not marked display_in_invoice
    assert "Coupons" not in text and "Prepaid credits" not in text and "Credit notes" not in text


@needs_pdftotext
def test_coupons_taxes_credit_notes_and_prepaid_credits_print_when_not_zero(org, clock):
    invoice = bill(org, clock, "Initech", units=0)  # fees: 10.00 €
    invoice.coupons_amount_cents = 200
    invoice.sub_total_excluding_taxes_amount_cents = 800
    invoice.taxes_amount_cents = 160
    invoice.sub_total_including_taxes_amount_cents = 960
    invoice.credit_notes_amount_cents = 100
    invoice.prepaid_credit_amount_cents = 50
    invoice.total_amount_cents = 810

    text = pdf_text(documents.render_pdf("invoice", invoice))
    db.session.rollback()

    for label, amount in [
        ("Subtotal", "€10.00"),
        ("Coupons", "-€2.00"),
        ("Subtotal excl. tax", "€8.00"),
        ("Tax", "€1.60"),
        ("Subtotal incl. tax", "€9.60"),
        ("Credit notes", "-€1.00"),
        ("Prepaid credits", "-€0.50"),
        ("Total due", "€8.10"),
    ]:
        assert f"{label} {amount}" in text, label


def test_a_prorated_base_fee_shows_no_unit_price_that_would_not_add_up(org, clock):
    clock[0] = at("2026-04-01T08:00:00")
    customer = factories.make_customer(org, currency="EUR", timezone="UTC")
    plan = factories.make_plan(org, charges=[], amount_cents=3000)
    clock[0] = at("2026-04-16T08:00:00")
    factories.make_subscription(org, customer, plan, subscription_at="2026-04-16T00:00:00Z")
    clock[0] = at("2026-05-01T00:00:10")
    invoicing.close_periods()
    [invoice] = [i for i in factories.invoices_of(org) if i.customer_id == customer.id]

    [line] = invoice_document(invoice).lines

    assert (line.amount_cents, line.units, line.unit_amount) == (1500, 1, None)
    assert (line.period_start.isoformat(), line.period_end.isoformat()) == (
        "2026-04-16",
        "2026-04-30",
    )


# --- the job -------------------------------------------------------------------------------------


def test_the_job_stores_one_pdf_per_finalized_invoice_however_often_it_runs(org, clock):
    finalized = bill(org, clock, "Acme")
    draft = bill(org, clock, "Globex", grace=5)

    first = seed_documents(org)
    again = seed_documents(org)

    [document] = documents_of(org)
    [event] = generated_events(org)
    assert (first, again) == (1, 0)
    assert (document.document_type, document.owner_id) == ("invoice", finalized.id)
    assert document.filename == f"{finalized.number}.pdf"
    assert document.content.startswith(b"%PDF") and document.byte_size == len(document.content)
    assert event.payload["lago_id"] == str(finalized.lago_id)
    assert event.payload["file_url"].startswith("http://testserver/documents/")
    assert event.object_type == "invoice" and event.payload["fees"]
    assert draft.status == "draft"  # a draft gets no stored PDF


def test_a_second_writer_stores_nothing_and_announces_nothing(org, clock):
    invoice = bill(org, clock, "Acme")
    spec = documents.kind_of("invoice")

    assert documents._store(spec, invoice, b"%PDF-first") is True
    assert documents._store(spec, invoice, b"%PDF-second") is False  # ON CONFLICT DO NOTHING
    again = documents.generate_invoice_pdf(invoice)

    assert [d.content for d in documents_of(org)] == [b"%PDF-first"]
    assert again.content == b"%PDF-first"
    assert len(generated_events(org)) == 1


@needs_pdftotext
def test_a_stored_pdf_is_printed_again_once_paid_or_voided(org, clock):
    invoice = bill(org, clock, "Acme")
    documents.generate_invoice_pdf(invoice)
    assert "Pending" in pdf_text(documents_of(org)[0].content)

    invoicing.update_invoice(invoice, {"payment_status": "succeeded"}, factories.TEST_ACTOR)
    db.session.commit()
    [paid] = documents_of(org)
    assert "Paid" in pdf_text(paid.content)
    assert len(generated_events(org)) == 2  # announced again

    other = bill(org, clock, "Initech")
    documents.generate_invoice_pdf(other)
    invoicing.void_invoice(other, factories.TEST_ACTOR)
    db.session.commit()
    [voided] = [d for d in documents_of(org) if d.owner_id == other.id]
    assert "VOID" in pdf_text(voided.content)
    assert seed_documents(org) == 0  # nothing left for the job


def test_a_voided_invoice_that_never_had_a_pdf_gets_one(org, clock):
    invoice = bill(org, clock, "Acme")
    invoicing.void_invoice(invoice, factories.TEST_ACTOR)
    db.session.commit()

    assert seed_documents(org) == 1
    assert "VOID" in pdf_text(documents_of(org)[0].content)


def test_the_scheduled_job_stores_the_missing_pdfs_then_has_nothing_to_do(org, clock):
    from jobs.documents import run_document_generation
    from jobs.scheduler import JOBS

    invoice = bill(org, clock, "Acme")

    first = run_document_generation()
    second = run_document_generation()

    assert first >= 1 and second == 0
    assert [d.owner_id for d in documents_of(org)] == [invoice.id]
    assert len(generated_events(org)) == 1
    assert "documents" in [job.id for job in JOBS]


def test_the_job_stores_a_credit_notes_pdf_once_and_announces_it_once(org, clock):
    from jobs.documents import run_document_generation

    invoice = bill(org, clock, "Acme")
    note = credit_notes.create_credit_note(
        invoice,
        {
            "reason": "order_change",
            "items": [{"fee_id": str(invoice.fees[0].lago_id), "amount_cents": 400}],
            "credit_amount_cents": 400,
        },
        factories.TEST_ACTOR,
    )
    db.session.commit()

    first = run_document_generation()
    second = run_document_generation()

    # the invoice's PDF and the credit note's (and whatever other tests left without one)
    assert first >= 2 and second == 0
    assert sorted(d.document_type for d in documents_of(org)) == ["credit_note", "invoice"]
    [stored] = [d for d in documents_of(org) if d.document_type == "credit_note"]
    assert (stored.owner_id, stored.filename) == (note.id, f"{note.number}.pdf")
    assert stored.content.startswith(b"%PDF") and stored.byte_size == len(stored.content)
    [event] = db.session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.organization_id == org.id,
            OutboxEvent.event_type == "credit_note.generated",
        )
    ).all()
    assert event.object_type == "credit_note"
    assert event.payload["lago_id"] == str(note.lago_id)
    assert event.payload["file_url"].startswith("http://testserver/documents/")
    assert len(generated_events(org)) == 1  # the invoice's, once too


def test_a_pdf_that_fails_to_render_holds_no_other_back(org, clock, monkeypatch, caplog):
    from jobs.documents import run_document_generation

    broken, fine = bill(org, clock, "Acme"), bill(org, clock, "Globex")
    render = documents.render_invoice_pdf

    def render_or_fail(doc: Any) -> bytes:
        if doc.number == broken.number:
            raise ValueError("a font went missing")
        return render(doc)

    monkeypatch.setattr(documents, "render_invoice_pdf", render_or_fail)

    run_document_generation()
    run_document_generation()  # tries it again, once

    assert [d.owner_id for d in documents_of(org)] == [fine.id]
    failures = [r for r in caplog.records if "rendering invoice" in r.getMessage()]
    assert len(failures) == 2 and broken.number in failures[0].getMessage()


# --- the API -------------------------------------------------------------------------------------


def test_download_generates_the_pdf_and_answers_the_invoice_with_its_link(
    api_client, client, org, clock
):
    invoice = bill(org, clock, "Acme")
    listed = api_client.get("/api/v1/invoices").get_json()["invoices"][0]

    response = api_client.post(
        f"/api/v1/invoices/{invoice.lago_id}/download", content_type="application/json"
    )
    again = api_client.post(f"/api/v1/invoices/{invoice.lago_id}/download_pdf")
    shown = api_client.get(f"/api/v1/invoices/{invoice.lago_id}").get_json()["invoice"]

    assert listed["file_url"] is None  # not generated yet
    assert response.status_code == 200, response.get_json()
    body = response.get_json()["invoice"]
    assert body["lago_id"] == str(invoice.lago_id) and body["number"] == invoice.number
    assert again.status_code == 200 and shown["file_url"]
    assert len(documents_of(org)) == 1 and len(generated_events(org)) == 1
    pdf = client.get(local(body["file_url"]))  # no API key
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Content-Disposition"] == f"inline; filename={invoice.number}.pdf"
    assert pdf.data == documents_of(org)[0].content


def test_the_list_links_the_stored_pdfs_with_one_query_for_the_page(api_client, org, clock):
    with_pdf, without_pdf = bill(org, clock, "Acme"), bill(org, clock, "Globex")
    documents.generate_invoice_pdf(with_pdf)
    db.session.commit()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        body = api_client.get("/api/v1/invoices").get_json()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    links = {invoice["number"]: invoice["file_url"] for invoice in body["invoices"]}
    assert links[with_pdf.number].startswith("http://testserver/documents/")
    assert links[without_pdf.number] is None
    assert len([s for s in statements if "FROM documents" in s]) == 1


def test_download_of_a_draft_is_404_and_stores_nothing(api_client, org, clock):
    draft = bill(org, clock, "Globex", grace=5)

    response = api_client.post(f"/api/v1/invoices/{draft.lago_id}/download")

    assert (response.status_code, response.get_json()) == (404, INVOICE_NOT_FOUND)
    assert documents_of(org) == [] and generated_events(org) == []


def test_download_of_a_voided_invoice_serves_its_pdf(api_client, org, clock):
    invoice = bill(org, clock, "Acme")
    invoicing.void_invoice(invoice, factories.TEST_ACTOR)
    db.session.commit()

    response = api_client.post(f"/api/v1/invoices/{invoice.lago_id}/download")

    assert response.status_code == 200
    assert response.get_json()["invoice"]["status"] == "voided"
    assert response.get_json()["invoice"]["file_url"]


def test_download_of_another_organizations_invoice_is_404(client, org, clock):
    invoice = bill(org, clock, "Acme")
    other = factories.make_organization()
    headers = {"Authorization": f"Bearer {factories.make_api_key(other)}"}

    for lago_id in (invoice.lago_id, "not-a-uuid"):
        response = client.post(f"/api/v1/invoices/{lago_id}/download", headers=headers)
        assert (response.status_code, response.get_json()) == (404, INVOICE_NOT_FOUND)
    assert documents_of(org) == []


# --- signed links --------------------------------------------------------------------------------


def _forbidden(response: Any, code: str) -> None:
    assert response.status_code == 403
    body = response.get_json()
    assert (body["status"], body["error"], body["code"]) == (403, "Forbidden", code)
    assert body["message"]


@pytest.fixture
def link(api_client: Any, org: Any, clock: Any) -> str:
    invoice = bill(org, clock, "Acme")
    response = api_client.post(f"/api/v1/invoices/{invoice.lago_id}/download")
    return local(response.get_json()["invoice"]["file_url"])


def test_an_altered_link_is_refused(client, link, app):
    token = link.removeprefix("/documents/")
    swapped = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    other_salt = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(
        {"type": "invoice", "id": "00000000-0000-0000-0000-000000000000"}
    )
    unknown_kind = documents._serializer().dumps({"type": "receipt", "id": "x"})

    for bad in (swapped, token[:20], "nonsense", other_salt, unknown_kind):
        _forbidden(client.get(f"/documents/{bad}"), "download_link_invalid")
    assert client.get(link).status_code == 200


def test_an_expired_link_is_refused(client, org, clock, monkeypatch):
    invoice = bill(org, clock, "Acme")
    documents.generate_invoice_pdf(invoice)
    db.session.commit()
    real = TimestampSigner.get_timestamp

    def link_made(seconds_ago: int) -> str:
        with monkeypatch.context() as patch:
            patch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - seconds_ago)
            return local(file_url_of(invoice))

    week = documents.LINK_MAX_AGE_SECONDS
    assert week == 7 * 24 * 3600
    _forbidden(client.get(link_made(week + 60)), "download_link_expired")
    assert client.get(link_made(week - 3600)).status_code == 200  # six days and 23 hours old
    assert client.get(link_made(0)).status_code == 200


def file_url_of(invoice: Invoice) -> str:
    url = documents.file_url("invoice", invoice)
    assert url is not None
    return url


def test_a_link_to_a_document_that_does_not_exist_is_404(client, org, clock):
    token = documents.download_token("invoice", uuid.UUID(int=1))

    response = client.get(f"/documents/{token}")

    assert response.status_code == 404
    assert response.get_json()["code"] == "document_not_found"


def test_a_link_to_a_pdf_not_stored_yet_serves_it_rendered_now(client, org, clock):
    invoice = bill(org, clock, "Acme")
    token = documents.download_token("invoice", invoice.lago_id)
    assert documents_of(org) == []  # not stored yet (the job prints it within a minute)

    response = client.get(f"/documents/{token}")

    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert documents_of(org) == []  # a download stores nothing


def test_the_link_page_cannot_be_framed_and_is_not_cached_publicly(client, link):
    response = client.get(link)

    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["ETag"]


# --- the console ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "support", "viewer"])
def test_every_role_downloads_and_previews_the_pdf(make_agent_client, org, clock, role):
    invoice = bill(org, clock, "Acme")
    agent = make_agent_client(role)

    page = agent.get(f"/invoices/{invoice.lago_id}")
    preview = agent.get(f"/invoices/{invoice.lago_id}/pdf")
    download = agent.get(f"/invoices/{invoice.lago_id}/pdf?download=1")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'href="/invoices/{invoice.lago_id}/pdf?download=1"' in html and "Download PDF" in html
    assert f'<iframe class="invoice-pdf-frame" src="/invoices/{invoice.lago_id}/pdf"' in html
    assert "Not stored yet" in html
    assert preview.status_code == 200 and preview.mimetype == "application/pdf"
    assert preview.headers["Content-Disposition"] == f"inline; filename={invoice.number}.pdf"
    assert preview.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert download.headers["Content-Disposition"] == f"attachment; filename={invoice.number}.pdf"
    assert documents_of(org) == []  # a GET renders, the jobs process stores


def test_the_console_serves_the_stored_pdf_once_generated(agent_client, org, clock):
    invoice = bill(org, clock, "Acme")
    stored = documents.generate_invoice_pdf(invoice)
    db.session.commit()

    page = agent_client.get(f"/invoices/{invoice.lago_id}").get_data(as_text=True)
    pdf = agent_client.get(f"/invoices/{invoice.lago_id}/pdf")

    assert "Generated " in page and "Not stored yet" not in page
    assert pdf.data == stored.content


@needs_pdftotext
def test_a_draft_is_previewed_with_its_watermark_and_never_stored(agent_client, org, clock):
    draft = bill(org, clock, "Globex", grace=5)

    page = agent_client.get(f"/invoices/{draft.lago_id}").get_data(as_text=True)
    pdf = agent_client.get(f"/invoices/{draft.lago_id}/pdf")

    assert "PDF preview" in page and "DRAFT watermark" in page
    assert pdf.status_code == 200
    text = pdf_text(pdf.data)
    assert "DRAFT" in text and draft.number in text
    assert documents_of(org) == []


def test_another_organizations_invoice_pdf_is_404_in_the_console(agent_client, clock):
    other = factories.make_organization()
    invoice = bill(other, clock, "Acme")

    assert agent_client.get(f"/invoices/{invoice.lago_id}/pdf").status_code == 404


def test_signed_out_the_console_pdf_sends_to_login(client, org, clock):
    invoice = bill(org, clock, "Acme")

    response = client.get(f"/invoices/{invoice.lago_id}/pdf")

    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- two runners at once -------------------------------------------------------------------------


@pytest.mark.live
def test_two_jobs_at_once_store_each_pdf_once(live_server):
    """Two jobs processes on committed invoices: each PDF stored and announced exactly once."""
    app = live_server.app
    with app.app_context():
        organization = factories.make_organization()
        plan = factories.make_plan(organization, charges=[])
        for _ in range(4):
            factories.make_subscription(
                organization, plan=plan, subscription_at="2020-01-01T00:00:00Z"
            )
        invoicing.close_periods(
            datetime(2020, 4, 1, 0, 1, tzinfo=UTC), organization_id=organization.id
        )
        db.session.execute(  # nothing left due for the other tests sharing this database
            update(Subscription)
            .where(Subscription.organization_id == organization.id)
            .values(status="terminated", next_invoice_at=None)
        )
        db.session.commit()
        organization_id = organization.id
    barrier = threading.Barrier(2)
    stored: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                barrier.wait()
                count = 0
                while True:
                    batch = documents.store_missing(organization_id=organization_id, batch=2)
                    db.session.commit()
                    count += batch.stored
                    if not batch.claimed:
                        break
                stored.append(count)
            except BaseException as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    with app.app_context():
        invoices = db.session.scalar(
            select(func.count(Invoice.id)).where(Invoice.organization_id == organization_id)
        )
        owners = db.session.scalars(
            select(Document.owner_id).where(Document.organization_id == organization_id)
        ).all()
        events = db.session.scalar(
            select(func.count(OutboxEvent.id)).where(
                OutboxEvent.organization_id == organization_id,
                OutboxEvent.event_type == "invoice.generated",
            )
        )
    assert invoices == 12  # four subscriptions × January, February, March
    assert sum(stored) == len(owners) == len(set(owners)) == events == invoices


@needs_pdftotext
def test_each_applied_tax_prints_with_its_rate(org, clock):
    factories.make_tax(org, name="VAT FR", code="vat_fr", rate="20", applied_to_organization=True)
    invoice = bill(org, clock, "Hooli", units=0)  # a 10 € base fee

    text = pdf_text(documents.render_pdf("invoice", invoice))

    assert invoice.taxes_amount_cents == 200
    assert "VAT FR (20%) €2.00" in text
    assert "Subtotal incl. tax €12.00" in text
