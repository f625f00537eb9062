"""Credit notes in the console: create one from an invoice page (an amount per fee, split
between a credit for later invoices, a refund and an offset against what is still due on the
invoice, with a live estimate), the credit note page
(amounts, items, void, refund status, PDF), the organization's list and a customer's.

Amounts are typed in major units ("12.50") and turned into minor units once, with the
currency's precision; the services decide what is allowed and their refusals show next to
the fields they concern.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from billing.errors import InvariantBroken, NotAllowed, NotFound, ValidationFailed
from billing.models import CreditNote, Customer, Fee, Invoice, InvoiceStatus, PaymentStatus
from billing.money import currency_exponent, parse_decimal, to_minor_units
from billing.pdf import render_invoice_pdf
from billing.services import credit_notes as credit_note_service
from billing.services.credit_note_documents import credit_note_document
from billing.services.credit_notes import CreditNoteDraft, CreditNoteFilters
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
    redirect_htmx,
    render_htmx,
    requires,
)
from blueprints.console.invoices import ConfirmVoidForm, invoice_or_404
from extensions import db

PER_PAGE = 50
#: credit notes listed on a customer's Invoices tab (the rest through the organization's list)
CUSTOMER_TAB_LIMIT = 20

REASON_LABELS = {
    "duplicated_charge": "Duplicated charge",
    "product_unsatisfactory": "Product unsatisfactory",
    "order_change": "Order change",
    "order_cancellation": "Order cancellation",
    "fraudulent_charge": "Fraudulent charge",
    "other": "Other",
}
CREDIT_LABELS = {"available": "Available", "consumed": "Consumed", "voided": "Voided"}
REFUND_LABELS = {"pending": "Refund pending", "succeeded": "Refunded", "failed": "Refund failed"}
#: what the refund-status action may set, with its flash wording
REFUND_ACTIONS = {"succeeded": "marked as refunded", "failed": "marked as refund failed"}
#: service codes, as an agent reads them
MESSAGES = {
    "higher_than_remaining_fee_amount": "More than what is left to credit on this fee.",
    "higher_than_remaining_invoice_amount": "More than what is left to credit on this invoice.",
    "does_not_match_item_amounts": "Credit, refund and offset must add up to the credited total.",
    "cannot_credit_invoice": "A wallet top-up invoice cannot be offset.",
    "cannot_refund_unpaid_invoice": "Only a paid invoice can be refunded.",
    "invalid_type_or_status": "Only a finalized invoice can be credited.",
    "no_voidable_amount": "Nothing is left to void on this credit note.",
    "cannot_refund_credit_note": "This credit note refunds nothing.",
    "value_is_invalid": "This value is not accepted.",
    "value_is_mandatory": "Enter an amount for at least one fee.",
    "fee": "This fee is not on the invoice.",
}


@bp.context_processor
def credit_note_helpers() -> dict[str, Any]:
    return {
        "credit_reason_labels": REASON_LABELS,
        "credit_status_labels": CREDIT_LABELS,
        "refund_status_labels": REFUND_LABELS,
    }


def _message(code: str) -> str:
    return MESSAGES.get(code, f"Refused: {code.replace('_', ' ')}.")


# --- lists -----------------------------------------------------------------------------------

#: the list's filters, as URL parameters
FILTER_PARAMS = ("q", "credit_status", "refund_status", "reason", "issued_from", "issued_to")


@dataclass
class CreditNoteQuery:
    """The list's filters and page, read from and written back to the URL."""

    endpoint: str
    params: dict[str, str] = field(default_factory=dict)
    page: int = 1

    @classmethod
    def from_args(cls, endpoint: str, args: MultiDict[str, str]) -> CreditNoteQuery:
        allowed = {
            "credit_status": CREDIT_LABELS,
            "refund_status": REFUND_LABELS,
            "reason": REASON_LABELS,
        }
        params = {}
        for name in FILTER_PARAMS:
            value = args.get(name, "").strip()[:200]
            if name in allowed and value not in allowed[name]:
                value = ""
            if name.startswith("issued_") and date_arg(value) is None:
                value = ""
            params[name] = value
        return cls(endpoint, params, max(1, int_arg(args.get("page"), 1)))

    def url(self, **changes: Any) -> str:
        current = {**self.params, "page": "" if self.page == 1 else str(self.page)}
        current.update({key: str(value) for key, value in changes.items()})
        if current["page"] == "1":
            current["page"] = ""
        pairs = [(key, value) for key, value in current.items() if value]
        return url_for(self.endpoint) + ("?" + urlencode(pairs) if pairs else "")

    def cleared(self) -> str:
        return self.url(page=1, **dict.fromkeys(FILTER_PARAMS, ""))

    @property
    def is_filtered(self) -> bool:
        return any(self.params.values())

    def filters(self) -> CreditNoteFilters:
        one = {name: [value] if value else [] for name, value in self.params.items()}
        return CreditNoteFilters(
            search_term=self.params["q"] or None,
            credit_statuses=one["credit_status"],
            refund_statuses=one["refund_status"],
            reasons=one["reason"],
            issuing_date_from=date_arg(self.params["issued_from"]),
            issuing_date_to=date_arg(self.params["issued_to"]),
        )


