"""Settings › Webhooks: endpoints, their delivery log (replay, test event), inbound hooks."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length
from wtforms.widgets import CheckboxInput, ListWidget

from billing.errors import ValidationFailed
from billing.models import WebhookDelivery, WebhookEndpoint
from billing.services import inbound, outbox
from billing.services import webhooks as webhook_service
from blueprints.console import bp
from blueprints.console.forms import Select
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_organization,
    owned_or_404,
    redirect_htmx,
    requires,
)
from blueprints.console.messages import field_message
from extensions import db

ALGORITHMS = [
    ("jwt", "JWT (RS256) — Lago's default"),
    ("hmac", "HMAC-SHA256 with the signing secret"),
]
WEBHOOK_MESSAGES = {
    ("webhook_url", "url_is_invalid"): "Enter an http:// or https:// address.",
    ("webhook_url", "value_already_exist"): "Another endpoint already uses this address.",
    ("base", "webhook_endpoints_limit_reached"): (
        f"An organization can have at most {webhook_service.MAX_ENDPOINTS} endpoints."
    ),
}


class EndpointForm(FlaskForm):
    webhook_url = StringField("URL", validators=[Length(max=1024)])
    name = StringField("Name", validators=[Length(max=255)])
    signature_algo = Select("Signature", ALGORITHMS)
    event_types = SelectMultipleField(
        "Events",
        choices=[SelectChoice(t, t) for t in sorted(outbox.WEBHOOK_TYPES)],  # type: ignore[arg-type]
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=False,  # the service checks them, with its own message
    )

    def payload(self) -> dict[str, Any]:
        return {
            "webhook_url": self.webhook_url.data or "",
            "name": self.name.data,
            "signature_algo": self.signature_algo.data or "jwt",
            "event_types": list(self.event_types.data or []) or None,
        }


def _message(field: str, code: str) -> str:
    return WEBHOOK_MESSAGES.get((field, code)) or field_message(field, code)


def endpoint_or_404(lago_id: uuid.UUID) -> WebhookEndpoint:
    return owned_or_404(WebhookEndpoint, lago_id)


def _render_list(form: EndpointForm, status: int = 200, errors: list[str] | None = None) -> Any:
    organization = current_organization()
    body = render_template(
        "console/settings_webhooks.html",
        section="webhooks",
        form=form,
        errors=errors or [],
        endpoints=webhook_service.list_endpoints(organization).items,
        inbound_deliveries=inbound.list_deliveries(organization, limit=20),
        organization=organization,
    )
    return body, status


@bp.get("/settings/webhooks")
@requires("admin")
def settings_webhooks() -> ResponseReturnValue:
    """Endpoints, the signing and inbound secrets, and the latest inbound deliveries."""
    return _render_list(EndpointForm(signature_algo="hmac"))


@bp.post("/settings/webhooks")
@requires("admin")
def settings_create_webhook() -> ResponseReturnValue:
    form = EndpointForm()
    if not form.validate():
        return _render_list(form, 422)
    try:
        endpoint = webhook_service.create_endpoint(
            current_organization(), form.payload(), agent_actor()
        )
    except ValidationFailed as exc:
        db.session.rollback()
        return _render_list(form, 422, apply_errors(form, exc.details, _message))
    db.session.commit()
    return redirect_htmx(url_for("console.settings_webhook", lago_id=endpoint.lago_id))


def _render_endpoint(
    endpoint: WebhookEndpoint,
    form: EndpointForm | None = None,
    status: int = 200,
    errors: list[str] | None = None,
    notice: str | None = None,
) -> Any:
    if form is None:
        form = EndpointForm(obj=endpoint)
    body = render_template(
        "console/settings_webhook.html",
        section="webhooks",
        endpoint=endpoint,
        form=form,
        errors=errors or [],
        notice=notice,
        deliveries=webhook_service.list_deliveries(current_organization(), endpoint=endpoint),
    )
    return body, status


@bp.get("/settings/webhooks/<uuid:lago_id>")
@requires("admin")
def settings_webhook(lago_id: uuid.UUID) -> ResponseReturnValue:
    """One endpoint: its settings and its delivery log (status, attempts, response, payload)."""
    return _render_endpoint(endpoint_or_404(lago_id))


@bp.post("/settings/webhooks/<uuid:lago_id>")
@requires("admin")
def settings_update_webhook(lago_id: uuid.UUID) -> ResponseReturnValue:
    endpoint = endpoint_or_404(lago_id)
    form = EndpointForm()
    if not form.validate():
        return _render_endpoint(endpoint, form, 422)
    try:
        webhook_service.update_endpoint(
            current_organization(), endpoint, form.payload(), agent_actor()
        )
    except ValidationFailed as exc:
        db.session.rollback()
        endpoint = endpoint_or_404(lago_id)
        return _render_endpoint(endpoint, form, 422, apply_errors(form, exc.details, _message))
    db.session.commit()
    return _render_endpoint(endpoint, notice="Endpoint saved.")


@bp.post("/settings/webhooks/<uuid:lago_id>/delete")
@requires("admin")
def settings_delete_webhook(lago_id: uuid.UUID) -> ResponseReturnValue:
    endpoint = endpoint_or_404(lago_id)
    webhook_service.delete_endpoint(current_organization(), endpoint, agent_actor())
    db.session.commit()
    return redirect_htmx(url_for("console.settings_webhooks"))


@bp.post("/settings/webhooks/<uuid:lago_id>/test")
@requires("admin")
def settings_test_webhook(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Queue a `webhook.test` delivery; the jobs process sends it within seconds."""
    endpoint = endpoint_or_404(lago_id)
    webhook_service.send_test(current_organization(), endpoint, agent_actor())
    db.session.commit()
    return _render_endpoint(
        endpoint, notice="Test event queued: it is sent within a few seconds. Reload to see it."
    )


@bp.get("/settings/webhooks/deliveries/<uuid:lago_id>")
@requires("admin")
def settings_webhook_delivery(lago_id: uuid.UUID) -> ResponseReturnValue:
    """One delivery: status, attempts, last response and the exact payload sent."""
    delivery = _delivery_or_404(lago_id)
    return render_template(
        "console/settings_webhook_delivery.html",
        section="webhooks",
        delivery=delivery,
        payload=json.dumps(json.loads(delivery.body), indent=2),
    )


@bp.post("/settings/webhooks/deliveries/<uuid:lago_id>/replay")
@requires("admin")
def settings_replay_webhook(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Send a delivery again (same unique key, so receivers that saw it can tell)."""
    delivery = _delivery_or_404(lago_id)
    webhook_service.replay(delivery, agent_actor())
    db.session.commit()
    return redirect_htmx(url_for("console.settings_webhook_delivery", lago_id=lago_id))


def _delivery_or_404(lago_id: uuid.UUID) -> WebhookDelivery:
    return owned_or_404(WebhookDelivery, lago_id)
