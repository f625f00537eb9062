"""Invoices in the console: the organization's list, a customer's tab, and the invoice page with
its actions (refresh and finalize a draft, mark a finalized one paid or failed, void it) and
its PDF (preview and download).

Filters live in the URL (shareable, hx-push-url). Dates of an invoice are local dates of its
customer's timezone (the service computes them there). The services decide what is allowed;
their refusals are shown as messages, never as errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from babel.numbers import format_currency
from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField
from wtforms.validators import DataRequired

from billing.errors import NotAllowed, NotFound, ValidationFailed
from billing.models import Customer, DocumentType, Fee, Invoice, InvoiceStatus, PaymentStatus
from billing.periods import local_date
from billing.services import documents
from billing.services import invoicing as invoicing_service
from billing.services.invoicing import InvoiceFilters
from billing.services.pagination import Page
from blueprints.console import bp
from blueprints.console.helpers import (
    act,
    agent_actor,
    current_organization,
    date_arg,
    int_arg,
    is_htmx,
    owned_or_404,
    render_htmx,
    requires,
)
from blueprints.documents.views import pdf_response
from extensions import db

PER_PAGE = 50
#: invoices on the customer overview's "Latest invoices" panel
LATEST_LIMIT = 5
#: the precision of a unit price on the invoice page
UNIT_PRICE_STEP = Decimal("0.000001")

STATUS_LABELS = {
    InvoiceStatus.DRAFT: "Draft",
    InvoiceStatus.FINALIZED: "Finalized",
    InvoiceStatus.VOIDED: "Voided",
    InvoiceStatus.CLOSED: "Closed (zero amount)",
}
PAYMENT_LABELS = {
    PaymentStatus.PENDING: "Pending",
    PaymentStatus.SUCCEEDED: "Paid",
    PaymentStatus.FAILED: "Failed",
}
OVERDUE_CHOICES = {"yes": "Overdue only", "no": "Not overdue"}
REASON_LABELS = {
    "subscription_starting": "Start of subscription (in advance)",
    "subscription_periodic": "Billing period",
    "subscription_terminating": "Termination",
}
#: what the payment-status action may set, with its flash wording
PAYMENT_ACTIONS = {
    PaymentStatus.SUCCEEDED: "marked as paid",
    PaymentStatus.FAILED: "marked as failed",
}
#: service refusal codes, as an agent reads them
REFUSALS = {
    "invoice_not_draft": "This invoice is no longer a draft: it has been finalized meanwhile.",
    "not_voidable": "Only a finalized invoice whose payment is pending or failed can be voided.",
    "payment_status_update_on_draft_invoice": (
        "A draft has no payment status yet: finalize it first."
    ),
    "invoice": "This invoice no longer exists.",
    "value_is_invalid": "Choose paid or failed.",
    "invoice_paid_by_payments": (
        "Its recorded payments pay this invoice in full: its status follows them."
    ),
}


@bp.context_processor
def invoice_helpers() -> dict[str, Any]:
    return {
        "invoice_status_labels": STATUS_LABELS,
        "payment_labels": PAYMENT_LABELS,
        "unit_price": unit_price,
        "local_period": local_period,
    }


def unit_price(amount: Decimal, currency: str) -> str:
    """A price per unit in major units, keeping up to six decimals beyond cents (€0.0015); an
    average of tiers (amount / units) is rounded there rather than shown to 28 digits."""
    rounded = amount.quantize(UNIT_PRICE_STEP, rounding=ROUND_HALF_UP).normalize()
    return format_currency(rounded, currency, locale="en", decimal_quantization=False)


def local_period(start: datetime | None, end: datetime | None, timezone: str) -> str:
    """A [start, end) period as its first and last local days ("2026-05-01 → 2026-05-31")."""
    if start is None or end is None:
        return "—"
    last = local_date(end - timedelta(microseconds=1), timezone)
    return f"{local_date(start, timezone).isoformat()} → {last.isoformat()}"


# --- filters ---------------------------------------------------------------------------------


@dataclass
class InvoiceQuery:
    """The list's filters and page, read from and written back to the URL; `endpoint` and
    `values` name the page they belong to (the organization's list or a customer's tab)."""

    endpoint: str
    values: dict[str, Any] = field(default_factory=dict)
    q: str = ""
    status: str = ""
    payment_status: str = ""
    overdue: str = ""
    issued_from: date | None = None
    issued_to: date | None = None
    page: int = 1

    @classmethod
    def from_args(cls, endpoint: str, args: MultiDict[str, str], **values: Any) -> InvoiceQuery:
        status = args.get("status", "")
        payment_status = args.get("payment_status", "")
        overdue = args.get("overdue", "")
        return cls(
            endpoint,
            values,
            q=args.get("q", "").strip()[:200],
            status=status if status in STATUS_LABELS else "",
            payment_status=payment_status if payment_status in PAYMENT_LABELS else "",
            overdue=overdue if overdue in OVERDUE_CHOICES else "",
            issued_from=date_arg(args.get("issued_from")),
            issued_to=date_arg(args.get("issued_to")),
            page=max(1, int_arg(args.get("page"), 1)),
        )

    def args(self, **changes: Any) -> list[tuple[str, str]]:
        current = {
            "q": self.q,
            "status": self.status,
            "payment_status": self.payment_status,
            "overdue": self.overdue,
            "issued_from": self.issued_from.isoformat() if self.issued_from else "",
            "issued_to": self.issued_to.isoformat() if self.issued_to else "",
            "page": "" if self.page == 1 else str(self.page),
        }
        current.update({key: str(value) for key, value in changes.items()})
        if current["page"] == "1":
            current["page"] = ""
        return [(key, value) for key, value in current.items() if value]

    def url(self, **changes: Any) -> str:
        pairs = self.args(**changes)
        base = url_for(self.endpoint, **self.values)
        return base + ("?" + urlencode(pairs) if pairs else "")

    @property
    def is_filtered(self) -> bool:
        return any(
            (self.q, self.status, self.payment_status, self.overdue, self.issued_from,
             self.issued_to)
        )  # fmt: skip

    def filters(self, customer: Customer | None = None) -> InvoiceFilters:
        return InvoiceFilters(
            customer_id=customer.id if customer else None,
            statuses=[self.status] if self.status else [],
            payment_statuses=[self.payment_status] if self.payment_status else [],
            payment_overdue={"yes": True, "no": False}.get(self.overdue),
            issuing_date_from=self.issued_from,
            issuing_date_to=self.issued_to,
            search_term=self.q or None,
        )


def _page(query: InvoiceQuery, customer: Customer | None = None) -> Page[Invoice]:
    return invoicing_service.list_invoices(
        current_organization(), query.filters(customer), page=query.page, per_page=PER_PAGE
    )


def _filter_context() -> dict[str, Any]:
    return {"overdue_choices": OVERDUE_CHOICES}


# --- lists -----------------------------------------------------------------------------------


@bp.get("/invoices")
def invoices() -> ResponseReturnValue:
    """The organization's invoices, newest first; htmx requests (filters, search, paging) get
    the table only."""
    query = InvoiceQuery.from_args("console.invoices", request.args)
    return render_htmx(
        "console/invoices.html",
        "console/_invoice_table.html",
        query=query,
        page=_page(query),
        table_target="#invoice-table",
        org_timezone=current_organization().timezone,
        **_filter_context(),
    )


def customer_tab_context(customer: Customer) -> dict[str, Any]:
    """What the customer's Invoices tab shows: the same filters, scoped to the customer."""
    from blueprints.console import credit_notes  # noqa: PLC0415  (it imports this module)

    query = InvoiceQuery.from_args(
        "console.customer", request.args, lago_id=customer.lago_id, tab="invoices"
    )
    return {
        "customer_credit_notes": credit_notes.customer_credit_notes(customer),
        "query": query,
        "page": _page(query, customer),
        "table_target": "#customer-tab",
        **_filter_context(),
    }