@bp.get("/credit-notes")
def credit_notes() -> ResponseReturnValue:
    """The organization's credit notes, newest first; htmx requests get the table only."""
    query = CreditNoteQuery.from_args("console.credit_notes", request.args)
    page = credit_note_service.list_credit_notes(
        current_organization(), query.filters(), page=query.page, per_page=PER_PAGE
    )
    return render_htmx(
        "console/credit_notes.html",
        "console/_credit_note_table.html",
        query=query,
        page=page,
        table_target="#credit-note-table",
    )


def customer_credit_notes(customer: Customer) -> Page[CreditNote]:
    """The customer's newest credit notes, for its Invoices tab."""
    return credit_note_service.list_credit_notes(
        current_organization(),
        CreditNoteFilters(customer_id=customer.id),
        per_page=CUSTOMER_TAB_LIMIT,
    )


def invoice_context(invoice: Invoice) -> dict[str, Any]:
    """What the invoice page shows of credit notes: the invoice's, and whether it can get one."""
    return {
        "invoice_credit_notes": credit_note_service.list_credit_notes(
            current_organization(), CreditNoteFilters(invoice_id=invoice.id)
        ).items,
        "creditable": credit_note_service.creditable(invoice),
        "invoice_credits": credit_note_service.invoice_credits(invoice)
        if invoice.credit_notes_amount_cents
        else [],
    }


# --- create ----------------------------------------------------------------------------------


class CreditNoteForm(FlaskForm):
    reason = SelectField(
        "Reason",
        choices=[SelectChoice(value, label) for value, label in REASON_LABELS.items()],
        default="other",
    )
    description = TextAreaField("Description", validators=[Optional(), Length(max=1000)])
    refund = StringField("Refund", default="")
    offset = StringField("Offset", default="")


@dataclass
class FeeRow:
    """One fee of the invoice on the form: what is left to credit, what is typed."""

    fee: Fee
    creditable_cents: int
    value: str = ""
    cents: int = 0
    error: str | None = None


@dataclass
class CreditNoteEntry:
    """The form as typed, parsed into minor units (errors per field)."""

    rows: list[FeeRow]
    refund_cents: int = 0
    offset_cents: int = 0
    errors: list[str] = field(default_factory=list)
    draft: CreditNoteDraft | None = None

    @property
    def valid(self) -> bool:
        return not self.errors and not any(row.error for row in self.rows)

    @property
    def credit_cents(self) -> int:
        """What is left of the total for later invoices once refunded and offset."""
        if self.draft is None:
            raise InvariantBroken("expected self.draft is not None")
        return self.draft.total_cents - self.refund_cents - self.offset_cents


def _cents(raw: str, currency: str) -> tuple[int, str | None]:
    """A typed amount in major units as minor units; (0, message) when unreadable."""
    text = raw.strip().replace(",", ".")
    if not text:
        return 0, None
    amount = parse_decimal(text)
    if amount is None:
        return 0, "Enter an amount such as 12.50."
    if amount < 0:
        return 0, "Enter a positive amount."
    if amount != amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))):
        return 0, f"{currency} has {currency_exponent(currency)} decimals at most."
    return to_minor_units(amount, currency), None


