"""/api/v1/activity_logs: the organization's audit trail in Lago's shape (not a paid extra here)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.errors import ValidationFailed
from billing.models import ActivityLog
from billing.services import audit as audit_service
from billing.services.audit import ActivityFilters
from billing.timeutil import as_utc, iso_utc
from blueprints.api import bp
from blueprints.api.auth import current_organization
from blueprints.api.schemas import list_param, pagination

#: Lago's three activity sources and the doors of ours each one covers
SOURCES = {
    "api": ["api"],
    "front": ["console"],
    "system": ["system", "cli", "portal", "webhook"],
}
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_UNENCODED_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


def activity_source(source: str) -> str:
    return next((lago for lago, ours in SOURCES.items() if source in ours), "system")


def lago_resource_type(resource_type: str) -> str:
    """`customer` → `Customer`, `api_key` → `ApiKey`: Lago names resources by class."""
    return "".join(part.capitalize() for part in resource_type.split("_"))


def our_resource_type(lago_type: str) -> str:
    """`Customer` or `customer` → `customer`, `ApiKey` → `api_key`."""
    return _CAMEL_BOUNDARY.sub("_", lago_type.strip()).lower()


def serialize_activity_log(entry: ActivityLog, external_customer_id: str | None) -> dict[str, Any]:
    """Lago's activity log object. `activity_object` holds the values the entry recorded
    (the changed fields after the change), not a full snapshot of the resource."""
    changes = entry.changes or {}
    recorded = {name: values[1] for name, values in changes.items()}
    return {
        "activity_id": str(entry.lago_id),
        "activity_type": entry.activity_type,
        "activity_source": activity_source(entry.source),
        "activity_object": recorded or None,
        "activity_object_changes": changes,
        "user_email": entry.actor_label if entry.actor_type == "agent" else None,
        "resource_id": entry.resource_id,
        "resource_type": lago_resource_type(entry.resource_type),
        "external_customer_id": external_customer_id,
        "external_subscription_id": (
            entry.resource_label if entry.resource_type == "subscription" else None
        ),
        "logged_at": iso_utc(entry.created_at),
        "created_at": iso_utc(entry.created_at),
        "api_key_id": entry.actor_id if entry.actor_type == "api_key" else None,
    }


def _datetime_param(name: str, errors: dict[str, list[str]], *, end: bool) -> datetime | None:
    """An ISO date or date-time (naive = UTC). A bare `to_date` day includes the whole day."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)
        # A `+02:00` offset sent unencoded arrives as ` 02:00`.
        value = datetime.fromisoformat(_UNENCODED_OFFSET.sub(r"+\1", raw.replace("Z", "+00:00")))
        value = as_utc(value)
        # Timestamps are shown to the second: `to_date=…T10:00:00Z` includes 10:00:00.5.
        if end and not value.microsecond:
            value += timedelta(seconds=1)
    except (ValueError, OverflowError):  # OverflowError: past year 9999, or before year 1
        errors[name] = ["invalid_date"]
        return None
    return value


def activity_filters() -> ActivityFilters:
    """The filters of `GET /activity_logs`, as Lago names them."""
    errors: dict[str, list[str]] = {}
    created_from = _datetime_param("from_date", errors, end=False)
    created_before = _datetime_param("to_date", errors, end=True)
    lago_sources = list_param("activity_sources")
    if any(source not in SOURCES for source in lago_sources):
        errors["activity_sources"] = ["value_is_invalid"]
    if errors:
        raise ValidationFailed(errors)
    return ActivityFilters(
        sources=[ours for source in lago_sources for ours in SOURCES[source]],
        activity_types=list_param("activity_types"),
        resource_types=[our_resource_type(t) for t in list_param("resource_types")],
        resource_ids=list_param("resource_ids"),
        agent_emails=list_param("user_emails"),
        external_customer_id=request.args.get("external_customer_id") or None,
        external_subscription_id=request.args.get("external_subscription_id") or None,
        created_from=created_from,
        created_before=created_before,
    )


@bp.get("/activity_logs")
def list_activity_logs() -> ResponseReturnValue:
    """The organization's audit entries, newest first, filtered like Lago's."""
    page, per_page = pagination()
    result = audit_service.list_activity_logs(
        current_organization(), activity_filters(), page=page, per_page=per_page
    )
    return jsonify(
        activity_logs=[
            serialize_activity_log(entry, result.external_customer_ids.get(entry.customer_id or 0))
            for entry in result.items
        ],
        meta=result.meta(),
    )


@bp.get("/activity_logs/<activity_id>")
def show_activity_log(activity_id: str) -> ResponseReturnValue:
    """One audit entry by its activity_id; 404 activity_log_not_found otherwise."""
    entry = audit_service.get_activity_log(current_organization(), activity_id)
    external_ids = audit_service.external_customer_ids([entry])
    return jsonify(
        activity_log=serialize_activity_log(entry, external_ids.get(entry.customer_id or 0))
    )
