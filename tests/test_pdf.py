"""Invoice and credit-note PDFs: what a customer reads in the PDF, in their language and currency.

The text is extracted with poppler's `pdftotext`, as a customer's PDF reader would show it.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from billing import pdf
from billing.money import format_money
from billing.pdf import (
    InvoiceDocument,
    PdfLine,
    PdfMetadata,
    PdfParty,
    PdfTax,
    RefusedURL,
    render_invoice_html,
    render_invoice_pdf,
)

ROOT = Path(__file__).resolve().parent.parent
PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.skipif(PDFTOTEXT is None, reason="poppler-utils is not installed")

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2b8e5e70000000049454e44ae426082"
)


def pdf_text(data: bytes) -> str:
    """The PDF's text in reading order; pages separated by form feeds; every space a plain one."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        out = subprocess.run(
            [PDFTOTEXT, "-raw", "-enc", "UTF-8", handle.name, "-"],
            check=True,
            capture_output=True,
        ).stdout.decode()
    return normalize(out)


def normalize(text: str) -> str:
    # poppler extracts a narrow no-break space (French digit groups) as nothing at all
    return re.sub(r"[ \u00a0\u2009]+", " ", text.replace("\u202f", ""))


def make_document(**overrides: object) -> InvoiceDocument:
    lines = [
        PdfLine(
            "Scale plan",
            49_000,
            units=Decimal(1),
            unit_amount=Decimal("490"),
            period_start=date(2026, 11, 1),
            period_end=date(2026, 11, 30),
        ),
        PdfLine(
            "API calls",
            22_500,
            sub_description="Tier 2: 100,001 – 1,000,000",
            units=Decimal(900000),
            unit_amount=Decimal("0.00025"),
        ),
        PdfLine("Storage", 11_235, sub_description="region: eu-west-1", units=Decimal("749")),
    ]
    doc = InvoiceDocument(
        kind="invoice",
        number="ACM-7K2Q-001-042",
        issuing_date=date(2026, 12, 1),
        due_date=date(2026, 12, 31),
        currency="EUR",
        locale="en",
        timezone="Europe/Paris",
        seller=PdfParty(
            "Demo Org",
            legal_name="Demo Org SAS",
            address_lines=["12 rue de la Paix", "75002 Paris"],
            country="FR",
            tax_id="FR40123456824",
            logo=PNG_1PX,
            logo_content_type="image/png",
        ),
        customer=PdfParty(
            "Acme Rocket Works",
            address_lines=["1 Harbour Road", "Bristol BS1 6XN"],
            country="GB",
            email="ap@acme.example",
        ),
        brand_color="#0b6e4f",
        lines=lines,
        subtotal_excluding_taxes_cents=72_735,
        coupons_cents=10_000,
        taxes=[PdfTax("VAT", Decimal("20"), 14_547)],
        taxes_cents=14_547,
        prepaid_credit_cents=2_000,
        total_cents=85_282,
        total_due_cents=85_282,
        metadata=[PdfMetadata("Purchase order", "PO-77")],
        net_payment_term_days=30,
    )
    return replace(doc, **overrides)  # type: ignore[arg-type]


# --- the customer's language and currency --------------------------------------------------------

CASES = [
    # locale, currency, total in minor units, a label in that language, the issue date as written
    ("en", "EUR", 85_282, "Invoice", "December 1, 2026"),
    ("fr", "EUR", 85_282, "Facture", "1 décembre 2026"),
    ("de", "EUR", 85_282, "Rechnung", "1. Dezember 2026"),
    ("pt-BR", "EUR", 85_282, "Fatura", "1 de dezembro de 2026"),
    ("nb", "EUR", 85_282, "Faktura", "1. desember 2026"),
    ("en", "JPY", 1_234_567, "Invoice", "December 1, 2026"),
    ("fr", "JPY", 1_234_567, "Facture", "1 décembre 2026"),
    ("de", "KWD", 1_234_567, "Rechnung", "1. Dezember 2026"),
    ("nb", "KWD", 1_234_567, "Faktura", "1. desember 2026"),
]


@needs_pdftotext
@pytest.mark.parametrize(("locale", "currency", "total", "label", "issued"), CASES)
def test_pdf_shows_number_customer_and_total_in_the_customers_language(
    locale: str, currency: str, total: int, label: str, issued: str
) -> None:
    doc = make_document(locale=locale, currency=currency, total_cents=total, total_due_cents=total)

    text = pdf_text(render_invoice_pdf(doc))

    assert "ACM-7K2Q-001-042" in text
    assert "Acme Rocket Works" in text
    assert normalize(format_money(total, currency, locale.replace("-", "_"))) in text
    assert label in text
    assert issued in text


