"""Invoice and credit-note PDFs: a plain view model → Jinja (templates/pdf) → WeasyPrint.

The module knows nothing of the database: invoicing maps its rows onto an `InvoiceDocument` and
calls `render_invoice_pdf(doc)`, in a web request, a job or a script alike (no Flask context).
Every label is translated into the document's locale with the gettext catalogs in
`translations/`; dates and numbers go through Babel, money through `billing.money.format_money`.

WeasyPrint fetches nothing but `data:` URIs and files under `static/`: the logo travels inside the
HTML as a data URI, and any other URL (http, https, ftp, file elsewhere) is refused, so neither a
crafted logo nor a stray URL in a template can reach the network or the file system.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import weasyprint
from babel import Locale
from babel.dates import format_date, format_interval
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from weasyprint.text.fonts import FontConfiguration

from billing.errors import InvariantBroken
from billing.money import currency_exponent, format_money, to_minor_units

log = logging.getLogger(__name__)
# WeasyPrint logs each step of every render at INFO: a batch of invoices would flood the log
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates" / "pdf"
STATIC_DIR = ROOT / "static"
TRANSLATIONS_DIR = ROOT / "translations"

#: document locales (DESIGN.md, Locales); anything else falls back to English
LOCALES = ("en", "fr", "de", "es", "it", "nl", "nb", "sv", "pt-BR")
DEFAULT_LOCALE = "en"
DEFAULT_BRAND_COLOR = "#1f3a5f"
#: logo types WeasyPrint draws; anything else is left out rather than handed to a decoder
LOGO_CONTENT_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"}
)

DocumentKind = Literal["invoice", "credit_note"]


def _(message: str) -> str:
    """Mark a string for extraction; it is translated at render time in the document's locale."""
    return message


#: Lago's credit-note reasons, shown translated; any other text is shown as given
CREDIT_NOTE_REASONS = {
    "duplicated_charge": _("Duplicated charge"),
    "product_unsatisfactory": _("Product unsatisfactory"),
    "order_change": _("Order change"),
    "order_cancellation": _("Order cancellation"),
    "fraudulent_charge": _("Fraudulent charge"),
    "other": _("Other"),
}
PAYMENT_STATUSES = {
    "pending": _("Pending"),
    "succeeded": _("Paid"),
    "failed": _("Failed"),
}
STATUSES = {
    "draft": _("Draft"),
    "finalized": _("Finalized"),
    "voided": _("Voided"),
}


@dataclass(frozen=True)
class PdfParty:
    """The seller (organization) or the customer as printed on the document."""

    name: str
    legal_name: str | None = None
    #: street, city and postcode lines, in print order
    address_lines: tuple[str, ...] | list[str] = ()
    #: ISO 3166 alpha-2 code; printed as the country's name in the document's language
    country: str | None = None
    tax_id: str | None = None
    email: str | None = None
    logo: bytes | None = None
    #: MIME type of `logo` (image/png, image/jpeg, image/svg+xml …)
    logo_content_type: str | None = None


@dataclass(frozen=True)
class PdfLine:
    """One fee (or credited item): what, for which period or filter, how many, at what price."""

    description: str
    amount_cents: int
    #: a second, smaller line: a filter ("region: eu"), a tier ("51 – 100"), a note
    sub_description: str | None = None
    units: Decimal | None = None
    #: price per unit in major units, as precise as the plan says (0.0025)
    unit_amount: Decimal | None = None
    #: service period, both days included, printed in the document's locale under the description
    #: (left out when it is the document's billing period)
    period_start: date | None = None
    period_end: date | None = None


@dataclass(frozen=True)
class PdfTax:
    name: str
    #: percent, e.g. Decimal("20") for 20 %
    rate: Decimal
    amount_cents: int


@dataclass(frozen=True)
class PdfMetadata:
    key: str
    value: str


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything printed on an invoice or a credit note; amounts in the currency's minor units."""

    kind: DocumentKind
    number: str
    #: a date, or an aware datetime shown as the date in `timezone`
    issuing_date: date
    currency: str
    seller: PdfParty
    customer: PdfParty
    lines: list[PdfLine]
    total_cents: int
    due_date: date | None = None
    #: pending | succeeded | failed
    payment_status: str = "pending"
    payment_overdue: bool = False
    #: draft (DRAFT watermark) | finalized | voided (VOID watermark)
    status: str = "finalized"
    locale: str = DEFAULT_LOCALE
    timezone: str = "UTC"
    #: "#rrggbb" or "#rgb"; anything else gives the default
    brand_color: str | None = None
    #: billing period, both days included
    period_start: date | None = None
    period_end: date | None = None
    subtotal_excluding_taxes_cents: int = 0
    coupons_cents: int = 0
    taxes: list[PdfTax] = field(default_factory=list)
    taxes_cents: int = 0
    credit_notes_cents: int = 0
    prepaid_credit_cents: int = 0
    #: what credit notes took off the amount due (an invoice's; a credit note's own offset)
    offset_amount_cents: int = 0
    total_due_cents: int = 0
    #: only the metadata marked display_in_invoice
    metadata: list[PdfMetadata] = field(default_factory=list)
    #: net payment term in days; printed as a payment-terms sentence
    net_payment_term_days: int | None = None
    #: free text from the organization (bank details, legal mentions), printed at the bottom
    footer: str | None = None
    # credit notes
    credited_invoice_number: str | None = None
    #: a Lago reason code (translated) or free text
    reason: str | None = None
    description: str | None = None
    credit_amount_cents: int | None = None
    refund_amount_cents: int | None = None


