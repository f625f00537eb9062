"""/api/v1/add_ons (create, list, show, update, delete by code) and one-off invoices
(`POST /invoices`), lago-api.md §11."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.serializers_add_ons import serialize_add_on
from billing.serializers_invoices import serialize_invoice
from billing.services import add_ons as add_on_service
from billing.services.one_off_invoices import create_one_off_invoice
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import pagination, root_object
from extensions import db


@bp.post("/add_ons")
def create_add_on() -> ResponseReturnValue:
    """Create an add-on; its code must be free among the organization's live add-ons."""
    add_on = add_on_service.create_add_on(
        current_organization(), root_object("add_on"), current_actor()
    )
    db.session.commit()
    return jsonify(add_on=serialize_add_on(add_on))


@bp.get("/add_ons")
def list_add_ons() -> ResponseReturnValue:
    """The organization's live add-ons, newest first."""
    page, per_page = pagination()
    result = add_on_service.list_add_ons(
        current_organization(), page, per_page, search=request.args.get("search_term")
    )
    return jsonify(add_ons=[serialize_add_on(a) for a in result.items], meta=result.meta())


@bp.get("/add_ons/<code>")
def show_add_on(code: str) -> ResponseReturnValue:
    """One live add-on by code."""
    return jsonify(add_on=serialize_add_on(add_on_service.get_add_on(current_organization(), code)))


@bp.put("/add_ons/<code>")
def update_add_on(code: str) -> ResponseReturnValue:
    """Change the fields present in the payload."""
    organization = current_organization()
    add_on = add_on_service.get_add_on(organization, code)
    add_on_service.update_add_on(organization, add_on, root_object("add_on"), current_actor())
    db.session.commit()
    return jsonify(add_on=serialize_add_on(add_on))


@bp.delete("/add_ons/<code>")
def delete_add_on(code: str) -> ResponseReturnValue:
    """Soft-delete the add-on; answers with the deleted add-on."""
    organization = current_organization()
    add_on = add_on_service.get_add_on(organization, code)
    add_on_service.delete_add_on(organization, add_on, current_actor())
    db.session.commit()
    return jsonify(add_on=serialize_add_on(add_on))


@bp.post("/invoices")
def create_one_off() -> ResponseReturnValue:
    """A one-off invoice for add-ons, finalized at once."""
    invoice = create_one_off_invoice(
        current_organization(), root_object("invoice"), current_actor()
    )
    db.session.commit()
    return jsonify(invoice=serialize_invoice(invoice, include_fees=True))
