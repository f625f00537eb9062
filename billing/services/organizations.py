"""Organizations, their API keys and their agents."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, func, select, update
from werkzeug.security import generate_password_hash

from billing.errors import Conflict, NotFound, ValidationFailed
from billing.models import Agent, AgentRole, ApiKey, Organization
from billing.services import audit, driver
from billing.timeutil import now_utc
from extensions import db

API_KEY_PREFIX_LENGTH = 12
API_KEY_MIN_LENGTH = 20


def generate_api_key() -> str:
    """A new random key: `ll_` and 40 URL-safe characters."""
    return "ll_" + secrets.token_urlsafe(30)


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_organization(name: str, *, timezone: str = "UTC") -> Organization:
    """A new organization with fresh webhook secrets; names are unique."""
    name = name.strip()
    if not name:
        raise ValidationFailed({"name": ["value_is_mandatory"]})
    if db.session.scalar(select(Organization.id).where(Organization.name == name)):
        raise Conflict("name")
    organization = Organization(
        name=name,
        timezone=timezone,
        webhook_secret=secrets.token_hex(32),
        inbound_secret=secrets.token_hex(32),
    )
    db.session.add(organization)
    db.session.flush()
    return organization


def find_organization(name: str) -> Organization:
    organization = db.session.scalar(select(Organization).where(Organization.name == name))
    if organization is None:
        raise NotFound("organization")
    return organization


def create_api_key(
    organization: Organization,
    actor: audit.Actor,
    *,
    raw_key: str | None = None,
    name: str = "API key",
) -> tuple[ApiKey, str]:
    """Store a key (given, or generated); returns it with the plain key, which is never kept."""
    raw_key = raw_key or generate_api_key()
    if len(raw_key) < API_KEY_MIN_LENGTH or any(ch.isspace() for ch in raw_key):
        raise ValidationFailed({"api_key": ["value_is_invalid"]})
    key_hash = hash_api_key(raw_key)
    if db.session.scalar(select(ApiKey.id).where(ApiKey.key_hash == key_hash)):
        raise Conflict("api_key")
    api_key = ApiKey(
        organization_id=organization.id,
        name=name,
        prefix=raw_key[:API_KEY_PREFIX_LENGTH],
        key_hash=key_hash,
    )
    db.session.add(api_key)
    db.session.flush()
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type="api_key.created",
        resource_type="api_key",
        resource_id=str(api_key.lago_id),
        resource_label=f"{api_key.name} ({api_key.prefix}…)",
        changes={"name": [None, name], "prefix": [None, api_key.prefix]},
    )
    return api_key, raw_key


@dataclass(frozen=True)
class ApiKeyIdentity:
    """A live API key as the request path needs it: one Core row, no ORM objects (loading the
    key and its organization as models cost more than the rest of a single event's request)."""

    id: int
    lago_id: uuid.UUID
    prefix: str
    key_hash: str
    last_used_at: datetime | None
    organization_id: int
    organization_timezone: str


_API_KEYS: Table = ApiKey.__table__  # type: ignore[assignment]
_ORGANIZATIONS: Table = Organization.__table__  # type: ignore[assignment]
#: built once (every API request runs it), with the organization's zone in the same query
_LIVE_KEYS_BY_PREFIX = (
    select(
        _API_KEYS.c.id,
        _API_KEYS.c.lago_id,
        _API_KEYS.c.prefix,
        _API_KEYS.c.key_hash,
        _API_KEYS.c.last_used_at,
        _API_KEYS.c.organization_id,
        _ORGANIZATIONS.c.timezone.label("organization_timezone"),
    )
    .join(_ORGANIZATIONS, _ORGANIZATIONS.c.id == _API_KEYS.c.organization_id)
    .where(_API_KEYS.c.prefix == bindparam("prefix"), _API_KEYS.c.revoked_at.is_(None))
)


def identify_api_key(raw_key: str) -> ApiKeyIdentity | None:
    """The live key matching `raw_key`: looked up by prefix, compared by hash in constant time."""
    if len(raw_key) < API_KEY_MIN_LENGTH:
        return None
    key_hash = hash_api_key(raw_key)
    # before the request's transaction: on SQLite, a POST's write lock is taken at its first
    # statement, after authentication and the parsing of its body
    candidates = driver.fetch_before_transaction(
        "live_api_keys", lambda _dialect: _LIVE_KEYS_BY_PREFIX,
        {"prefix": raw_key[:API_KEY_PREFIX_LENGTH]},
    )  # fmt: skip
    for candidate in candidates:
        if hmac.compare_digest(candidate.key_hash, key_hash):
            return ApiKeyIdentity(*candidate)
    return None


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    """The live key matching `raw_key`, as a model."""
    identity = identify_api_key(raw_key)
    return None if identity is None else db.session.get_one(ApiKey, identity.id)


def api_key_needs_touch(api_key: ApiKey | ApiKeyIdentity, interval_seconds: int) -> bool:
    last = api_key.last_used_at
    return last is None or now_utc() - last >= timedelta(seconds=interval_seconds)


def touch_api_key(api_key_id: int) -> None:
    """Record that the key was used now (callers write this at most once a minute)."""
    db.session.execute(update(ApiKey).where(ApiKey.id == api_key_id).values(last_used_at=now_utc()))


def revoke_api_key(api_key: ApiKey, actor: audit.Actor) -> None:
    api_key.revoked_at = now_utc()
    audit.record_activity(
        organization_id=api_key.organization_id,
        actor=actor,
        activity_type="api_key.revoked",
        resource_type="api_key",
        resource_id=str(api_key.lago_id),
        resource_label=f"{api_key.name} ({api_key.prefix}…)",
        changes={"revoked_at": [None, api_key.revoked_at.isoformat()]},
    )
    db.session.flush()


def create_agent(
    organization: Organization,
    email: str,
    role: str,
    password: str,
    actor: audit.Actor,
    *,
    name: str | None = None,
) -> Agent:
    """A console user; e-mails are unique across organizations (an agent logs in with it)."""
    agent = add_agent(organization, email, role, password, name=name)
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type="agent.created",
        resource_type="agent",
        resource_id=str(agent.lago_id),
        resource_label=agent.email,
        changes={"email": [None, agent.email], "role": [None, role]},
    )
    return agent


