"""Bearer authentication of every /api/v1 request, before any lookup or validation."""

from __future__ import annotations

from flask import current_app, g, request
from werkzeug.exceptions import Unauthorized

from billing.models import ApiKey, Organization
from billing.services import audit
from billing.services.organizations import api_key_needs_touch, authenticate_api_key, touch_api_key
from blueprints.api import bp
from extensions import db, write_intent


@bp.before_request
def authenticate() -> None:
    """Resolve the API key to its organization or answer 401."""
    # Like Lago, take the second space-separated token and ignore the scheme word.
    parts = request.headers.get("Authorization", "").split(" ")
    raw_key = parts[1] if len(parts) > 1 else ""
    api_key = authenticate_api_key(raw_key) if raw_key else None
    if api_key is None:
        raise Unauthorized()
    if api_key_needs_touch(api_key, current_app.config["API_KEY_TOUCH_INTERVAL"]):
        # Its own short write transaction, taken before the request's work starts, so that a
        # read-only request never has to upgrade its snapshot to a write on SQLite.
        key_id = api_key.id
        db.session.commit()
        with write_intent():
            touch_api_key(db.session.get_one(ApiKey, key_id))
            db.session.commit()
        api_key = db.session.get_one(ApiKey, key_id)
    g.api_key = api_key
    g.organization = api_key.organization


def current_organization() -> Organization:
    return g.organization


def current_actor() -> audit.Actor:
    api_key: ApiKey = g.api_key
    return audit.Actor(
        type="api_key", source="api", id=str(api_key.lago_id), label=f"{api_key.prefix}…"
    )
