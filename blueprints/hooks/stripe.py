"""/hooks/stripe: Stripe's webhook (see billing/services/stripe_hooks.py for the contract).

A bad, missing or stale signature is 400 and nothing is kept; a verified event is always 200
(recorded, unmatched or ignored), so Stripe stops retrying it."""

from __future__ import annotations

import json
import logging

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.services import stripe_hooks
from blueprints.api.errors import error_response
from blueprints.hooks import bp
from extensions import db

log = logging.getLogger(__name__)


@bp.post("/stripe")
@bp.post("/stripe/<organization_id>")
def stripe(organization_id: str | None = None) -> ResponseReturnValue:
    """Verify the `Stripe-Signature`, then apply the event once."""
    if (request.content_length or 0) > stripe_hooks.MAX_BODY_BYTES:
        return error_response(413, "Payload Too Large")
    request.max_content_length = stripe_hooks.MAX_BODY_BYTES
    raw = request.get_data(cache=True)
    try:
        organization = stripe_hooks.authenticate(
            organization_id, request.headers.get("Stripe-Signature", ""), raw
        )
    except stripe_hooks.BadSignature as exc:
        log.info("stripe hook refused: %s", exc)
        db.session.rollback()
        return error_response(400, "BadRequest: invalid Stripe-Signature")
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        event = None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        db.session.rollback()
        return error_response(400, "BadRequest: the body is not a Stripe event")
    result = stripe_hooks.receive_event(organization, event)
    db.session.commit()
    return jsonify(received=True, outcome=result.outcome, duplicate=result.duplicate)