def add_agent(
    organization: Organization,
    email: str,
    role: str,
    password: str | None,
    *,
    name: str | None = None,
    invited_at: datetime | None = None,
) -> Agent:
    """Check and insert an agent, without the audit record (the caller says how it came).
    No password means nobody knows it yet: an invitee chooses one through a link."""
    email = email.strip().lower()
    errors: dict[str, list[str]] = {}
    if "@" not in email or len(email) > 255:
        errors["email"] = ["invalid_email_format"]
    if role not in {r.value for r in AgentRole}:
        errors["role"] = ["value_is_invalid"]
    if password is not None and len(password) < 8:
        errors["password"] = ["value_is_too_short"]
    if errors:
        raise ValidationFailed(errors)
    if db.session.scalar(select(Agent.id).where(func.lower(Agent.email) == email)):
        raise Conflict("email")
    agent = Agent(
        organization_id=organization.id,
        email=email,
        name=name,
        role=AgentRole(role),
        password_hash=generate_password_hash(password or secrets.token_urlsafe(32)),
        invited_at=invited_at,
    )
    db.session.add(agent)
    db.session.flush()
    return agent


def lock_organization(organization: Organization) -> None:
    """Lock the organization's row: serializes the writes whose uniqueness rules span it (live
    customer external ids and sequential ids, metric and plan codes, subscription creations)."""
    db.session.execute(
        select(Organization.id).where(Organization.id == organization.id).with_for_update()
    )