def latest_invoices(customer: Customer) -> list[Invoice]:
    """The customer's newest invoices, for the overview."""
    return invoicing_service.list_invoices(
        current_organization(),
        InvoiceFilters(customer_id=customer.id),
        per_page=LATEST_LIMIT,
    ).items


# --- the invoice page ------------------------------------------------------------------------


def invoice_or_404(lago_id: uuid.UUID) -> Invoice:
    """The current organization's invoice (another organization's is a 404)."""
    return owned_or_404(Invoice, lago_id)


class ConfirmVoidForm(FlaskForm):
    confirm = BooleanField("I understand that this cannot be undone", validators=[DataRequired()])


@dataclass
class FeeLine:
    fee: Fee
    #: the charge filter's values ("region: eu · cloud: aws, gcp"), None without a filter
    filter_label: str | None


def _fee_lines(invoice: Invoice) -> list[FeeLine]:
    lines = []
    for fee in invoice.fees:
        charge_filter = fee.charge_filter
        label = None
        if charge_filter is not None:
            label = " · ".join(
                f"{key}: {', '.join(values)}"
                for key, values in (charge_filter.values or {}).items()
            )
        lines.append(FeeLine(fee, label))
    return lines


def _invoice_context(invoice: Invoice) -> dict[str, Any]:
    from blueprints.console import credit_notes, payments  # noqa: PLC0415  (they import it)

    customer = invoice.customer
    return {
        "invoice": invoice,
        "customer": customer,
        "fee_lines": _fee_lines(invoice),
        "timezone": customer.applicable_timezone,
        "org_timezone": current_organization().timezone,
        "reason_labels": REASON_LABELS,
        "can_act": bool(current_user.can("write")),
        "voidable": invoice.status == InvoiceStatus.FINALIZED
        and invoice.payment_status != PaymentStatus.SUCCEEDED,
        "stored_pdf": documents.stored_document(DocumentType.INVOICE, invoice.id),
        **credit_notes.invoice_context(invoice),
        **payments.invoice_context(invoice),
    }


