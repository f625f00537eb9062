"""What an organization's admins manage: its profile and billing defaults, its agents' roles and
access, and the organization-wide audit log that records both (and every other change)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.exc import IntegrityError

from billing.errors import NotFound, ValidationFailed
from billing.models import ActivityLog, Agent, AgentRole, Customer, Organization
from billing.reference import DOCUMENT_LOCALES, currency_codes, timezones
from billing.services import audit
from billing.services.pagination import Page
from extensions import db

# --- organization profile and billing defaults -----------------------------------------------

#: the settings `update_organization_settings` accepts; a key left out keeps its value
SETTINGS_FIELDS = (
    "name", "timezone", "default_currency", "document_locale", "invoice_grace_period",
    "net_payment_term", "portal_embed_origins", "brand_color", "logo",
)  # fmt: skip
DAYS_MAX = 3650
NAME_MAX_LENGTH = 255
LOGO_MAX_BYTES = 512 * 1024
#: at most this many origins may frame the portal (they all travel in one CSP header)
ORIGINS_MAX = 20
LOGO_CONTENT_TYPES = ("image/png", "image/jpeg", "image/svg+xml")

_BRAND_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
#: https with a host (optionally a `*.` wildcard, as CSP allows), or plain http on localhost
_ORIGIN = re.compile(
    rf"^(?:https://(?:\*\.)?{_HOST_LABEL}(?:\.{_HOST_LABEL})*|http://localhost)(?::(\d{{1,5}}))?$"
)
_SVG_START = re.compile(
    rb"^(?:\s|<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*<svg[\s>]", re.S | re.I
)


@dataclass(frozen=True)
class LogoUpload:
    """An uploaded file; its real type is found from its bytes, never from its name."""

    data: bytes
    filename: str = ""


def update_organization_settings(
    organization: Organization, values: dict[str, Any], actor: audit.Actor
) -> dict[str, list[Any]]:
    """Validate and apply the given settings; record `organization.updated` with the diff.

    `values` holds form-like input (strings, or ints for days; `portal_embed_origins` as text
    with one origin a line or as a list; `logo` as a LogoUpload, or None to remove it). Every
    field is checked before anything changes: on any error ValidationFailed({field: [code]})
    is raised and the organization is left as it was. Returns the changes ({field: [old, new]}).
    """
    parsed, errors = _parse_settings(organization, values)
    if errors:
        raise ValidationFailed(errors)
    before = _audited(organization)
    for name, value in parsed.items():
        if name == "logo":
            organization.logo, organization.logo_content_type = value
        else:
            setattr(organization, name, value)
    changes = audit.diff(before, _audited(organization))
    if not changes:
        return {}
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        # Another organization took the name between our check and this write.
        raise ValidationFailed({"name": ["value_already_exist"]}) from None
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type="organization.updated",
        resource_type="organization",
        resource_id=str(organization.lago_id),
        resource_label=organization.name,
        changes=changes,
    )
    db.session.flush()
    return changes


def _parse_settings(
    organization: Organization, values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    parsed: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}

    def check(name: str, parse: Any) -> None:
        if name not in values:
            return
        try:
            parsed[name] = parse(values[name])
        except _Invalid as exc:
            errors[name] = [exc.code]

    check("name", lambda raw: _parse_name(organization, raw))
    check("timezone", _parse_timezone)
    check("default_currency", _parse_currency)
    check("document_locale", _parse_locale)
    check("invoice_grace_period", _parse_days)
    check("net_payment_term", _parse_days)
    check("portal_embed_origins", _parse_origins)
    check("brand_color", _parse_brand_color)
    check("logo", _parse_logo)
    return parsed, errors


class _Invalid(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _text(raw: Any) -> str:
    return "" if raw is None else str(raw).strip()


def _parse_name(organization: Organization, raw: Any) -> str:
    name = _text(raw)
    if not name:
        raise _Invalid("value_is_mandatory")
    if len(name) > NAME_MAX_LENGTH:
        raise _Invalid("value_is_too_long")
    taken = db.session.scalar(
        select(Organization.id).where(Organization.name == name, Organization.id != organization.id)
    )
    if taken:
        raise _Invalid("value_already_exist")
    return name


def _parse_timezone(raw: Any) -> str:
    zone = _text(raw)
    if zone not in timezones():
        raise _Invalid("invalid_timezone")
    return zone


def _parse_currency(raw: Any) -> str | None:
    code = _text(raw).upper()
    if not code:
        return None
    if code not in currency_codes():
        raise _Invalid("currency_is_invalid")
    return code


def _parse_locale(raw: Any) -> str:
    locale = _text(raw)
    if locale not in DOCUMENT_LOCALES:
        raise _Invalid("not_a_valid_language_code")
    return locale


def _parse_days(raw: Any) -> int:
    if isinstance(raw, bool):
        raise _Invalid("value_is_invalid")
    if isinstance(raw, int):
        days = raw
    else:
        text = _text(raw)
        if not text:
            raise _Invalid("value_is_mandatory")
        if not re.fullmatch(r"[+-]?\d{1,9}", text):
            raise _Invalid("value_is_invalid")
        days = int(text)
    if not 0 <= days <= DAYS_MAX:
        raise _Invalid("value_is_out_of_range")
    return days


def _parse_origins(raw: Any) -> list[str]:
    lines = raw if isinstance(raw, list | tuple) else _text(raw).splitlines()
    origins, invalid = parse_origins(lines)
    if invalid:
        raise _Invalid("invalid_origin")
    if len(origins) > ORIGINS_MAX:
        raise _Invalid("invalid_count")
    return origins


def parse_origins(lines: Iterable[Any]) -> tuple[list[str], list[str]]:
    """(valid origins normalized and without duplicates, the lines that are not origins).

    An origin is `https://host[:port]` (a leading `*.` wildcard allowed) or
    `http://localhost[:port]`: no path, query, user or spaces, since each one is written into
    the portal's `Content-Security-Policy: frame-ancestors` header as it is.
    """
    origins: list[str] = []
    invalid: list[str] = []
    for line in lines:
        text = _text(line)
        if not text:
            continue
        candidate = text.lower().removesuffix("/")
        match = _ORIGIN.match(candidate)
        port = match.group(1) if match else None
        if match is None or (port is not None and not 0 < int(port) <= 65535):
            invalid.append(text)
        elif candidate not in origins:
            origins.append(candidate)
    return origins, invalid


def _parse_brand_color(raw: Any) -> str:
    color = _text(raw)
    if not _BRAND_COLOR.match(color):
        raise _Invalid("value_is_invalid")
    return color.lower()


def _parse_logo(raw: Any) -> tuple[bytes | None, str | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, LogoUpload) or not raw.data:
        raise _Invalid("value_is_invalid")
    if len(raw.data) > LOGO_MAX_BYTES:
        raise _Invalid("file_too_large")
    content_type = logo_content_type(raw.data)
    if content_type is None:
        raise _Invalid("unsupported_file_type")
    return raw.data, content_type


def logo_content_type(data: bytes) -> str | None:
    """PNG, JPEG or SVG, recognised by content; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if _SVG_START.match(data.removeprefix(b"\xef\xbb\xbf")[:4096]):
        return "image/svg+xml"
    return None