@needs_pdftotext
def test_labels_amounts_and_unit_prices_follow_the_locale() -> None:
    text = pdf_text(render_invoice_pdf(make_document(locale="fr")))

    for label in ("Date d'échéance", "PRIX UNITAIRE", "Total HT", "Net à payer", "Royaume-Uni"):
        assert label in text
    assert "0,00025 €" in text  # a unit price keeps the plan's precision
    assert "TVA" not in text and "VAT (20 %)" in text  # tax names are data; the rate is localized
    assert "Payable sous 30 jours" in text
    assert "Page 1 sur 1" in text
    assert "Invoice" not in text and "Due date" not in text


@needs_pdftotext
@pytest.mark.parametrize(("locale", "watermark"), [("en", "DRAFT"), ("fr", "BROUILLON")])
def test_a_draft_carries_a_watermark(locale: str, watermark: str) -> None:
    draft = pdf_text(render_invoice_pdf(make_document(locale=locale, status="draft")))
    final = pdf_text(render_invoice_pdf(make_document(locale=locale)))

    assert watermark in draft
    assert watermark not in final


@needs_pdftotext
def test_a_voided_invoice_says_so_on_every_page() -> None:
    text = pdf_text(render_invoice_pdf(make_document(locale="de", status="voided")))
    assert "STORNIERT" in text


@needs_pdftotext
def test_a_paid_invoice_shows_paid_instead_of_an_amount_due() -> None:
    doc = make_document(payment_status="succeeded", total_due_cents=0)
    text = pdf_text(render_invoice_pdf(doc))
    assert "Paid" in text and "€852.82" in text
    assert "Amount due" not in text


@needs_pdftotext
def test_a_credit_note_names_the_credited_invoice_and_reason() -> None:
    note = make_document(
        kind="credit_note",
        number="ACM-7K2Q-001-042-CN001",
        locale="fr",
        credited_invoice_number="ACM-7K2Q-001-042",
        reason="duplicated_charge",
        total_cents=27_000,
        credit_amount_cents=20_000,
        refund_amount_cents=7_000,
    )

    text = pdf_text(render_invoice_pdf(note))

    assert "Avoir" in text and "Facture" not in text.replace("Facture d'origine", "")
    assert "ACM-7K2Q-001-042-CN001" in text
    assert "Facture d'origine" in text
    assert "Facturation en double" in text
    assert normalize(format_money(27_000, "EUR", "fr")) in text
    assert "Net à payer" not in text


@needs_pdftotext
def test_a_long_invoice_spans_pages_numbered_page_x_of_y() -> None:
    lines = [
        PdfLine(f"Seat {n:02d}", 2_500, sub_description="team: research", units=Decimal(1))
        for n in range(1, 41)
    ]
    doc = make_document(lines=lines, total_cents=100_000, total_due_cents=100_000)

    pages = pdf_text(render_invoice_pdf(doc)).split("\f")[:-1]

    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert "DESCRIPTION" in page  # the table header repeats on each page
    assert "Seat 01" in pages[0] and "Seat 40" in pages[-1]


# --- no network, no file system ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/x.png",
        "https://example.com/x.png",
        "ftp://example.com/x.png",
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        (ROOT / "static" / ".." / "pyproject.toml").as_uri(),
        (ROOT / "static" / "css" / "..%2F..%2Fpyproject.toml").as_uri(),
        "file://example.com/static/css/ledgerline.css",
        "//example.com/x.png",
    ],
)
def test_the_fetcher_refuses_anything_but_data_and_static_files(url: str) -> None:
    with pytest.raises(RefusedURL):
        pdf.url_fetcher(url)


def test_the_fetcher_serves_data_uris_and_static_files() -> None:
    css = (ROOT / "static" / "css" / "ledgerline.css").as_uri()
    assert pdf.url_fetcher(css).read()
    assert pdf.url_fetcher("data:text/plain;base64,aGk=").read() == b"hi"


