"""What an organization's admins manage: its profile and billing defaults, its agents' roles and
access (both recorded in the audit log)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from billing.errors import NotFound, ValidationFailed
from billing.models import Agent, AgentRole, Organization
from billing.reference import DOCUMENT_LOCALES, currency_codes, timezones
from billing.services import audit, invoicing
from billing.services.customers import apply_timezone_change
from extensions import db

# --- organization profile and billing defaults -----------------------------------------------

#: the settings `update_organization_settings` accepts; a key left out keeps its value
SETTINGS_FIELDS = (
    "name", "timezone", "default_currency", "document_locale", "invoice_grace_period",
    "net_payment_term", "portal_embed_origins", "brand_color", "logo",
    "finalize_zero_amount_invoice",
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
    if "timezone" in changes:
        apply_timezone_change(organization)
    if "invoice_grace_period" in changes:
        invoicing.reschedule_drafts(organization)
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
    check("finalize_zero_amount_invoice", _parse_zero_amount)
    return parsed, errors


def _parse_zero_amount(raw: Any) -> bool:
    """`finalize` (or true) finalizes zero-amount invoices, `skip` (or false) closes them."""
    text = _text(raw).lower()
    if raw is True or text in ("finalize", "true"):
        return True
    if raw is False or text in ("skip", "false"):
        return False
    raise _Invalid("value_is_invalid")


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
        "finalize_zero_amount_invoice": organization.finalize_zero_amount_invoice,
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