def _entry(invoice: Invoice, form: CreditNoteForm) -> CreditNoteEntry:
    """The typed amounts, checked against what each fee has left."""
    left = credit_note_service.creditable_by_fee(invoice)
    rows = []
    for fee in invoice.fees:
        row = FeeRow(fee, left.get(fee.id, 0), request.form.get(f"fee-{fee.lago_id}", ""))
        row.cents, row.error = _cents(row.value, invoice.currency)
        if row.error is None and row.cents > row.creditable_cents:
            row.error = _message("higher_than_remaining_fee_amount")
        rows.append(row)
    entry = CreditNoteEntry(rows)
    entry.refund_cents, refund_error = _cents(form.refund.data or "", invoice.currency)
    if refund_error:
        form.refund.errors = [refund_error]
    entry.offset_cents, offset_error = _cents(form.offset.data or "", invoice.currency)
    if offset_error:
        form.offset.errors = [offset_error]
    items = [
        {"fee_id": str(row.fee.lago_id), "amount_cents": row.cents} for row in rows if row.cents
    ]
    if not items:
        entry.errors.append(_message("value_is_mandatory"))
    if entry.valid and not refund_error and not offset_error:
        entry.draft = credit_note_service.build_credit_note(invoice, {"items": items})
        if entry.refund_cents > entry.draft.total_cents:
            form.refund.errors = ["The refund cannot exceed the credited total."]
        elif entry.credit_cents < 0:
            form.offset.errors = ["Refund and offset together cannot exceed the credited total."]
    return entry


def _data(form: CreditNoteForm, entry: CreditNoteEntry) -> dict[str, Any]:
    if entry.draft is None:
        raise InvariantBroken("expected entry.draft is not None")
    return {
        "reason": form.reason.data,
        "description": form.description.data or None,
        "items": [
            {"fee_id": str(row.fee.lago_id), "amount_cents": row.cents}
            for row in entry.rows
            if row.cents
        ],
        "credit_amount_cents": entry.credit_cents,
        "refund_amount_cents": entry.refund_cents,
        "offset_amount_cents": entry.offset_cents,
    }


def _form_context(invoice: Invoice, form: CreditNoteForm, entry: CreditNoteEntry) -> dict[str, Any]:
    state = credit_note_service.invoice_credit_state(invoice)
    return {
        "invoice": invoice,
        "customer": invoice.customer,
        "form": form,
        "entry": entry,
        "state": state,
        "refundable": invoice.payment_status == PaymentStatus.SUCCEEDED
        and state.refundable_cents > 0,
        "offsettable": invoice.invoice_type != "credit" and state.offsettable_cents > 0,
    }


def _blank_entry(invoice: Invoice) -> CreditNoteEntry:
    left = credit_note_service.creditable_by_fee(invoice)
    return CreditNoteEntry([FeeRow(fee, left.get(fee.id, 0)) for fee in invoice.fees])


@bp.route("/invoices/<uuid:lago_id>/credit-notes/new", methods=["GET", "POST"])
@requires("write")
def new_credit_note(lago_id: uuid.UUID) -> ResponseReturnValue:
    """The credit note form of an invoice; a valid submit creates it and opens its page."""
    invoice = invoice_or_404(lago_id)
    if invoice.status != InvoiceStatus.FINALIZED:
        flash(_message("invalid_type_or_status"), "error")
        return redirect_htmx(url_for("console.invoice", lago_id=invoice.lago_id))
    form = CreditNoteForm()
    if request.method == "GET":
        return render_template(
            "console/credit_note_form.html", **_form_context(invoice, form, _blank_entry(invoice))
        )
    valid_form = form.validate()  # first: it resets the fields' errors _entry adds
    entry = _entry(invoice, form)
    amounts_read = not form.refund.errors and not form.offset.errors
    if valid_form and entry.valid and amounts_read and entry.draft is not None:
        try:
            credit_note = credit_note_service.create_credit_note(
                invoice, _data(form, entry), agent_actor()
            )
        except (ValidationFailed, NotAllowed, NotFound) as exc:
            db.session.rollback()
            entry.errors.extend(_refusals(exc))
        else:
            db.session.commit()
            flash(f"Credit note {credit_note.number} created.", "success")
            return redirect_htmx(url_for("console.credit_note", lago_id=credit_note.lago_id))
    return render_htmx(
        "console/credit_note_form.html",
        "console/_credit_note_form.html",
        422,
        **_form_context(invoice, form, entry),
    )


