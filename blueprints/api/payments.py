"""/api/v1/payments: create (a manual payment), list, show; a customer's payments
(lago-api.md §3.1; Lago's PaymentsController)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.errors import NotFound
from billing.serializers_payments import serialize_payment
from billing.services import invoicing, payments
from billing.services.customers import get_customer
from billing.services.pagination import Page
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import pagination, root_object
from extensions import db


def _listed(result: Page) -> ResponseReturnValue:
    return jsonify(
        payments=[serialize_payment(payment) for payment in result.items], meta=result.meta()
    )


@bp.post("/payments")
def create_payment() -> ResponseReturnValue:
    """A manual payment of a finalized invoice: `{"payment": {"invoice_id", "amount_cents",
    "reference", "paid_at"}}` (and Ledgerline's optional `method`)."""
    data = root_object("payment")
    invoice_id = data.get("invoice_id")
    if not isinstance(invoice_id, str) or not invoice_id:
        raise NotFound("invoice")
    invoice = invoicing.get_invoice(current_organization(), invoice_id)
    payment = payments.create_manual_payment(invoice, data, current_actor())
    db.session.commit()
    return jsonify(payment=serialize_payment(payment))


@bp.get("/payments")
def list_payments() -> ResponseReturnValue:
    """The organization's payments, newest first; Lago's filters `invoice_id` and
    `external_customer_id` (an unknown one gives an empty list)."""
    organization = current_organization()
    filters = payments.PaymentFilters(
        external_customer_id=request.args.get("external_customer_id") or None
    )
    invoice_id = request.args.get("invoice_id")
    if invoice_id:
        try:
            filters.invoice_id = invoicing.get_invoice(organization, invoice_id).id
        except NotFound:
            filters.invoice_id = -1  # matches nothing
    page, per_page = pagination()
    return _listed(payments.list_payments(organization, filters, page=page, per_page=per_page))


@bp.get("/payments/<lago_id>")
def show_payment(lago_id: str) -> ResponseReturnValue:
    return jsonify(payment=serialize_payment(payments.get_payment(current_organization(), lago_id)))


@bp.get("/customers/<external_id>/payments")
def list_customer_payments(external_id: str) -> ResponseReturnValue:
    """One customer's payments, newest first; an unknown customer is 404."""
    customer = get_customer(current_organization(), external_id)
    page, per_page = pagination()
    result = payments.list_payments(
        current_organization(),
        payments.PaymentFilters(customer_id=customer.id),
        page=page,
        per_page=per_page,
    )
    return _listed(result)