def _audited(organization: Organization) -> dict[str, Any]:
    """The settings as the audit log shows them; the logo by type, size and fingerprint."""
    logo = organization.logo
    return {
        "name": organization.name,
        "timezone": organization.timezone,
        "default_currency": organization.default_currency,
        "document_locale": organization.document_locale,
        "invoice_grace_period": organization.invoice_grace_period,
        "net_payment_term": organization.net_payment_term,
        "portal_embed_origins": list(organization.portal_embed_origins or []),
        "brand_color": organization.brand_color,
        "logo": (
            f"{organization.logo_content_type}, {len(logo)} bytes, "
            f"sha256 {hashlib.sha256(logo).hexdigest()[:12]}"
            if logo
            else None
        ),
    }


# --- agents ----------------------------------------------------------------------------------


def update_agent(
    organization: Organization,
    agent: Agent,
    actor: audit.Actor,
    *,
    role: str | None = None,
    is_active: bool | None = None,
    acting_agent: Agent | None = None,
) -> dict[str, list[Any]]:
    """Change an agent's role and/or access; record `agent.updated` with the diff.

    An agent cannot demote or deactivate themselves, and the organization always keeps at least
    one active admin. Raises ValidationFailed({"role" | "is_active": [code]}).
    """
    if agent.organization_id != organization.id:
        raise NotFound("agent")
    if role is not None and role not in {r.value for r in AgentRole}:
        raise ValidationFailed({"role": ["value_is_invalid"]})
    new_role = AgentRole(role) if role is not None else agent.role
    new_active = agent.is_active if is_active is None else is_active
    is_self = acting_agent is not None and acting_agent.id == agent.id
    if is_self and new_role is not agent.role:
        raise ValidationFailed({"role": ["cannot_change_own_role"]})
    if is_self and not new_active:
        raise ValidationFailed({"is_active": ["cannot_deactivate_yourself"]})
    # Lock the organization row: two admins demoting each other at once must not leave none.
    db.session.execute(
        select(Organization.id).where(Organization.id == organization.id).with_for_update()
    )
    loses_admin = agent.role is AgentRole.ADMIN and agent.is_active
    loses_admin = loses_admin and (new_role is not AgentRole.ADMIN or not new_active)
    if loses_admin and _active_admin_count(organization) <= 1:
        raise ValidationFailed({"role" if new_active else "is_active": ["last_admin"]})
    before = {"role": agent.role.value, "is_active": agent.is_active}
    agent.role = new_role
    agent.is_active = new_active
    changes = audit.diff(before, {"role": new_role.value, "is_active": new_active})
    if changes:
        audit.record_activity(
            organization_id=organization.id,
            actor=actor,
            activity_type="agent.updated",
            resource_type="agent",
            resource_id=str(agent.lago_id),
            resource_label=agent.email,
            changes=changes,
        )
    db.session.flush()
    return changes


def _active_admin_count(organization: Organization) -> int:
    return (
        db.session.scalar(
            select(func.count(Agent.id)).where(
                Agent.organization_id == organization.id,
                Agent.role == AgentRole.ADMIN,
                Agent.is_active.is_(True),
            )
        )
        or 0
    )


# --- the organization-wide audit log ---------------------------------------------------------


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
                select(Customer.id).where(
                    Customer.organization_id == organization.id,
                    Customer.external_id == filters.external_customer_id,
                )
            )
        )
    if filters.external_subscription_id is not None:
        # Subscriptions are not built yet: no entry concerns one.
        conditions.append(false())
    if filters.created_from is not None:
        conditions.append(ActivityLog.created_at >= filters.created_from)
    if filters.created_before is not None:
        conditions.append(ActivityLog.created_at < filters.created_before)
    return conditions
