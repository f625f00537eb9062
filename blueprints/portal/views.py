"""Portal pages: billing overview, invoice history (htmx), invoice PDFs, current usage,
self-service billing details; plus the organization's theme stylesheet and logo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal
from flask import Response, abort, current_app, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale, lazy_gettext
from flask_babel import gettext as _

from billing.errors import NotFound, ValidationFailed
from billing.models import Customer, Invoice
from billing.money import format_money
from billing.pdf import DEFAULT_BRAND_COLOR, LOCALES, _brand_color, _tint
from billing.periods import local_date
from billing.reference import country_codes
from billing.services import analytics
from billing.services import portal as portal_service
from billing.services import usage as usage_service
from billing.timeutil import now_utc
from blueprints.console.subscriptions import UsageChart, usage_charts
from blueprints.portal import bp, use_locale
from extensions import db

#: the language switcher and the document-language field show each language in itself
LANGUAGE_NAMES = {
    code: Locale.parse(code.replace("-", "_")).get_display_name(code.replace("-", "_")).title()
    for code in LOCALES
}
#: field error codes of the customer service → what the customer reads (translated when shown)
FIELD_ERRORS = {
    "value_is_too_long": lazy_gettext("This is too long."),
    "invalid_email_format": lazy_gettext(
        "Enter a valid e-mail address (several: separated by commas)."
    ),
    "not_a_valid_country_code": lazy_gettext("Choose a country from the list."),
    "not_a_valid_language_code": lazy_gettext("Choose a language from the list."),
}
#: the pages the language switcher keeps the visitor on
PAGES = ("portal.overview", "portal.invoices", "portal.usage", "portal.details")
#: any other field error code
INVALID_VALUE = lazy_gettext("This value is not valid.")
FILTER_LABELS = {
    "": lazy_gettext("All"),
    "paid": lazy_gettext("Paid"),
    "unpaid": lazy_gettext("Unpaid"),
    "overdue": lazy_gettext("Overdue"),
}


def _access() -> portal_service.PortalAccess:
    return g.portal  # type: ignore[no-any-return]


def _customer() -> Customer:
    return _access().customer


def babel_code() -> str:
    """The visit's language as Babel names it (pt_BR), for dates, numbers and country names."""
    return str(get_locale() or "en")


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@bp.context_processor
def _helpers() -> dict[str, Any]:
    code = babel_code()

    def money(cents: int, currency: str) -> str:
        return format_money(cents, currency, code)

    def day(value: date | None) -> str:
        return format_date(value, format="medium", locale=code) if value else ""

    def units(value: Any) -> str:
        return format_decimal(value, locale=code, decimal_quantization=False)

    def lang_url(lang: str) -> str:
        """This page in another language (other pages and errors: the overview)."""
        if request.endpoint in PAGES:
            args = {k: v for k, v in request.args.items() if k != "lang"}
            return url_for(request.endpoint, **args, lang=lang)
        return url_for("portal.overview", lang=lang)

    return {
        "money": money,
        "day": day,
        "units": units,
        "lang_url": lang_url,
        "languages": LANGUAGE_NAMES,
        "locale": g.get("portal_locale", "en"),
        "organization": g.get("portal_organization"),
    }


def payment_label(invoice: Invoice) -> tuple[str, str]:
    """(css modifier, translated label) of an invoice's payment state."""
    if invoice.payment_status == "succeeded":
        return "paid", _("Paid")
    if invoice.payment_overdue:
        return "overdue", _("Overdue")
    if invoice.payment_status == "failed":
        return "failed", _("Failed")
    return "pending", _("Unpaid")


# --- pages -------------------------------------------------------------------------------------


@bp.get("/")
def overview() -> ResponseReturnValue:
    customer = _customer()
    latest = portal_service.invoice_history(customer, portal_service.InvoiceQuery())
    return render_template(
        "portal/overview.html",
        active="overview",
        # the figures of the console's customer header
        balances=analytics.customer_balances(customer),
        latest=latest.items[:5],
        payment_label=payment_label,
        subscriptions=portal_service.active_subscriptions(customer),
        prepaid=portal_service.prepaid_credits(customer),
        credit_notes=portal_service.customer_credit_notes(customer),
        overdue=portal_service.overdue_invoices(customer),
    )


@bp.get("/invoices")
def invoices() -> ResponseReturnValue:
    customer = _customer()
    status = request.args.get("status", "")
    if status not in portal_service.INVOICE_FILTERS:
        status = ""
    try:
        page = max(1, min(int(request.args.get("page") or 1), 10_000))
    except ValueError:
        page = 1
    query = portal_service.InvoiceQuery(
        status=status, search=request.args.get("q", "")[:64], page=page
    )
    context = {
        "active": "invoices",
        "query": query,
        "result": portal_service.invoice_history(customer, query),
        "filters": FILTER_LABELS,
        "payment_label": payment_label,
    }
    if is_htmx() and not request.headers.get("HX-Boosted"):
        return render_template("portal/_invoice_table.html", **context)
    return render_template("portal/invoices.html", **context)


