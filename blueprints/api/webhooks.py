"""/api/v1/webhook_endpoints and the public key of `jwt` signatures (lago-api.md §12)."""

from __future__ import annotations

from flask import Response, jsonify
from flask.typing import ResponseReturnValue

from billing.serializers_webhooks import serialize_webhook_endpoint
from billing.services import webhooks as webhook_service
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import pagination, root_object
from extensions import db, write_intent


@bp.post("/webhook_endpoints")
def create_webhook_endpoint() -> ResponseReturnValue:
    """Add an endpoint (at most ten an organization; its URL unique)."""
    organization = current_organization()
    endpoint = webhook_service.create_endpoint(
        organization, root_object("webhook_endpoint"), current_actor()
    )
    db.session.commit()
    return jsonify(webhook_endpoint=serialize_webhook_endpoint(endpoint, organization))


@bp.get("/webhook_endpoints")
def list_webhook_endpoints() -> ResponseReturnValue:
    organization = current_organization()
    page, per_page = pagination()
    result = webhook_service.list_endpoints(organization, page, per_page)
    return jsonify(
        webhook_endpoints=[serialize_webhook_endpoint(e, organization) for e in result.items],
        meta=result.meta(),
    )


@bp.get("/webhook_endpoints/<lago_id>")
def show_webhook_endpoint(lago_id: str) -> ResponseReturnValue:
    organization = current_organization()
    endpoint = webhook_service.get_endpoint(organization, lago_id)
    return jsonify(webhook_endpoint=serialize_webhook_endpoint(endpoint, organization))


@bp.put("/webhook_endpoints/<lago_id>")
def update_webhook_endpoint(lago_id: str) -> ResponseReturnValue:
    organization = current_organization()
    endpoint = webhook_service.get_endpoint(organization, lago_id)
    endpoint = webhook_service.update_endpoint(
        organization, endpoint, root_object("webhook_endpoint"), current_actor()
    )
    db.session.commit()
    return jsonify(webhook_endpoint=serialize_webhook_endpoint(endpoint, organization))


@bp.delete("/webhook_endpoints/<lago_id>")
def delete_webhook_endpoint(lago_id: str) -> ResponseReturnValue:
    """Remove the endpoint; answers with it as it was."""
    organization = current_organization()
    endpoint = webhook_service.get_endpoint(organization, lago_id)
    body = serialize_webhook_endpoint(endpoint, organization)
    webhook_service.delete_endpoint(organization, endpoint, current_actor())
    db.session.commit()
    return jsonify(webhook_endpoint=body)


@bp.get("/webhooks/json_public_key")
def webhook_json_public_key() -> ResponseReturnValue:
    """The base64 PEM public key that checks `jwt` signatures, as the official SDK reads it."""
    return jsonify(webhook={"public_key": _public_key()})


@bp.get("/webhooks/public_key")
def webhook_public_key() -> ResponseReturnValue:
    """The same key as plain text (Lago's older route)."""
    return Response(_public_key(), mimetype="text/plain")


def _public_key() -> str:
    organization = current_organization()
    if organization.webhook_private_key is None:
        # the key is made on first use: a GET that writes once
        db.session.commit()
        with write_intent():
            key = webhook_service.public_key_base64(organization)
            db.session.commit()
        return key
    return webhook_service.public_key_base64(organization)
