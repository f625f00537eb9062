"""Audit: who did what. Every change by an agent, API key, portal visitor or webhook is recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billing.models import ActivityLog
from extensions import db


@dataclass(frozen=True)
class Actor:
    """Who is acting, and through which door (`source`)."""

    type: str  # agent | api_key | portal | webhook | system
    source: str  # console | api | portal | webhook | system | cli
    id: str | None = None
    label: str | None = None


SYSTEM = Actor(type="system", source="system")
CLI = Actor(type="system", source="cli", label="command line")


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """The fields whose value changed, as {field: [old, new]}."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def record_activity(
    *,
    organization_id: int,
    actor: Actor,
    activity_type: str,
    resource_type: str,
    resource_id: str,
    resource_label: str | None = None,
    changes: dict[str, Any] | None = None,
    customer_id: int | None = None,
) -> ActivityLog:
    """Write one audit entry in the current transaction."""
    entry = ActivityLog(
        organization_id=organization_id,
        customer_id=customer_id,
        activity_type=activity_type,
        source=actor.source,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_label=resource_label[:255] if resource_label else None,
        changes=changes or {},
    )
    db.session.add(entry)
    return entry
