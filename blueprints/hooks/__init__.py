"""/hooks: signed inbound requests from the seller's backend or CRM (no cookie, no API key)."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from billing.errors import ValidationFailed
from billing.services import inbound
from blueprints.api.errors import error_response, validation_error
from extensions import db

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
log = logging.getLogger(__name__)


@bp.post("/customers")
def customers() -> ResponseReturnValue:
    """Create or update one customer (see billing/services/inbound.py for the contract)."""
    if (request.content_length or 0) > inbound.MAX_BODY_BYTES:
        return error_response(413, "Payload Too Large")
    request.max_content_length = inbound.MAX_BODY_BYTES
    raw = request.get_data(cache=True)
    try:
        organization = inbound.authenticate(
            request.headers.get("X-Ledgerline-Organization", ""),
            request.headers.get("X-Ledgerline-Signature", ""),
            raw,
        )
    except inbound.Unauthenticated as exc:
        log.info("inbound hook refused: %s", exc)
        db.session.rollback()
        return error_response(401, "Unauthorized")
    delivery_id = request.headers.get("X-Ledgerline-Delivery", "").strip()
    if not delivery_id or len(delivery_id) > 255:
        # Not logged: the log is keyed on the delivery id, and there is none to show or repeat.
        return error_response(400, "BadRequest: X-Ledgerline-Delivery header is missing")
    answer = inbound.previous_answer(organization, delivery_id)
    if answer is None:
        try:
            body = json.loads(raw)
        except ValueError:
            # Signed, so logged like a 422: the seller sees it, a repeat gets it again.
            not_json = error_response(400, "BadRequest: the body is not JSON")
            answer = inbound.Answer(400, not_json.get_json())
            inbound.record(organization, delivery_id, answer)
            db.session.commit()
            return _json(answer)
        try:
            answer = inbound.upsert_customer(organization, body, delivery_id)
        except ValidationFailed as exc:
            # Nothing of the customer is kept; the refusal is, so a repeat gets it again.
            db.session.rollback()
            answer = inbound.previous_answer(organization, delivery_id)
            if answer is None:
                answer = inbound.Answer(422, validation_error(exc.details).get_json())
                inbound.record(organization, delivery_id, answer)
    db.session.commit()
    return _json(answer)


def _json(answer: inbound.Answer) -> Response:
    response = jsonify(answer.body)
    response.status_code = answer.status
    return response


# Registered on import: the rate limit of every /hooks/ route, and /hooks/stripe.
from blueprints.hooks import limits, stripe  # noqa: E402,F401