@bp.get("/invoices/<uuid:lago_id>")
def invoice(lago_id: uuid.UUID) -> ResponseReturnValue:
    """An invoice: header, billing periods, fee lines, totals, metadata, and its actions."""
    invoice = invoice_or_404(lago_id)
    return render_htmx(
        "console/invoice.html", "console/_invoice_detail.html", **_invoice_context(invoice)
    )


@bp.get("/invoices/<uuid:lago_id>/pdf")
def invoice_pdf(lago_id: uuid.UUID) -> ResponseReturnValue:
    """The invoice's PDF, for every role: the stored one; while the jobs process has not
    stored it yet, and for a draft (a preview with its DRAFT watermark), rendered now and
    stored nowhere. `?download=1` saves it instead of showing it."""
    invoice = invoice_or_404(lago_id)
    content = documents.stored_pdf(DocumentType.INVOICE, invoice.id) or documents.render_pdf(
        DocumentType.INVOICE, invoice
    )
    return pdf_response(
        content,
        documents.download_filename(invoice.number),
        attachment=request.args.get("download") == "1",
        frameable=True,
    )


def _done(invoice: Invoice, category: str, message: str) -> ResponseReturnValue:
    """After an action: htmx swaps the invoice's detail with the message in it; without
    JavaScript, back to the invoice page (Post/Redirect/Get) with the message flashed."""
    if is_htmx():
        db.session.expire_all()
        return render_template(
            "console/_invoice_detail.html",
            notice=(category, message),
            **_invoice_context(invoice_or_404(invoice.lago_id)),
        )
    flash(message, category)
    return redirect(url_for("console.invoice", lago_id=invoice.lago_id))


def _refused(exc: NotAllowed | ValidationFailed | NotFound) -> str:
    if isinstance(exc, ValidationFailed):
        codes = [code for field_codes in exc.details.values() for code in field_codes]
    else:
        codes = [exc.code]
    return " ".join(REFUSALS.get(code, f"Refused: {code.replace('_', ' ')}.") for code in codes)


def _act(invoice: Invoice, change: Callable[[], object], success: Callable[[], str]) -> Any:
    """Call the service and commit, then show `success()`; a refusal is rolled back and
    shown instead (nothing changed)."""
    return act(change, success, lambda category, text: _done(invoice, category, text), _refused)


@bp.post("/invoices/<uuid:lago_id>/refresh")
@requires("write")
def refresh_invoice(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Recompute a draft from its periods' current usage (late events count)."""
    invoice = invoice_or_404(lago_id)
    if invoice.status != InvoiceStatus.DRAFT:
        return _done(invoice, "error", "Only a draft can be refreshed: this one is final.")
    return _act(
        invoice,
        lambda: invoicing_service.refresh_invoice(invoice, agent_actor()),
        lambda: "Draft refreshed from the current usage.",
    )


@bp.post("/invoices/<uuid:lago_id>/finalize")
@requires("write")
def finalize_invoice(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Finalize a draft: it gets its number, issuing and due dates, and no longer changes."""
    invoice = invoice_or_404(lago_id)
    return _act(
        invoice,
        lambda: invoicing_service.finalize_invoice(invoice, agent_actor()),
        lambda: f"Invoice finalized as {invoice.number}.",
    )


@bp.post("/invoices/<uuid:lago_id>/payment-status")
@requires("write")
def update_payment_status(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Mark a finalized invoice paid or failed (a payment recorded outside Ledgerline)."""
    invoice = invoice_or_404(lago_id)
    status = request.form.get("payment_status", "")
    if status not in PAYMENT_ACTIONS:
        return _done(invoice, "error", REFUSALS["value_is_invalid"])
    return _act(
        invoice,
        lambda: invoicing_service.update_invoice(
            invoice, {"payment_status": status}, agent_actor()
        ),
        lambda: f"Invoice {invoice.number} {PAYMENT_ACTIONS[status]}.",
    )


@bp.route("/invoices/<uuid:lago_id>/void", methods=["GET", "POST"])
@requires("write")
def void_invoice(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Confirm, then void a finalized, unpaid invoice; htmx's hx-confirm posts `confirm=y`
    directly, without JavaScript the confirmation page asks."""
    invoice = invoice_or_404(lago_id)
    form = ConfirmVoidForm()
    if request.method == "POST" and form.validate():
        return _act(
            invoice,
            lambda: invoicing_service.void_invoice(invoice, agent_actor()),
            lambda: f"Invoice {invoice.number} voided.",
        )
    status = 422 if request.method == "POST" else 200
    return render_template(
        "console/invoice_confirm.html", form=form, **_invoice_context(invoice)
    ), status