# --- locale, translations ----------------------------------------------------------------------


def document_locale(value: str | None) -> str:
    """The supported document locale for `value` ("fr_FR" → fr, "pt" → pt-BR, "ja" → en)."""
    if not value:
        return DEFAULT_LOCALE
    text = value.strip().replace("_", "-")
    for code in LOCALES:
        if text.lower() == code.lower():
            return code
    language = text.split("-", 1)[0].lower()
    if language == "pt":
        return "pt-BR"
    if language in ("no", "nn"):
        return "nb"
    return language if language in LOCALES else DEFAULT_LOCALE


def babel_locale(locale: str) -> str:
    """Babel's identifier of a document locale (pt-BR → pt_BR)."""
    return document_locale(locale).replace("-", "_")


def translations(locale: str | None) -> NullTranslations:
    """The compiled catalog of a document locale (English: the message ids themselves)."""
    return _catalog(document_locale(locale))


@cache  # keyed by the nine supported locales only
def _catalog(locale: str) -> NullTranslations:
    code = babel_locale(locale)
    if code == DEFAULT_LOCALE:
        return NullTranslations()
    loaded = Translations.load(str(TRANSLATIONS_DIR), [code])
    if not isinstance(loaded, Translations):
        # a missing .mo file means `pybabel compile` did not run: say so instead of printing English
        log.warning("no compiled catalog for %r in %r; run `make install`", code, TRANSLATIONS_DIR)
    return loaded


@cache
def _environment(locale: str) -> Environment:
    """One Jinja environment per locale, its gettext installed (thread-safe, templates cached)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


# --- formatting ---------------------------------------------------------------------------------


def _local_date(value: date, timezone: str) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.date()
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return value.astimezone(zone).date()
    return value


def format_unit_amount(amount: Decimal, currency: str, locale: str) -> str:
    """A unit price in major units, keeping digits beyond the currency's precision (€0.0025)."""
    if amount == amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))):
        return format_money(to_minor_units(amount, currency), currency, locale)
    text = format_currency(amount, currency, locale=locale, decimal_quantization=False)
    return re.sub(r"^([A-Z]{3})(?=[-\d])", "\\1\u00a0", text)


def _brand_color(value: str | None) -> str:
    """A CSS hex colour; anything else (it is written into the stylesheet) gives the default."""
    if value and re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", value.strip()):
        color = value.strip().lower()
        if len(color) == 4:
            color = "#" + "".join(ch * 2 for ch in color[1:])
        return color
    return DEFAULT_BRAND_COLOR


def _tint(color: str, share: float) -> str:
    """`color` mixed with white, `share` of the colour kept (a light background of the brand)."""
    channels = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(255 - (255 - c) * share) for c in channels]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _css_string(text: str) -> str:
    """`text` as a quoted CSS string, safe inside a <style> element."""
    escaped = "".join(
        ch if ch.isalnum() or ch in " .,:;-–—/()%'" or ord(ch) > 127 else f"\\{ord(ch):x} "
        for ch in text
    )
    return f'"{escaped}"'


def _page_counter_css(template: str) -> Markup:
    """A translated "Page %(page)s of %(pages)s" as a CSS `content` value with page counters."""
    parts = re.split(r"(%\((?:page|pages)\)s)", template)
    out = []
    for part in parts:
        if part == "%(page)s":
            out.append("counter(page)")
        elif part == "%(pages)s":
            out.append("counter(pages)")
        elif part:
            out.append(_css_string(part))
    return Markup(" ".join(out))  # noqa: S704 - every piece is escaped above


def _logo_uri(party: PdfParty) -> str | None:
    if not party.logo or (party.logo_content_type or "").lower() not in LOGO_CONTENT_TYPES:
        return None
    encoded = base64.b64encode(party.logo).decode("ascii")
    return f"data:{party.logo_content_type};base64,{encoded}"