@needs_pdftotext
def test_rendering_hostile_html_leaks_no_file_and_opens_no_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[object] = []

    def no_network(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access during a PDF render")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    html = """<html><head>
      <link rel="stylesheet" href="file:///etc/passwd">
      <link rel="stylesheet" href="http://example.com/x.css">
      <style>@import url("file:///etc/passwd");
             body { background: url(http://example.com/x.png) }</style>
      </head><body><p>marker-text</p>
      <img src="http://example.com/x.png"><img src="file:///etc/passwd">
      <object data="file:///etc/passwd"></object><embed src="file:///etc/passwd">
      <iframe src="file:///etc/passwd"></iframe>
      <img src="../../../../../../etc/passwd">
      </body></html>"""

    text = pdf_text(pdf.html_to_pdf(html))

    assert "marker-text" in text
    assert "root:" not in text
    assert attempts == []


@needs_pdftotext
def test_hostile_document_fields_are_printed_as_text() -> None:
    hostile = "<img src=/etc/passwd>"
    doc = make_document(
        customer=PdfParty(name=hostile),
        brand_color="red; } body { background: url(http://example.com/x.png) } x {",
        seller=PdfParty("Demo Org", logo=b"<html>", logo_content_type="text/html"),
        metadata=[PdfMetadata("note", "</style><script>alert(1)</script>")],
    )

    html = render_invoice_html(doc)
    text = pdf_text(render_invoice_pdf(doc))

    assert "example.com/x.png" not in html  # the brand colour is a hex colour or the default
    assert "data:text/html" not in html  # only image logos are embedded
    assert "<script>" not in html and "<img src=/etc" not in html
    assert "<img src=/etc/passwd>" in text  # the name, shown literally
    assert "root:" not in text


def test_a_logo_is_embedded_as_a_data_uri() -> None:
    html = render_invoice_html(make_document())
    assert 'src="data:image/png;base64,' in html


# --- locales and dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("fr", "fr"),
        ("fr_FR", "fr"),
        ("pt-BR", "pt-BR"),
        ("pt_BR", "pt-BR"),
        ("pt", "pt-BR"),
        ("no", "nb"),
        ("sv-SE", "sv"),
        ("ja", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_document_locale_falls_back_to_a_supported_one(given: str | None, used: str) -> None:
    assert pdf.document_locale(given) == used


def test_an_issuing_datetime_is_shown_as_the_date_in_the_customers_timezone() -> None:
    late_utc = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 2 December in Tokyo
    html = render_invoice_html(make_document(issuing_date=late_utc, timezone="Asia/Tokyo"))
    assert "December 2, 2026" in html


@pytest.mark.parametrize("locale", pdf.LOCALES)
def test_every_locale_renders_its_own_title(locale: str) -> None:
    html = render_invoice_html(make_document(locale=locale))
    title = pdf.translations(locale).gettext("Invoice")
    assert f"<h1>{title}</h1>" in html
    assert locale == "en" or title != "Invoice"  # the compiled catalog was loaded


# --- catalogs ------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _catalog(path: Path, locale: str | None = None):  # noqa: ANN202 - babel's Catalog
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def test_every_message_is_translated_in_every_catalog() -> None:
    template = _catalog(ROOT / "messages.pot")
    ids = {message.id for message in template if message.id}
    assert ids, "messages.pot is empty"
    problems = []
    for locale in pdf.LOCALES:
        if locale == "en":
            continue
        directory = locale.replace("-", "_")
        catalog = _catalog(
            ROOT / "translations" / directory / "LC_MESSAGES" / "messages.po", directory
        )
        for message_id in ids:
            message = catalog.get(message_id)
            if message is None:
                problems.append(f"{locale}: missing {message_id!r}")
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.fuzzy:
                problems.append(f"{locale}: fuzzy {message_id!r}")
            if not all(strings):
                problems.append(f"{locale}: untranslated {message_id!r}")
            wanted = set(
                PLACEHOLDER.findall(
                    " ".join(message_id if isinstance(message_id, tuple) else (message_id,))
                )
            )
            for string in strings:
                if set(PLACEHOLDER.findall(string)) != wanted:
                    problems.append(f"{locale}: placeholders differ in {string!r}")
    assert problems == []


def test_the_message_template_is_up_to_date_with_the_sources(tmp_path: Path) -> None:
    pybabel = Path(sys.executable).parent / "pybabel"
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [str(pybabel), "-q", "extract", "-F", "babel.cfg", "-o", str(fresh), "."],
        cwd=ROOT,
        check=True,
    )
    extracted = {message.id for message in _catalog(fresh) if message.id}
    committed = {message.id for message in _catalog(ROOT / "messages.pot") if message.id}
    assert extracted - committed == set(), "run `make translations` and translate the new strings"
