"""/api/v1/credit_notes: create, estimate, list, show, update (refund status), void, download
(lago-api.md §14)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from billing.errors import NotFound, ValidationFailed
from billing.models import CreditNote, DocumentType, Invoice
from billing.pdf import render_invoice_pdf
from billing.serializers_credit_notes import serialize_credit_note, serialize_estimate
from billing.services import credit_notes, documents, invoicing
from billing.services.credit_note_documents import credit_note_document
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.invoices import _date, _integer
from blueprints.api.schemas import _bool_param, json_body, list_param, pagination, root_object
from extensions import db


def _shown(credit_note: CreditNote) -> Response:
    return jsonify(credit_note=serialize_credit_note(credit_note))


def _invoice(data: dict[str, Any]) -> Invoice:
    """The organization's invoice named by `invoice_id` (404 invoice_not_found else)."""
    invoice_id = data.get("invoice_id")
    if not isinstance(invoice_id, str) or not invoice_id:
        raise NotFound("invoice")
    return invoicing.get_invoice(current_organization(), invoice_id)


def credit_note_filters() -> credit_notes.CreditNoteFilters:
    """The filters of `GET /credit_notes` from the query string; 422 for unreadable values."""
    args = request.args
    errors: dict[str, list[str]] = {}
    reasons = list_param("reason")
    if any(reason not in credit_notes.REASONS for reason in reasons):
        errors["reason"] = ["value_is_invalid"]
    credit_statuses = list_param("credit_status")
    if any(status not in credit_notes.CREDIT_STATUSES for status in credit_statuses):
        errors["credit_status"] = ["value_is_invalid"]
    refund_statuses = list_param("refund_status")
    if any(status not in credit_notes.REFUND_STATUSES for status in refund_statuses):
        errors["refund_status"] = ["value_is_invalid"]
    filters = credit_notes.CreditNoteFilters(
        external_customer_id=args.get("external_customer_id") or None,
        issuing_date_from=_date(args.get("issuing_date_from"), "issuing_date_from", errors),
        issuing_date_to=_date(args.get("issuing_date_to"), "issuing_date_to", errors),
        search_term=(args.get("search_term") or "").strip() or None,
        currency=(args.get("currency") or "").upper() or None,
        reasons=reasons,
        credit_statuses=credit_statuses,
        refund_statuses=refund_statuses,
        invoice_number=args.get("invoice_number") or None,
        amount_from=_integer(args.get("amount_from"), "amount_from", errors),
        amount_to=_integer(args.get("amount_to"), "amount_to", errors),
        self_billed=_bool_param("self_billed", errors),
    )
    if errors:
        raise ValidationFailed(errors)
    if list_param("billing_entity_codes"):
        raise NotFound("billing_entity")  # billing entities are not built
    return filters


@bp.post("/credit_notes")
def create_credit_note() -> ResponseReturnValue:
    """A credit note on a finalized invoice: per-fee items, split into credit and refund."""
    data = root_object("credit_note")
    invoice = _invoice(data)
    credit_note = credit_notes.create_credit_note(invoice, data, current_actor())
    db.session.commit()
    return _shown(credit_note)


@bp.post("/credit_notes/estimate")
def estimate_credit_note() -> ResponseReturnValue:
    """The amounts of a credit note of these items, and how much can be credited or refunded."""
    data = root_object("credit_note")
    invoice = _invoice(data)
    estimate = credit_notes.estimate_credit_note(invoice, data)
    return jsonify(estimated_credit_note=serialize_estimate(invoice, estimate))


@bp.get("/credit_notes")
def list_credit_notes() -> ResponseReturnValue:
    """The organization's credit notes, newest first, with §14's filters."""
    page, per_page = pagination()
    result = credit_notes.list_credit_notes(
        current_organization(), credit_note_filters(), page=page, per_page=per_page
    )
    return jsonify(
        credit_notes=[serialize_credit_note(item) for item in result.items], meta=result.meta()
    )


@bp.get("/credit_notes/<lago_id>")
def show_credit_note(lago_id: str) -> ResponseReturnValue:
    return _shown(credit_notes.get_credit_note(current_organization(), lago_id))


@bp.put("/credit_notes/<lago_id>")
def update_credit_note(lago_id: str) -> ResponseReturnValue:
    """Change the refund status."""
    credit_note = credit_notes.get_credit_note(current_organization(), lago_id)
    credit_notes.update_credit_note(credit_note, root_object("credit_note"), current_actor())
    db.session.commit()
    return _shown(credit_note)


@bp.put("/credit_notes/<lago_id>/void")
def void_credit_note(lago_id: str) -> ResponseReturnValue:
    """Void the credit left (405 no_voidable_amount when none is)."""
    credit_note = credit_notes.get_credit_note(current_organization(), lago_id)
    credit_notes.void_credit_note(credit_note, current_actor())
    db.session.commit()
    return _shown(credit_note)


def _metadata_body() -> dict[str, str | None]:
    body = json_body()
    raw = body.get("metadata") if isinstance(body, dict) else None
    return credit_notes.parse_metadata(raw if raw is not None else {})


def _metadata_shown(credit_note: CreditNote) -> Response:
    return jsonify(metadata=dict(credit_note.metadata_ or {}))


@bp.post("/credit_notes/<lago_id>/metadata")
def replace_credit_note_metadata(lago_id: str) -> ResponseReturnValue:
    """Replace the metadata with `{"metadata": {...}}`."""
    credit_note = credit_notes.get_credit_note(current_organization(), lago_id)
    credit_notes.set_metadata(credit_note, _metadata_body(), current_actor())
    db.session.commit()
    return _metadata_shown(credit_note)


@bp.patch("/credit_notes/<lago_id>/metadata")
def merge_credit_note_metadata(lago_id: str) -> ResponseReturnValue:
    """Add or change the given keys, keep the others."""
    credit_note = credit_notes.get_credit_note(current_organization(), lago_id)
    merged = dict(credit_note.metadata_ or {}) | _metadata_body()
    credit_notes.set_metadata(credit_note, credit_notes.parse_metadata(merged), current_actor())
    db.session.commit()
    return _metadata_shown(credit_note)


@bp.delete("/credit_notes/<lago_id>/metadata")
@bp.delete("/credit_notes/<lago_id>/metadata/<key>")
def delete_credit_note_metadata(lago_id: str, key: str | None = None) -> ResponseReturnValue:
    """Remove one key, or all of them."""
    credit_note = credit_notes.get_credit_note(current_organization(), lago_id)
    kept = {} if key is None else dict(credit_note.metadata_ or {})
    kept.pop(key or "", None)
    credit_notes.set_metadata(credit_note, kept, current_actor())
    db.session.commit()
    return _metadata_shown(credit_note)


@bp.post("/credit_notes/<lago_id>/download")
@bp.post("/credit_notes/<lago_id>/download_pdf")
def download_credit_note(lago_id: str) -> ResponseReturnValue:
    """The credit note with `file_url` set: its PDF is rendered and stored now when the jobs
    process has not yet (so the link is always there)."""
    credit_note = credit_notes.get_credit_note(current_organization(), lago_id)
    documents.generate_pdf(DocumentType.CREDIT_NOTE, credit_note)
    db.session.commit()
    return _shown(credit_note)


@bp.get("/credit_notes/<lago_id>/pdf")
def credit_note_pdf(lago_id: str) -> ResponseReturnValue:
    """The credit note's PDF, rendered now in the customer's document locale."""
    credit_note = credit_notes.get_credit_note(current_organization(), lago_id)
    pdf = render_invoice_pdf(credit_note_document(credit_note))
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{credit_note.number}.pdf"'},
    )
