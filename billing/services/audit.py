"""Audit: who did what. Every change by an agent, API key, portal visitor or webhook is recorded
here, and read back per customer, organization-wide and through /api/v1/activity_logs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from billing.errors import NotFound
from billing.models import ActivityLog, Agent, Customer, Organization
from billing.services.pagination import Page
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


# --- reading the organization-wide audit log ---------------------------------------------


@dataclass
class ActivityFilters:
    """Which audit entries to list; empty lists and None mean "any"."""

    actor_types: list[str] = field(default_factory=list)
    #: our sources: api, console, portal, webhook, system, cli
    sources: list[str] = field(default_factory=list)
    activity_types: list[str] = field(default_factory=list)
    resource_types: list[str] = field(default_factory=list)
    resource_ids: list[str] = field(default_factory=list)
    #: entries by the organization's agents with these e-mails
    agent_emails: list[str] = field(default_factory=list)
    #: entries about customers with this external id (deleted ones included)
    external_customer_id: str | None = None
    #: entries about the subscription with this external id
    external_subscription_id: str | None = None
    #: created at or after / strictly before (UTC-aware)
    created_from: datetime | None = None
    created_before: datetime | None = None


@dataclass
class ActivityPage(Page[ActivityLog]):
    #: customer id → external id, for the entries of this page that concern a customer
    external_customer_ids: dict[int, str] = field(default_factory=dict)


def list_activity_logs(
    organization: Organization, filters: ActivityFilters, *, page: int = 1, per_page: int = 50
) -> ActivityPage:
    """One page of the organization's audit entries, newest first, with the total count."""
    conditions = _activity_conditions(organization, filters)
    total = db.session.scalar(select(func.count(ActivityLog.id)).where(*conditions)) or 0
    offset = (page - 1) * per_page
    if offset >= total:
        return ActivityPage([], total, page, per_page)
    items = list(
        db.session.scalars(
            select(ActivityLog)
            .where(*conditions)
            .order_by(ActivityLog.created_at.desc(), ActivityLog.id.desc())
            .offset(offset)
            .limit(per_page)
        )
    )
    return ActivityPage(items, total, page, per_page, external_customer_ids(items))


def get_activity_log(organization: Organization, activity_id: str) -> ActivityLog:
    """One of the organization's audit entries by its id; NotFound otherwise."""
    try:
        lago_id = uuid.UUID(activity_id)
    except ValueError:
        raise NotFound("activity_log") from None
    entry = db.session.scalar(
        select(ActivityLog).where(
            ActivityLog.lago_id == lago_id, ActivityLog.organization_id == organization.id
        )
    )
    if entry is None:
        raise NotFound("activity_log")
    return entry


def external_customer_ids(entries: Iterable[ActivityLog]) -> dict[int, str]:
    """customer id → external id for the customers these entries concern (one query)."""
    ids = {entry.customer_id for entry in entries if entry.customer_id is not None}
    if not ids:
        return {}
    rows = db.session.execute(select(Customer.id, Customer.external_id).where(Customer.id.in_(ids)))
    return {row.id: row.external_id for row in rows}


def activity_facets(organization: Organization) -> tuple[list[str], list[str]]:
    """The activity types and resource types present in the organization's log (for filters)."""
    in_organization = ActivityLog.organization_id == organization.id
    activity_types = db.session.scalars(
        select(ActivityLog.activity_type).where(in_organization).distinct()
    )
    resource_types = db.session.scalars(
        select(ActivityLog.resource_type).where(in_organization).distinct()
    )
    return sorted(activity_types), sorted(resource_types)


def _activity_conditions(
    organization: Organization, filters: ActivityFilters
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [ActivityLog.organization_id == organization.id]
    if filters.actor_types:
        conditions.append(ActivityLog.actor_type.in_(filters.actor_types))
    if filters.sources:
        conditions.append(ActivityLog.source.in_(filters.sources))
    if filters.activity_types:
        conditions.append(ActivityLog.activity_type.in_(filters.activity_types))
    if filters.resource_types:
        conditions.append(ActivityLog.resource_type.in_(filters.resource_types))
    if filters.resource_ids:
        conditions.append(ActivityLog.resource_id.in_(filters.resource_ids))
    if filters.agent_emails:
        # actor_id holds the agent's id as text, which each backend spells its own way in SQL.
        agents = db.session.scalars(
            select(Agent.lago_id).where(
                Agent.organization_id == organization.id,
                func.lower(Agent.email).in_([e.strip().lower() for e in filters.agent_emails]),
            )
        )
        conditions.append(ActivityLog.actor_type == "agent")
        conditions.append(ActivityLog.actor_id.in_([str(lago_id) for lago_id in agents]))
    if filters.external_customer_id is not None:
        conditions.append(
            ActivityLog.customer_id.in_(
                Customer.ids_with_external_id(organization.id, filters.external_customer_id)
            )
        )
    if filters.external_subscription_id is not None:
        # Subscription entries are labelled with the subscription's external id.
        conditions.append(
            (ActivityLog.resource_type == "subscription")
            & (ActivityLog.resource_label == filters.external_subscription_id)
        )
    if filters.created_from is not None:
        conditions.append(ActivityLog.created_at >= filters.created_from)
    if filters.created_before is not None:
        conditions.append(ActivityLog.created_at < filters.created_before)
    return conditions