@bp.post("/invoices/<uuid:lago_id>/credit-notes/estimate")
@requires("write")
def estimate_credit_note(lago_id: uuid.UUID) -> ResponseReturnValue:
    """The live totals of the form as typed (htmx); nothing is written."""
    invoice = invoice_or_404(lago_id)
    form = CreditNoteForm()
    entry = _entry(invoice, form) if invoice.status == InvoiceStatus.FINALIZED else None
    return render_template(
        "console/_credit_note_estimate.html",
        invoice=invoice,
        form=form,
        entry=entry,
    )


def _refusals(exc: ValidationFailed | NotAllowed | NotFound) -> list[str]:
    if isinstance(exc, ValidationFailed):
        return [_message(str(code)) for codes in exc.details.values() for code in codes]  # type: ignore[union-attr]
    if isinstance(exc, NotFound):
        return [_message(exc.resource)]
    return [_message(exc.code)]


# --- the credit note page --------------------------------------------------------------------


def credit_note_or_404(lago_id: uuid.UUID) -> CreditNote:
    """The current organization's credit note (another organization's is a 404)."""
    return owned_or_404(CreditNote, lago_id)


def _detail_context(credit_note: CreditNote) -> dict[str, Any]:
    customer = credit_note.customer
    return {
        "credit_note": credit_note,
        "invoice": credit_note.invoice,
        "customer": customer,
        "timezone": customer.applicable_timezone,
        "org_timezone": current_organization().timezone,
        "consumptions": credit_note_service.consumptions(credit_note),
        "can_act": bool(current_user.can("write")),
        "refund_actions": REFUND_ACTIONS,
    }


@bp.get("/credit-notes/<uuid:lago_id>")
def credit_note(lago_id: uuid.UUID) -> ResponseReturnValue:
    """A credit note: amounts, credited items, where its credit went, and its actions."""
    note = credit_note_or_404(lago_id)
    return render_htmx(
        "console/credit_note.html", "console/_credit_note_detail.html", **_detail_context(note)
    )


def _done(note: CreditNote, category: str, message: str) -> ResponseReturnValue:
    """After an action: htmx swaps the detail with the message in it; without JavaScript,
    back to the page (Post/Redirect/Get) with the message flashed."""
    if is_htmx():
        db.session.expire_all()
        return render_template(
            "console/_credit_note_detail.html",
            notice=(category, message),
            **_detail_context(credit_note_or_404(note.lago_id)),
        )
    flash(message, category)
    return redirect(url_for("console.credit_note", lago_id=note.lago_id))


def _act(note: CreditNote, change: Any, success: str) -> ResponseReturnValue:
    return act(
        change,
        lambda: success,
        lambda category, text: _done(note, category, text),
        lambda exc: " ".join(_refusals(exc)),
    )


@bp.route("/credit-notes/<uuid:lago_id>/void", methods=["GET", "POST"])
@requires("write")
def void_credit_note(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Confirm, then void the credit left; htmx's hx-confirm posts `confirm=y` directly,
    without JavaScript the confirmation page asks."""
    note = credit_note_or_404(lago_id)
    form = ConfirmVoidForm()
    if request.method == "POST" and form.validate():
        return _act(
            note,
            lambda: credit_note_service.void_credit_note(note, agent_actor()),
            f"Credit note {note.number} voided.",
        )
    status = 422 if request.method == "POST" else 200
    return render_template(
        "console/credit_note_confirm.html", form=form, **_detail_context(note)
    ), status


@bp.post("/credit-notes/<uuid:lago_id>/refund-status")
@requires("write")
def update_refund_status(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Record the outcome of a refund made outside Ledgerline."""
    note = credit_note_or_404(lago_id)
    status = request.form.get("refund_status", "")
    if status not in REFUND_ACTIONS:
        return _done(note, "error", "Choose refunded or failed.")
    return _act(
        note,
        lambda: credit_note_service.update_credit_note(
            note, {"refund_status": status}, agent_actor()
        ),
        f"Credit note {note.number} {REFUND_ACTIONS[status]}.",
    )


@bp.get("/credit-notes/<uuid:lago_id>/pdf")
def credit_note_pdf(lago_id: uuid.UUID) -> ResponseReturnValue:
    """The credit note's PDF, rendered now in the customer's document locale."""
    note = credit_note_or_404(lago_id)
    disposition = "inline" if request.args.get("inline") else "attachment"
    return Response(
        render_invoice_pdf(credit_note_document(note)),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'{disposition}; filename="{note.number}.pdf"'},
    )