@bp.get("/invoices/<invoice_id>.pdf")
def invoice_pdf(invoice_id: str) -> ResponseReturnValue:
    try:
        invoice = portal_service.downloadable_invoice(_customer(), invoice_id)
    except NotFound:
        abort(404)
    return _pdf(portal_service.portal_invoice_pdf(invoice), invoice.number)


def _pdf(content: bytes, number: str) -> Response:
    filename = f"{number}.pdf".replace('"', "")
    return Response(
        content,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/credit_notes/<credit_note_id>.pdf")
def credit_note_pdf(credit_note_id: str) -> ResponseReturnValue:
    try:
        credit_note = portal_service.downloadable_credit_note(_customer(), credit_note_id)
    except NotFound:
        abort(404)
    return _pdf(portal_service.portal_credit_note_pdf(credit_note), credit_note.number)


@dataclass
class UsageView:
    usage: usage_service.UsageSummary
    period: tuple[date, date]
    charts: list[UsageChart]


@bp.get("/usage")
def usage() -> ResponseReturnValue:
    customer = _customer()
    at = now_utc()
    timezone = customer.applicable_timezone
    today = local_date(at, timezone)
    views = []
    for subscription in portal_service.active_subscriptions(customer):
        summary = usage_service.current_usage(subscription, at)
        views.append(
            UsageView(
                usage=summary,
                period=(
                    local_date(summary.period.start, timezone),
                    local_date(summary.period.inclusive_end, timezone),
                ),
                charts=usage_charts(summary, today, babel_code()),
            )
        )
    return render_template("portal/usage.html", active="usage", views=views)


# --- billing details ---------------------------------------------------------------------------


def _details_of(customer: Customer) -> dict[str, str]:
    return {key: str(getattr(customer, key) or "") for key in portal_service.EDITABLE_FIELDS}


def _countries() -> list[tuple[str, str]]:
    names = Locale.parse(babel_code()).territories
    return sorted(((c, names.get(c, c)) for c in country_codes()), key=lambda item: item[1])


@bp.route("/details", methods=["GET", "POST"])
def details() -> ResponseReturnValue:
    access = _access()
    secret = current_app.secret_key
    max_age = current_app.config["PORTAL_TOKEN_MAX_AGE"]
    values = _details_of(access.customer)
    errors: dict[str, list[str]] = {}
    saved = False
    status = 200
    if request.method == "POST":
        if not portal_service.check_form_nonce(
            secret,  # type: ignore[arg-type]
            access,
            request.form.get("nonce", ""),
            max_age,
        ):
            return render_template("portal/error.html", code=400), 400
        values = {key: request.form.get(key, "")[:1100] for key in portal_service.EDITABLE_FIELDS}
        try:
            portal_service.update_billing_details(access, values)
        except ValidationFailed as exc:
            db.session.rollback()
            errors = _field_errors(exc.details)
            status = 422
        else:
            db.session.commit()
            saved = True
            values = _details_of(access.customer)
            if not g.get("portal_lang_param"):  # a new invoice language is the portal's too
                use_locale(portal_service.portal_locale(access.customer), access.organization)
    return render_template(
        "portal/details.html",
        active="details",
        values=values,
        errors=errors,
        saved=saved,
        nonce=portal_service.form_nonce(secret, access),  # type: ignore[arg-type]
        countries=_countries(),
    ), status


def _field_errors(details: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for key, codes in details.items():
        field = key if key in portal_service.EDITABLE_FIELDS else "name"
        for code in codes if isinstance(codes, list) else [codes]:
            message = str(FIELD_ERRORS.get(code, INVALID_VALUE))
            errors.setdefault(field, []).append(message)
    return errors


# --- look ----------------------------------------------------------------------------------------


@bp.get("/theme.css")
def theme() -> ResponseReturnValue:
    """The organization's brand colour as CSS variables (no inline style under the CSP)."""
    color = _brand_color(_access().organization.brand_color or DEFAULT_BRAND_COLOR)
    css = f":root {{ --brand: {color}; --brand-tint: {_tint(color, 0.08)}; }}\n"
    return Response(css, mimetype="text/css")


@bp.get("/logo")
def logo() -> ResponseReturnValue:
    organization = _access().organization
    if not organization.logo or not organization.logo_content_type:
        abort(404)
    return Response(organization.logo, mimetype=organization.logo_content_type)


@bp.route("/<path:_rest>", methods=["GET", "POST"])
def unknown(_rest: str) -> ResponseReturnValue:
    """Any other path under a link: the portal's own 404 (after the link is checked)."""
    abort(404)
