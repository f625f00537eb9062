"""/api/v1/invoices: list, show, update (payment status, metadata), finalize, refresh, void,
download; a customer's invoices and past usage (lago-api.md §10, §3.1)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from billing.errors import NotFound, ValidationFailed
from billing.models import DocumentType, Invoice, InvoiceStatus
from billing.serializers_invoices import serialize_invoice, serialize_past_usage
from billing.services import credit_notes, documents, invoicing, mail
from billing.services import metrics as metric_service
from billing.services.customers import get_customer
from billing.services.pagination import Page
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import (
    _bool_param,
    list_param,
    metadata_filters,
    pagination,
    root_object,
)
from extensions import db

#: statuses Lago filters on (failed and pending invoices do not exist here: they match nothing)
STATUSES = ("draft", "finalized", "voided", "closed", "failed", "pending")


def invoice_filters(external_customer_id: str | None = None) -> invoicing.InvoiceFilters:
    """The filters of `GET /invoices` from the query string; 422 for unreadable values."""
    args = request.args
    errors: dict[str, list[str]] = {}
    statuses = list_param("statuses") + list_param("status")
    if any(status not in STATUSES for status in statuses):
        errors["status"] = ["value_is_invalid"]
    payment_statuses = list_param("payment_statuses") + list_param("payment_status")
    if any(status not in invoicing.PAYMENT_STATUSES for status in payment_statuses):
        errors["payment_status"] = ["value_is_invalid"]
    settlements = list_param("settlements")
    if any(kind not in invoicing.SETTLEMENTS for kind in settlements):
        errors["settlements"] = ["value_is_invalid"]
    filters = invoicing.InvoiceFilters(
        external_customer_id=external_customer_id
        or args.get("external_customer_id")
        or args.get("customer_external_id")
        or None,
        statuses=statuses,
        payment_statuses=payment_statuses,
        payment_overdue=_bool_param("payment_overdue", errors),
        partially_paid=_bool_param("partially_paid", errors),
        invoice_type=args.get("invoice_type") or None,
        currency=(args.get("currency") or "").upper() or None,
        issuing_date_from=_date(args.get("issuing_date_from"), "issuing_date_from", errors),
        issuing_date_to=_date(args.get("issuing_date_to"), "issuing_date_to", errors),
        amount_from=_integer(args.get("amount_from"), "amount_from", errors),
        amount_to=_integer(args.get("amount_to"), "amount_to", errors),
        search_term=(args.get("search_term") or "").strip() or None,
        metadata=metadata_filters(),
        payment_dispute_lost=_bool_param("payment_dispute_lost", errors),
        self_billed=_bool_param("self_billed", errors),
        purchase_order_number=(args.get("purchase_order_number") or "").strip() or None,
        settlements=settlements,
    )
    if errors:
        raise ValidationFailed(errors)
    if list_param("billing_entity_codes"):
        # Billing entities are not built: any code names one that does not exist (as customers).
        raise NotFound("billing_entity")
    return filters


def _date(raw: str | None, name: str, errors: dict[str, list[str]]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = ["invalid_date"]
        return None


#: the range of a database BIGINT: amounts outside it cannot be compared in SQL
_BIGINT = range(-(2**63), 2**63)


def _integer(raw: str | None, name: str, errors: dict[str, list[str]]) -> int | None:
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value not in _BIGINT:
        errors[name] = ["value_is_invalid"]
        return None
    return value


def _listed(result: Page[Invoice]) -> Response:
    with documents.looked_up_together(DocumentType.INVOICE, result.items):
        invoices = [serialize_invoice(invoice) for invoice in result.items]
    return jsonify(invoices=invoices, meta=result.meta())


def _shown(invoice: Invoice) -> Response:
    return jsonify(invoice=serialize_invoice(invoice, include_fees=True))


@bp.get("/invoices")
def list_invoices() -> ResponseReturnValue:
    """The organization's invoices, newest first, with §10's filters (an unknown customer
    gives an empty list)."""
    page, per_page = pagination()
    result = invoicing.list_invoices(
        current_organization(), invoice_filters(), page=page, per_page=per_page
    )
    return _listed(result)


@bp.get("/customers/<external_id>/invoices")
def list_customer_invoices(external_id: str) -> ResponseReturnValue:
    """One customer's invoices with the same filters; an unknown customer is 404."""
    customer = get_customer(current_organization(), external_id)
    page, per_page = pagination()
    result = invoicing.list_invoices(
        current_organization(),
        invoice_filters(customer.external_id),
        page=page,
        per_page=per_page,
    )
    return _listed(result)


@bp.get("/invoices/<lago_id>")
def show_invoice(lago_id: str) -> ResponseReturnValue:
    """One invoice with its fees, billing periods and subscriptions."""
    return _shown(invoicing.get_invoice(current_organization(), lago_id))


