"""/api/v1/events: ingestion (single and batch), show by transaction id, list."""

from __future__ import annotations

from typing import Any

import orjson
from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from billing.errors import ValidationFailed
from billing.serializers_usage import serialize_event, serialize_events
from billing.services import events as event_service
from blueprints.api import bp
from blueprints.api.auth import current_organization, current_organization_ref
from blueprints.api.schemas import json_body, pagination, root_object
from extensions import db


@bp.post("/events")
def create_event() -> ResponseReturnValue:
    """Store one usage event; an identical replay answers the stored event."""
    event = event_service.ingest_event(current_organization_ref(), root_object("event"))
    db.session.commit()
    return _json({"event": serialize_event(event)})


@bp.post("/events/batch")
def create_events() -> ResponseReturnValue:
    """Store up to 100 events, all or nothing."""
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest("param is missing or the value is empty or invalid: events")
    events = event_service.ingest_events(current_organization_ref(), body.get("events"))
    db.session.commit()
    return _json({"events": serialize_events(events)})


def _json(payload: dict[str, Any]) -> ResponseReturnValue:
    """The ingestion answer, encoded by orjson (a batch's answer is 100 events: several times
    faster than the json module). What orjson refuses (integers beyond 64 bits, lone
    surrogates in the properties as sent) goes through jsonify, as every other answer does."""
    try:
        body = orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return jsonify(payload)
    return current_app.response_class(body, mimetype="application/json")


@bp.get("/events/<transaction_id>")
def show_event(transaction_id: str) -> ResponseReturnValue:
    """The event with this transaction id (optionally of one external subscription id)."""
    event = event_service.get_event(
        current_organization(),
        transaction_id,
        request.args.get("external_subscription_id") or None,
    )
    return jsonify(event=serialize_event(event))


@bp.get("/events")
def list_events() -> ResponseReturnValue:
    """The organization's events, newest first, filtered."""
    page, per_page = pagination()
    result = event_service.list_events(
        current_organization(), _event_filters(), page=page, per_page=per_page
    )
    return jsonify(events=[serialize_event(e) for e in result.items], meta=result.meta())


def _event_filters() -> event_service.EventFilters:
    errors: dict[str, list[str]] = {}
    bounds = {}
    for name in ("timestamp_from", "timestamp_to"):
        raw = request.args.get(name) or None
        try:
            bounds[name] = event_service.parse_time_filter(raw)
        except ValueError:
            errors[name] = ["invalid_date"]
    if errors:
        raise ValidationFailed(errors)
    return event_service.EventFilters(
        external_subscription_id=request.args.get("external_subscription_id") or None,
        code=request.args.get("code") or None,
        **bounds,
    )
