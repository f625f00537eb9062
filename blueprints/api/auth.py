"""Bearer authentication of every /api/v1 request, before any lookup or validation."""

from __future__ import annotations

from flask import current_app, g, request
from werkzeug.exceptions import Unauthorized

from billing.models import Organization
from billing.services import audit
from billing.services.events import OrganizationRef
from billing.services.organizations import (
    ApiKeyIdentity,
    api_key_needs_touch,
    identify_api_key,
    touch_api_key,
)
from blueprints.api import bp
from blueprints.api.reference import PUBLIC_ENDPOINTS
from blueprints.api.schemas import refuse_nul_characters
from extensions import db, write_intent


@bp.before_request
def authenticate() -> None:
    """Resolve the API key to its organization or answer 401."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return  # the API's own description (blueprints/api/reference.py)
    # Like Lago, take the second space-separated token and ignore the scheme word.
    parts = request.headers.get("Authorization", "").split(" ")
    raw_key = parts[1] if len(parts) > 1 else ""
    api_key = identify_api_key(raw_key) if raw_key else None
    if api_key is None:
        raise Unauthorized()
    if api_key_needs_touch(api_key, current_app.config["API_KEY_TOUCH_INTERVAL"]):
        # Its own short write transaction, taken before the request's work starts, so that a
        # read-only request never has to upgrade its snapshot to a write on SQLite.
        db.session.commit()
        with write_intent():
            touch_api_key(api_key.id)
            db.session.commit()
    g.api_key = api_key
    g.pop("organization", None)  # loaded for this key on first use


# after authenticate: a wrong key is 401 before any input is looked at
bp.before_request(refuse_nul_characters)


def current_organization() -> Organization:
    """The key's organization, loaded on first use (event ingestion needs only its reference)."""
    organization: Organization | None = g.get("organization")
    if organization is None:
        organization = g.organization = db.session.get_one(Organization, g.api_key.organization_id)
    return organization


def current_organization_ref() -> OrganizationRef:
    """The key's organization id and time zone, read with the key: no model to load."""
    api_key: ApiKeyIdentity = g.api_key
    return OrganizationRef(api_key.organization_id, api_key.organization_timezone)


def current_actor() -> audit.Actor:
    api_key: ApiKeyIdentity = g.api_key
    return audit.Actor(
        type="api_key", source="api", id=str(api_key.lago_id), label=f"{api_key.prefix}…"
    )
