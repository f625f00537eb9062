"""Agents by e-mail: invitations and password resets through signed, expiring links.

A link's token is an itsdangerous timed signature (its own salt per purpose, so an invitation
can never pass for a reset) over the agent's id and a fragment of a digest of the agent's
current password hash: setting a password changes the hash, so a used link dies (single use),
and so does every older link. The payload is readable, hence a digest, never the hash itself.
Requests never reveal whether an address belongs to an agent.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from billing.errors import DomainError, ValidationFailed
from billing.models import Agent, EmailKind, Organization
from billing.services import audit, mail, organizations
from billing.timeutil import now_utc
from extensions import db

INVITATION_SALT = "ledgerline.agent-invitation"
RESET_SALT = "ledgerline.password-reset"
#: seconds an invitation link stays valid (7 days) and a reset link (1 hour)
INVITATION_MAX_AGE = 7 * 24 * 3600
RESET_MAX_AGE = 3600
PASSWORD_MIN_LENGTH = 8


class LinkInvalid(DomainError):
    """A link that is not ours, was altered, was used already, or has `expired`."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


class _ClockSigner(TimestampSigner):
    """Signs and checks ages on billing.timeutil's clock (the one tests freeze)."""

    def get_timestamp(self) -> int:
        return int(now_utc().timestamp())


def _serializer(secret_key: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=salt, signer=_ClockSigner)


def _fragment(agent: Agent) -> str:
    return hashlib.sha256(agent.password_hash.encode()).hexdigest()[:16]


def _token(secret_key: str, agent: Agent, salt: str) -> str:
    return str(_serializer(secret_key, salt).dumps([agent.lago_id.hex, _fragment(agent)]))


def _base_url() -> str:
    from billing.services import documents  # noqa: PLC0415

    return documents.public_base_url().rstrip("/")


def invitation_url(secret_key: str, agent: Agent) -> str:
    return f"{_base_url()}/invitation/{_token(secret_key, agent, INVITATION_SALT)}"


def reset_url(secret_key: str, agent: Agent) -> str:
    return f"{_base_url()}/reset-password/{_token(secret_key, agent, RESET_SALT)}"


def open_link(secret_key: str, token: str, purpose: str) -> Agent:
    """The active agent a link of `purpose` (invitation | reset) is for; LinkInvalid otherwise."""
    salt, max_age = (
        (INVITATION_SALT, INVITATION_MAX_AGE)
        if purpose == "invitation"
        else (RESET_SALT, RESET_MAX_AGE)
    )
    try:
        payload = _serializer(secret_key, salt).loads(token, max_age=max_age)
    except SignatureExpired:
        raise LinkInvalid(expired=True) from None
    except BadSignature:
        raise LinkInvalid() from None
    try:
        agent_hex, fragment = payload
        lago_id = uuid.UUID(hex=str(agent_hex))
    except (TypeError, ValueError):
        raise LinkInvalid() from None
    agent = db.session.scalar(select(Agent).where(Agent.lago_id == lago_id))
    if (
        agent is None
        or not agent.is_active
        or not secrets.compare_digest(str(fragment), _fragment(agent))
    ):
        raise LinkInvalid()
    if purpose == "invitation" and agent.invited_at is None:
        raise LinkInvalid()
    return agent


def set_password(agent: Agent, password: str, actor_label: str) -> None:
    """Choose a new password through a link (which it kills); ValidationFailed when too short."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValidationFailed({"password": ["value_is_too_short"]})
    if len(password) > 1024:
        raise ValidationFailed({"password": ["value_is_too_long"]})
    accepted = agent.invited_at is not None
    agent.password_hash = generate_password_hash(password)
    agent.invited_at = None
    db.session.flush()
    audit.record_activity(
        organization_id=agent.organization_id,
        actor=audit.Actor(type="agent", source="console", id=str(agent.lago_id), label=agent.email),
        activity_type="agent.invitation_accepted" if accepted else "agent.password_reset",
        resource_type="agent",
        resource_id=str(agent.lago_id),
        resource_label=actor_label,
    )


def invite_agent(
    organization: Organization,
    email: str,
    role: str,
    actor: audit.Actor,
    *,
    name: str | None = None,
) -> Agent:
    """A new agent without a password yet, and the e-mail with the link to choose one."""
    if not mail.valid_address(email.strip().lower()):
        raise ValidationFailed({"email": ["invalid_email_format"]})
    agent = organizations.add_agent(
        organization, email, role, None, name=name, invited_at=now_utc()
    )
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type="agent.invited",
        resource_type="agent",
        resource_id=str(agent.lago_id),
        resource_label=agent.email,
        changes={"email": [None, agent.email], "role": [None, role]},
    )
    mail.queue_agent_email(agent, EmailKind.INVITATION)
    return agent


def resend_invitation(agent: Agent, actor: audit.Actor) -> None:
    if agent.invited_at is None:
        raise ValidationFailed({"email": ["invitation_accepted"]})
    mail.queue_agent_email(agent, EmailKind.INVITATION)
    audit.record_activity(
        organization_id=agent.organization_id,
        actor=actor,
        activity_type="agent.invitation_resent",
        resource_type="agent",
        resource_id=str(agent.lago_id),
        resource_label=agent.email,
    )


def request_password_reset(email: str) -> None:
    """Queue a reset link for the active agent with this address, if there is one; the caller
    answers the same either way (nobody learns whether an address is an agent's)."""
    address = email.strip().lower()
    if not address or len(address) > 255:
        return
    agent = db.session.scalar(select(Agent).where(func.lower(Agent.email) == address))
    if agent is None or not agent.is_active:
        return
    mail.queue_agent_email(agent, EmailKind.PASSWORD_RESET)