def _context(doc: InvoiceDocument) -> dict[str, Any]:
    locale = document_locale(doc.locale)
    code = babel_locale(locale)
    gettext = translations(locale).gettext
    currency = doc.currency.upper()
    brand = _brand_color(doc.brand_color)

    def money(cents: int) -> str:
        return format_money(cents, currency, code)

    def day(value: date | None) -> str:
        if value is None:
            return ""
        return format_date(_local_date(value, doc.timezone), format="long", locale=code)

    def period(start: date | None, end: date | None) -> str:
        if start is None or end is None:
            return ""
        return format_interval(start, end, skeleton="yMMMd", locale=code)

    def units(value: Decimal | None) -> str:
        return (
            "" if value is None else format_decimal(value, locale=code, decimal_quantization=False)
        )

    def unit_amount(value: Decimal | None) -> str:
        return "" if value is None else format_unit_amount(value, currency, code)

    def rate(value: Decimal) -> str:
        return format_percent(Decimal(value) / 100, locale=code, decimal_quantization=False)

    def country(value: str | None) -> str:
        if not value:
            return ""
        return Locale.parse(code).territories.get(value.upper(), value)

    reason = doc.reason
    if reason in CREDIT_NOTE_REASONS:
        reason = gettext(CREDIT_NOTE_REASONS[reason])
    fees_cents = doc.subtotal_excluding_taxes_cents + doc.coupons_cents
    return {
        "doc": doc,
        "locale": locale,
        "lang": locale,
        "brand": brand,
        "brand_tint": _tint(brand, 0.08),
        "brand_line": _tint(brand, 0.35),
        "seller_logo": _logo_uri(doc.seller),
        "page_counter": _page_counter_css(gettext("Page %(page)s of %(pages)s")),
        "css_string": lambda text: Markup(_css_string(str(text))),  # noqa: S704 - escaped
        "money": money,
        "day": day,
        "period": period,
        "units": units,
        "unit_amount": unit_amount,
        "rate": rate,
        "country": country,
        "payment_status": gettext(PAYMENT_STATUSES.get(doc.payment_status, doc.payment_status)),
        "status_label": gettext(STATUSES.get(doc.status, doc.status)),
        "reason": reason,
        "fees_cents": fees_cents,
        "subtotal_including_taxes_cents": doc.subtotal_excluding_taxes_cents + doc.taxes_cents,
        "issuing_date": day(doc.issuing_date),
        "due_date": day(doc.due_date),
        "billing_period": period(doc.period_start, doc.period_end),
    }


# --- rendering ------------------------------------------------------------------------------------


def render_invoice_html(doc: InvoiceDocument) -> str:
    """The document as self-contained HTML (its CSS inline, the logo as a data URI)."""
    env = _environment(document_locale(doc.locale))
    return env.get_template("invoice.html").render(_context(doc))


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice or credit note (by `doc.kind`) as PDF bytes, in the document's locale."""
    return html_to_pdf(render_invoice_html(doc))


def html_to_pdf(html: str) -> bytes:
    """WeasyPrint with our fetcher: `data:` URIs and files under static/ only."""
    font_config, image_cache = _render_state()
    document = weasyprint.HTML(
        string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=_FETCHER
    )
    pdf = document.write_pdf(font_config=font_config, cache=image_cache)
    if pdf is None:  # no target given: WeasyPrint returns the bytes
        raise InvariantBroken("expected pdf is not None")
    return pdf


_thread_state = threading.local()
#: decoded logos kept per thread; a render with a new logo beyond this many starts afresh
IMAGE_CACHE_SIZE = 32


def _render_state() -> tuple[FontConfiguration, dict[str, Any]]:
    """This thread's font configuration and image cache, reused from one render to the next.

    Building a FontConfiguration and decoding the logo again on every render costs about a sixth
    of a one-page invoice (bench/pdf_render.py). Neither is shared between threads: Pango's font
    map is not thread-safe.
    """
    state = _thread_state
    if not hasattr(state, "font_config"):
        state.font_config = FontConfiguration()
        state.image_cache = {}
    if len(state.image_cache) > IMAGE_CACHE_SIZE:
        state.image_cache.clear()
    return state.font_config, state.image_cache


class RefusedURL(ValueError):
    """A URL the PDF renderer will not fetch."""


def check_url(url: str) -> str:
    """`url` itself when the renderer may fetch it; raises RefusedURL for everything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "data":
        return url
    if scheme == "file" and parts.netloc in ("", "localhost"):
        path = Path(unquote(parts.path)).resolve()
        if path.is_relative_to(STATIC_DIR) and path.is_file():
            return url
    raise RefusedURL(f"the PDF renderer fetches no {url[:80]!r}")


try:  # WeasyPrint ≥ 68: fetchers are URLFetcher objects
    from weasyprint.urls import URLFetcher

    class _StaticOnlyFetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            return super().fetch(check_url(url), headers)

    _FETCHER: Any = _StaticOnlyFetcher(allow_redirects=False)
except ImportError:  # pragma: no cover - older WeasyPrint: a fetcher function
    from weasyprint import default_url_fetcher

    def _FETCHER(url: str, **kwargs: Any) -> Any:  # noqa: N802
        return default_url_fetcher(check_url(url), **kwargs)


def url_fetcher(url: str) -> Any:
    """The renderer's fetcher (what WeasyPrint calls for every URL in the document)."""
    return _FETCHER(url)