@bp.put("/invoices/<lago_id>")
def update_invoice(lago_id: str) -> ResponseReturnValue:
    """Change the payment status or the metadata of a finalized invoice."""
    invoice = invoicing.get_invoice(current_organization(), lago_id)
    invoicing.update_invoice(invoice, root_object("invoice"), current_actor())
    db.session.commit()
    return _shown(invoice)


@bp.put("/invoices/<lago_id>/finalize")
def finalize_invoice(lago_id: str) -> ResponseReturnValue:
    """Finalize a draft now (anything else is 404, as Lago)."""
    invoice = invoicing.get_invoice(current_organization(), lago_id, status=InvoiceStatus.DRAFT)
    invoicing.finalize_invoice(invoice, current_actor())
    db.session.commit()
    return _shown(invoice)


@bp.put("/invoices/<lago_id>/refresh")
def refresh_invoice(lago_id: str) -> ResponseReturnValue:
    """Recompute a draft from the current usage (a no-op on other statuses)."""
    invoice = invoicing.get_invoice(current_organization(), lago_id)
    invoicing.refresh_invoice(invoice, current_actor())
    db.session.commit()
    return _shown(invoice)


@bp.post("/invoices/<lago_id>/void")
def void_invoice(lago_id: str) -> ResponseReturnValue:
    """Void a finalized invoice; Lago's root-level options `generate_credit_note`,
    `credit_amount` and `refund_amount` credit or refund it at the same time."""
    invoice = invoicing.get_invoice(current_organization(), lago_id)
    options = request.get_json(silent=True)
    credit_notes.void_invoice(
        invoice, options if isinstance(options, dict) else {}, current_actor()
    )
    db.session.commit()
    return _shown(invoice)


@bp.post("/invoices/<lago_id>/resend_email")
def resend_invoice_email(lago_id: str) -> ResponseReturnValue:
    """E-mail a finalized invoice again (PDF attached), sent by the jobs process; optional
    root-level `to`, `cc`, `bcc` lists replace the customer's addresses. A draft or voided
    invoice: 405 `invalid_status`."""
    invoice = invoicing.get_invoice(current_organization(), lago_id)
    body = request.get_json(silent=True)
    options = body if isinstance(body, dict) else {}
    mail.resend_invoice_email(
        invoice,
        current_actor(),
        recipients=options.get("to"),
        cc=options.get("cc"),
        bcc=options.get("bcc"),
    )
    db.session.commit()
    return _shown(invoice)


@bp.post("/invoices/<lago_id>/download")
@bp.post("/invoices/<lago_id>/download_pdf")
def download_invoice(lago_id: str) -> ResponseReturnValue:
    """The invoice with `file_url` set. Where Lago answers an empty 200 and renders in the
    background, the PDF is rendered and stored now when the jobs process has not yet (so the
    link is always there); a draft has none: 404, as Lago (finalized invoices only)."""
    invoice = invoicing.get_invoice(current_organization(), lago_id)
    if invoice.status == InvoiceStatus.DRAFT:
        raise NotFound("invoice")
    documents.generate_invoice_pdf(invoice)
    db.session.commit()
    return _shown(invoice)


@bp.get("/customers/<external_id>/past_usage")
def past_usage(external_id: str) -> ResponseReturnValue:
    """Usage of the subscription's invoiced periods, newest first (`periods_count` of them,
    one `billable_metric_code`'s charges only if given)."""
    organization = current_organization()
    customer = get_customer(organization, external_id)
    external_subscription_id = request.args.get("external_subscription_id")
    if not external_subscription_id:
        raise ValidationFailed({"external_subscription_id": ["value_is_mandatory"]})
    metric_code = request.args.get("billable_metric_code") or None
    if metric_code is not None:
        metric_service.get_billable_metric(organization, metric_code)
    links = invoicing.customer_invoice_periods(customer, external_subscription_id)
    raw_count = request.args.get("periods_count") or ""
    # isdecimal, not isdigit: int() refuses digits such as "²" that isdigit accepts; a count
    # of ten digits or more means all of them
    periods_count = int(raw_count) if raw_count.isdecimal() and len(raw_count) < 10 else 0
    if periods_count > 0:
        links = links[:periods_count]
    page, per_page = pagination()
    result = Page(links[(page - 1) * per_page : page * per_page], len(links), page, per_page)
    usage_periods = [serialize_past_usage(link) for link in result.items]
    if metric_code is not None:
        for usage in usage_periods:
            _only_metric(usage, metric_code)
    return jsonify(usage_periods=usage_periods, meta=result.meta())


def _only_metric(usage: dict[str, Any], code: str) -> None:
    usage["charges_usage"] = [
        item for item in usage["charges_usage"] if item["billable_metric"]["code"] == code
    ]
    usage["amount_cents"] = usage["total_amount_cents"] = sum(
        item["amount_cents"] for item in usage["charges_usage"]
    )
