"""Taxes in the console: the organization's taxes (list, create, edit, delete). Everyone reads;
admins write. Forms build the Lago-shaped payload the API receives; the service validates."""

from __future__ import annotations

import uuid

from flask import flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import Length

from billing.errors import ValidationFailed
from billing.models import Tax
from billing.models.taxes import add_on_taxes, charge_taxes, customer_taxes, plan_taxes
from billing.services import taxes as tax_service
from blueprints.console import bp
from blueprints.console.catalog import PER_PAGE, SearchQuery, confirm_delete
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_organization,
    owned_or_404,
    redirect_htmx,
    render_htmx,
    requires,
)
from blueprints.console.messages import field_message
from extensions import db

MESSAGES = {
    ("rate", "value_is_out_of_range"): "Enter a percentage between 0 and 100.",
    ("rate", "value_is_invalid"): "Enter a percentage such as 20 or 5.5.",
    ("code", "value_already_exist"): "Another tax already uses this code.",
    ("code", "value_is_invalid"): "A code cannot contain / ? # % or control characters.",
}


def tax_message(field_name: str, code: str) -> str:
    return MESSAGES.get((field_name, code)) or field_message(field_name, code)


class TaxForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=255)])
    code = StringField("Code", validators=[Length(max=255)])
    rate = StringField("Rate (%)", validators=[Length(max=32)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    applied_to_organization = BooleanField(
        "Organization default: applied to customers, plans and charges without taxes of their own"
    )


def _payload(form: TaxForm) -> dict[str, object]:
    data = form.data
    return {
        "name": (data["name"] or "").strip(),
        "code": (data["code"] or "").strip(),
        "rate": (data["rate"] or "").strip(),
        "description": (data["description"] or "").strip() or None,
        "applied_to_organization": bool(data["applied_to_organization"]),
    }


def _render_form(
    form: TaxForm, tax: Tax | None, status: int, unplaced: list[str] | None = None
) -> ResponseReturnValue:
    return render_htmx(
        "console/tax_form.html",
        "console/_tax_form.html",
        status=status,
        form=form,
        tax=tax,
        unplaced=unplaced or [],
    )


@bp.get("/taxes")
def taxes() -> ResponseReturnValue:
    """The organization's taxes, newest first; htmx requests (search, paging) get the table."""
    query = SearchQuery.from_args("console.taxes", request.args)
    page = tax_service.list_taxes(
        current_organization(), query.page, PER_PAGE, search=query.q or None
    )
    return render_htmx("console/taxes.html", "console/_tax_table.html", query=query, page=page)


@bp.route("/taxes/new", methods=["GET", "POST"])
@requires("admin")
def new_tax() -> ResponseReturnValue:
    """Create a tax."""
    form = TaxForm()
    if request.method == "GET":
        return _render_form(form, None, 200)
    return _save(form, None)


@bp.route("/taxes/<uuid:lago_id>/edit", methods=["GET", "POST"])
@requires("admin")
def edit_tax(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Edit a tax: draft invoices take the change when refreshed; finalized ones never do."""
    tax = owned_or_404(Tax, lago_id)
    if request.method == "GET":
        form = TaxForm(obj=tax)
        form.rate.data = format(tax.rate, "f")
        return _render_form(form, tax, 200)
    return _save(TaxForm(), tax)


def _save(form: TaxForm, tax: Tax | None) -> ResponseReturnValue:
    if not form.validate():
        return _render_form(form, tax, 422)
    organization = current_organization()
    try:
        if tax is None:
            tax = tax_service.create_tax(organization, _payload(form), agent_actor())
            notice = f"Tax “{tax.name}” created."
        else:
            tax_service.update_tax(organization, tax, _payload(form), agent_actor())
            notice = "Tax saved."
    except ValidationFailed as exc:
        db.session.rollback()
        unplaced = apply_errors(form, dict(exc.details), tax_message)
        return _render_form(form, tax, 422, unplaced)
    db.session.commit()
    flash(notice, "success")
    return redirect_htmx(url_for("console.taxes"))


def _uses(tax: Tax) -> list[str]:
    """What deleting the tax takes it away from, in words."""
    lines = []
    for link, what in (
        (customer_taxes, "customer"),
        (plan_taxes, "plan"),
        (charge_taxes, "charge"),
        (add_on_taxes, "add-on"),
    ):
        count = db.session.scalar(db.select(db.func.count()).where(link.c.tax_id == tax.id)) or 0
        if count:
            lines.append(f"It is removed from {count} {what}{'' if count == 1 else 's'}.")
    return lines


@bp.route("/taxes/<uuid:lago_id>/delete", methods=["GET", "POST"])
@requires("admin")
def delete_tax(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Confirm, then delete a tax."""
    tax = owned_or_404(Tax, lago_id)
    return confirm_delete(
        tax,
        "Tax",
        url_for("console.edit_tax", lago_id=tax.lago_id),
        [
            *_uses(tax),
            "Finalized invoices keep it as it was; drafts drop it when refreshed.",
            f"The code “{tax.code}” can be used again by a new tax.",
        ],
        lambda: tax_service.delete_tax(current_organization(), tax, agent_actor()),
        done=url_for("console.taxes"),
    )
