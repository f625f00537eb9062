"""/api/v1/customers: upsert, list with filters and search, show, soft delete."""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from billing.serializers import serialize_customer
from billing.services import customers as customer_service
from billing.services import portal as portal_service
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import customer_filters, pagination, root_object
from extensions import db


@bp.post("/customers")
def upsert_customer() -> ResponseReturnValue:
    """Create the customer, or update the live one with the same external_id."""
    customer, _created = customer_service.upsert_customer(
        current_organization(), root_object("customer"), current_actor()
    )
    db.session.commit()
    return jsonify(customer=serialize_customer(customer))


@bp.get("/customers")
def list_customers() -> ResponseReturnValue:
    """The organization's live customers, newest first, filtered and searched."""
    page, per_page = pagination()
    result = customer_service.list_customers(
        current_organization(), customer_filters(), page=page, per_page=per_page
    )
    return jsonify(customers=[serialize_customer(c) for c in result.items], meta=result.meta())


@bp.get("/customers/<external_id>")
def show_customer(external_id: str) -> ResponseReturnValue:
    """One live customer by external id."""
    customer = customer_service.get_customer(current_organization(), external_id)
    return jsonify(customer=serialize_customer(customer))


@bp.delete("/customers/<external_id>")
def delete_customer(external_id: str) -> ResponseReturnValue:
    """Soft-delete; answers with the deleted customer."""
    organization = current_organization()
    customer = customer_service.get_customer(organization, external_id)
    customer_service.delete_customer(organization, customer, current_actor())
    db.session.commit()
    return jsonify(customer=serialize_customer(customer))


@bp.get("/customers/<external_id>/portal_url")
def customer_portal_url(external_id: str) -> ResponseReturnValue:
    """A fresh link to the customer's portal, valid PORTAL_TOKEN_MAX_AGE seconds (12 h)."""
    customer = customer_service.get_customer(current_organization(), external_id)
    base = current_app.config["PUBLIC_URL"] or request.host_url
    url = portal_service.portal_url(base, current_app.secret_key, customer)  # type: ignore[arg-type]
    return jsonify(customer={"portal_url": url})
