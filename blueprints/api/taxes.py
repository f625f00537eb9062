"""/api/v1/taxes: create, list, show, update, delete by code (lago-api.md §17)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.serializers_taxes import serialize_tax
from billing.services import taxes as tax_service
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import pagination, root_object
from extensions import db


@bp.post("/taxes")
def create_tax() -> ResponseReturnValue:
    """Create a tax; its code must be free in the organization."""
    tax = tax_service.create_tax(current_organization(), root_object("tax"), current_actor())
    db.session.commit()
    return jsonify(tax=serialize_tax(tax))


@bp.get("/taxes")
def list_taxes() -> ResponseReturnValue:
    """The organization's taxes, newest first."""
    page, per_page = pagination()
    result = tax_service.list_taxes(
        current_organization(), page, per_page, search=request.args.get("search_term")
    )
    return jsonify(taxes=[serialize_tax(t) for t in result.items], meta=result.meta())


@bp.get("/taxes/<code>")
def show_tax(code: str) -> ResponseReturnValue:
    """One tax by code."""
    return jsonify(tax=serialize_tax(tax_service.get_tax(current_organization(), code)))


@bp.put("/taxes/<code>")
def update_tax(code: str) -> ResponseReturnValue:
    """Change the fields present in the payload."""
    organization = current_organization()
    tax = tax_service.get_tax(organization, code)
    tax = tax_service.update_tax(organization, tax, root_object("tax"), current_actor())
    db.session.commit()
    return jsonify(tax=serialize_tax(tax))


@bp.delete("/taxes/<code>")
def delete_tax(code: str) -> ResponseReturnValue:
    """Delete the tax (it leaves the customers, plans and charges it was applied to);
    answers with the deleted tax."""
    organization = current_organization()
    tax = tax_service.get_tax(organization, code)
    payload = serialize_tax(tax)
    tax_service.delete_tax(organization, tax, current_actor())
    db.session.commit()
    return jsonify(tax=payload)
