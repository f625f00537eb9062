"""The customer page's portal actions: a fresh portal link to copy or open, and revoking every
outstanding link (after confirmation, recorded on the customer's timeline)."""

from __future__ import annotations

import uuid

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired

from billing.services import portal as portal_service
from blueprints.console import bp
from blueprints.console.helpers import agent_actor, customer_or_404, requires
from extensions import db


class ConfirmRevokeForm(FlaskForm):
    confirm = BooleanField(
        "I understand that every portal link sent so far stops working",
        validators=[DataRequired()],
    )


@bp.get("/customers/<uuid:lago_id>/portal")
@requires("write")
def customer_portal(lago_id: uuid.UUID) -> ResponseReturnValue:
    """A new link (valid 12 hours) to copy or open, and the revoke form."""
    customer = customer_or_404(lago_id, include_deleted=False)
    return _page(customer, ConfirmRevokeForm())


def _page(customer: object, form: ConfirmRevokeForm, status: int = 200) -> ResponseReturnValue:
    base = current_app.config["PUBLIC_URL"] or request.host_url
    url = portal_service.portal_url(base, current_app.secret_key, customer)  # type: ignore[arg-type]
    hours = current_app.config["PORTAL_TOKEN_MAX_AGE"] / 3600
    return render_template(
        "console/customer_portal.html",
        customer=customer,
        portal_url=url,
        hours=f"{hours:g}",
        form=form,
    ), status


@bp.post("/customers/<uuid:lago_id>/portal/revoke")
@requires("write")
def revoke_portal_links(lago_id: uuid.UUID) -> ResponseReturnValue:
    customer = customer_or_404(lago_id, include_deleted=False)
    form = ConfirmRevokeForm()
    if not form.validate():
        return _page(customer, form, 422)
    portal_service.revoke_links(customer, agent_actor())
    db.session.commit()
    flash("Every portal link of this customer was revoked. The link below is new.", "success")
    return redirect(url_for("console.customer_portal", lago_id=customer.lago_id))
