"""Outgoing webhooks: endpoints (lago-api.md §12), signatures, and delivery of the outbox.

Services write webhook-worthy events to the outbox in the transaction of their change
(services/outbox.py). The jobs process then
1. *dispatches* them: each new outbox event becomes one delivery per subscribed endpoint of its
   organization (unique per endpoint and event, so a second dispatcher adds nothing), and
2. *delivers* the due deliveries: each is leased (its next attempt pushed past the request
   timeout, committed) before the POST goes out, then marked succeeded, or retried with an
   exponential backoff until its retry window (24 hours by default) has passed, then failed.
A process that dies at any moment loses nothing: an undispatched event is still undispatched,
a leased delivery falls due again when its lease ends. Receivers may see a delivery twice and
deduplicate on `X-Lago-Unique-Key` (the delivery's lago_id).

Every delivery is signed three ways: `X-Lago-Signature` as the endpoint's algorithm says (Lago's
`hmac`: base64 HMAC-SHA256 of the body with the organization's webhook secret; `jwt`: an RS256
JWT whose `data` claim is the body, checked with the key of `/api/v1/webhooks/json_public_key`),
and `X-Ledgerline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` with the same
secret, so receivers can also refuse replays of old requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from billing.errors import NotFound, ValidationFailed
from billing.ids import new_lago_id
from billing.models import (
    Customer,
    DeliveryStatus,
    Organization,
    OutboxEvent,
    SignatureAlgo,
    Wallet,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.services import audit, outbox
from billing.services.organizations import lock_organization
from billing.services.pagination import Page
from billing.timeutil import now_utc
from extensions import db

#: Lago's limit of endpoints per organization
MAX_ENDPOINTS = 10
MAX_URL_LENGTH = 1024
#: a sender's lease on a batch: every request's timeout and this margin
LEASE_MARGIN_SECONDS = 5
#: the test delivery's webhook_type ("send test event" in the console)
TEST_EVENT_TYPE = "webhook.test"
#: every type lago-api.md §12 lists, so Lago's subscriptions keep working
KNOWN_TYPES = outbox.WEBHOOK_TYPES | {
    "customer.accounting_provider_created", "customer.accounting_provider_error",
    "customer.crm_provider_created", "customer.crm_provider_error",
    "customer.payment_provider_created", "customer.payment_provider_error",
    "customer.checkout_url_generated", "customer.tax_provider_error", "customer.vies_check",
    "invoice.ready_to_finalize", "invoice.deleted", "invoice.payment_failure",
    "invoice.payment_dispute_lost", "invoice.resynced",
    "subscription.canceled", "subscription.incomplete", "subscription.termination_alert",
    "subscription.trial_ended", "subscription.usage_threshold_reached",
    "events.errors", "fee.created", "fee.tax_provider_error",
    "credit_note.provider_refund_failure", "wallet.depleted_ongoing_balance",
    "wallet_transaction.payment_failure", "payment.succeeded", "payment.requires_action",
    "payment_provider.error", "payment_receipt.created", "payment_receipt.generated",
    "payment_request.created", "payment_request.payment_failure",
    "payment_request.payment_status_updated",
    "plan.created", "plan.updated", "plan.deleted",
    "billable_metric.created", "billable_metric.updated", "billable_metric.deleted",
    "alert.triggered", "dunning_campaign.finished", "integration.provider_error",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Endpoints


def list_endpoints(organization: Organization, page: int = 1, per_page: int = 100) -> Page[Any]:
    """The organization's endpoints, oldest first (there are at most ten)."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization.id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = db.session.scalars(
        query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return Page(list(items), total, page, per_page)


def get_endpoint(organization: Organization, lago_id: str) -> WebhookEndpoint:
    try:
        key = uuid.UUID(lago_id)
    except ValueError:
        raise NotFound("webhook_endpoint") from None
    endpoint = db.session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.organization_id == organization.id, WebhookEndpoint.lago_id == key
        )
    )
    if endpoint is None:
        raise NotFound("webhook_endpoint")
    return endpoint


def create_endpoint(
    organization: Organization, payload: dict[str, Any], actor: audit.Actor
) -> WebhookEndpoint:
    values = _endpoint_values(payload, creating=True)
    lock_organization(organization)
    count = db.session.scalar(
        select(func.count()).where(WebhookEndpoint.organization_id == organization.id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise ValidationFailed({"base": ["webhook_endpoints_limit_reached"]})
    _check_url_free(organization, values["webhook_url"])
    endpoint = WebhookEndpoint(
        organization_id=organization.id,
        signature_algo=values.pop("signature_algo", None) or SignatureAlgo.JWT,
        **values,
    )
    db.session.add(endpoint)
    db.session.flush()
    _audit(endpoint, "webhook_endpoint.created", actor, {k: [None, v] for k, v in values.items()})
    return endpoint


def update_endpoint(
    organization: Organization,
    endpoint: WebhookEndpoint,
    payload: dict[str, Any],
    actor: audit.Actor,
) -> WebhookEndpoint:
    values = _endpoint_values(payload, creating=False)
    lock_organization(organization)
    if values.get("webhook_url") not in (None, endpoint.webhook_url):
        _check_url_free(organization, values["webhook_url"])
    changes = {}
    for key, value in values.items():
        if key == "signature_algo" and value is None:
            continue
        if getattr(endpoint, key) != value:
            changes[key] = [getattr(endpoint, key), value]
            setattr(endpoint, key, value)
    db.session.flush()
    if changes:
        _audit(endpoint, "webhook_endpoint.updated", actor, changes)
    return endpoint


def delete_endpoint(
    organization: Organization, endpoint: WebhookEndpoint, actor: audit.Actor
) -> None:
    """Remove the endpoint and its delivery log; undelivered webhooks to it are dropped."""
    changes = {"webhook_url": [endpoint.webhook_url, None]}
    _audit(endpoint, "webhook_endpoint.deleted", actor, changes)
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    db.session.delete(endpoint)
    db.session.flush()


def _endpoint_values(payload: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if creating or "webhook_url" in payload:
        url = payload.get("webhook_url")
        if not isinstance(url, str) or not url.strip():
            errors["webhook_url"] = ["value_is_mandatory"]
        elif not _is_http_url(url.strip()):
            errors["webhook_url"] = ["url_is_invalid"]
        else:
            values["webhook_url"] = url.strip()
    if "signature_algo" in payload:
        algo = payload["signature_algo"]
        if algo is not None and algo not in SignatureAlgo.ALL:
            errors["signature_algo"] = ["value_is_invalid"]
        else:
            values["signature_algo"] = algo
    if "name" in payload:
        name = payload["name"]
        if name is not None and not isinstance(name, str):
            errors["name"] = ["value_is_invalid"]
        elif name and len(name.strip()) > 255:
            errors["name"] = ["value_is_too_long"]
        else:
            values["name"] = (name.strip() or None) if name else None
    if "event_types" in payload:
        types = payload["event_types"]
        if types is None:
            values["event_types"] = None
        elif not isinstance(types, list) or not all(
            isinstance(t, str) and t in KNOWN_TYPES for t in types
        ):
            errors["event_types"] = ["value_is_invalid"]
        else:
            values["event_types"] = list(dict.fromkeys(types))
    if errors:
        raise ValidationFailed(errors)
    return values


def _is_http_url(url: str) -> bool:
    if len(url) > MAX_URL_LENGTH or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_url_free(organization: Organization, url: str) -> None:
    taken = db.session.scalar(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.organization_id == organization.id, WebhookEndpoint.webhook_url == url
        )
    )
    if taken is not None:
        raise ValidationFailed({"webhook_url": ["value_already_exist"]})


def _audit(
    endpoint: WebhookEndpoint, activity: str, actor: audit.Actor, changes: dict[str, Any]
) -> None:
    audit.record_activity(
        organization_id=endpoint.organization_id,
        actor=actor,
        activity_type=activity,
        resource_type="webhook_endpoint",
        resource_id=str(endpoint.lago_id),
        resource_label=endpoint.name or endpoint.webhook_url,
        changes=changes,
    )


# ---------------------------------------------------------------------------------------------
# Signatures


def hmac_signature(secret: str, body: str) -> str:
    """Lago's `hmac` signature: base64 of HMAC-SHA256(secret, body)."""
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def ledgerline_signature(secret: str, body: str, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`: a receiver that checks `t` refuses
    an old request replayed."""
    message = f"{timestamp}.{body}".encode()
    return f"t={timestamp},v1={hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}"


def jwt_signature(organization: Organization, body: str) -> str:
    """Lago's `jwt` signature: RS256 over {"data": body, "iss": the public URL}."""
    return jwt.encode(
        {"data": body, "iss": issuer()}, _private_key_pem(organization), algorithm="RS256"
    )


def issuer() -> str:
    return current_app.config.get("PUBLIC_URL") or "ledgerline"


def public_key_base64(organization: Organization) -> str:
    """The base64 of the PEM public key that checks the organization's `jwt` signatures."""
    private = serialization.load_pem_private_key(_private_key_pem(organization).encode(), None)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(pem).decode()


def _private_key_pem(organization: Organization) -> str:
    """The organization's RSA key, made once: under the organization's row lock, so that two
    processes asking at once store one key."""
    if organization.webhook_private_key is None:
        lock_organization(organization)
        db.session.refresh(organization, ["webhook_private_key"])
        if organization.webhook_private_key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            organization.webhook_private_key = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            db.session.flush()
    return organization.webhook_private_key


def signed_headers(
    organization: Organization, endpoint: WebhookEndpoint, delivery_id: str, body: str
) -> dict[str, str]:
    algo = endpoint.signature_algo
    signature = (
        jwt_signature(organization, body)
        if algo == SignatureAlgo.JWT
        else hmac_signature(organization.webhook_secret, body)
    )
    return {
        "Content-Type": "application/json",
        "User-Agent": "Ledgerline-Webhooks",
        "X-Lago-Signature": signature,
        "X-Lago-Signature-Algorithm": algo,
        "X-Lago-Unique-Key": delivery_id,
        "X-Ledgerline-Signature": ledgerline_signature(
            organization.webhook_secret, body, int(time.time())
        ),
    }


# ---------------------------------------------------------------------------------------------
# Dispatch: outbox events → deliveries


def webhook_body(organization: Organization, event_type: str, object_type: str, obj: Any) -> str:
    """Lago's body: webhook_type, object_type, organization_id and the object under its type."""
    return json.dumps(
        {
            "webhook_type": event_type,
            "object_type": object_type,
            "organization_id": str(organization.lago_id),
            object_type: obj,
        },
        separators=(",", ":"),
    )


def has_undispatched_events() -> bool:
    query = select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None)).limit(1)
    return db.session.scalar(query) is not None


def dispatch_outbox(limit: int = 500) -> int:
    """Turn up to `limit` undispatched outbox events into deliveries, in one transaction;
    returns how many events were dispatched. Events another dispatcher holds are skipped on
    PostgreSQL, and the unique (endpoint, event) key refuses a second delivery anyway."""
    query = (
        select(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    events = db.session.scalars(query).all()
    if not events:
        return 0
    now = now_utc()
    organization_ids = {event.organization_id for event in events}
    endpoints: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.organization_id.in_(organization_ids))
    ):
        endpoints.setdefault(endpoint.organization_id, []).append(endpoint)
    organizations = {
        org.id: org
        for org in db.session.scalars(
            select(Organization).where(Organization.id.in_(organization_ids))
        )
    }
    customers = _customer_ids(events)
    rows = []
    for event in events:
        subscribed = [
            e for e in endpoints.get(event.organization_id, []) if e.subscribes_to(event.event_type)
        ]
        if not subscribed:
            continue
        body = webhook_body(
            organizations[event.organization_id], event.event_type, event.object_type,
            event.payload,
        )  # fmt: skip
        for endpoint in subscribed:
            rows.append(
                {
                    "lago_id": new_lago_id(),
                    "organization_id": event.organization_id,
                    "endpoint_id": endpoint.id,
                    "outbox_event_id": event.id,
                    "customer_id": customers.get(event.id),
                    "event_type": event.event_type,
                    "body": body,
                    "status": DeliveryStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if rows:
        db.session.execute(_insert_unless_present(), rows)
    db.session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_([event.id for event in events]))
        .values(dispatched_at=now),
        execution_options={"synchronize_session": False},
    )
    return len(events)


def _insert_unless_present() -> Any:
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(WebhookDelivery).on_conflict_do_nothing()
    return sqlite_insert(WebhookDelivery).on_conflict_do_nothing()


def _customer_reference(event: OutboxEvent) -> tuple[str, str] | None:
    """What names the customer an outbox event is about, if anything: ("customer", its
    lago_id), or ("wallet", the lago_id of the customer's wallet) for a wallet transaction."""
    payload = event.payload or {}
    if event.object_type == "customer":
        lago_id = payload.get("lago_id")
    elif event.object_type == "wallet_transaction":
        wallet_id = payload.get("lago_wallet_id")
        return ("wallet", str(wallet_id)) if wallet_id else None
    else:
        customer = payload.get("customer")
        stored_event = payload.get("event")  # event.error: the event that counts for nothing
        if isinstance(customer, dict) and customer.get("lago_id"):
            lago_id = customer["lago_id"]
        elif isinstance(stored_event, dict):
            lago_id = stored_event.get("lago_customer_id")
        else:
            lago_id = payload.get("lago_customer_id")
    return ("customer", str(lago_id)) if lago_id else None


def _customer_ids(events: Any) -> dict[int, int]:
    """The id of the customer each outbox event is about (by the event's id), where known."""
    wanted: dict[int, tuple[str, uuid.UUID]] = {}
    for event in events:
        reference = _customer_reference(event)
        try:
            if reference is not None:
                wanted[event.id] = (reference[0], uuid.UUID(reference[1]))
        except ValueError:
            continue
    found: dict[tuple[str, uuid.UUID], int] = {}
    for kind, model in (("customer", Customer), ("wallet", Wallet)):
        lago_ids = {lago_id for k, lago_id in wanted.values() if k == kind}
        if lago_ids:
            owner = Customer.id if model is Customer else Wallet.customer_id
            rows = db.session.execute(
                select(model.lago_id, owner).where(model.lago_id.in_(lago_ids))
            )
            found.update({(kind, lago_id): customer_id for lago_id, customer_id in rows})
    return {event_id: found[ref] for event_id, ref in wanted.items() if ref in found}


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass
class Attempt:
    delivery_id: int
    status_code: int | None
    elapsed_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def timeout_seconds() -> float:
    return float(current_app.config.get("WEBHOOK_TIMEOUT_SECONDS", 10))


def retry_window() -> timedelta:
    return timedelta(hours=float(current_app.config.get("WEBHOOK_RETRY_HOURS", 24)))


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 30 s, 1 min, 2 min, … capped at 2 hours."""
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 7200))


def has_due_deliveries(at: datetime | None = None) -> bool:
    now = at or now_utc()
    return (
        db.session.scalar(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status.in_(DeliveryStatus.OPEN),
                WebhookDelivery.next_attempt_at <= now,
            )
            .limit(1)
        )
        is not None
    )


def claim_due(limit: int = 10, at: datetime | None = None) -> list[WebhookDelivery]:
    """Lease up to `limit` due deliveries and commit: their next attempt moves past the time
    the batch can take to send (each request's timeout, plus a margin), so no other sender takes
    them meanwhile, and a sender that dies leaves them due again once the lease ends."""
    now = at or now_utc()
    query = (
        select(WebhookDelivery)
        .where(
            WebhookDelivery.status.in_(DeliveryStatus.OPEN),
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    deliveries = list(db.session.scalars(query))
    lease = now + lease_duration(len(deliveries))
    for delivery in deliveries:
        delivery.next_attempt_at = lease
    db.session.commit()
    return deliveries


def lease_duration(batch_size: int) -> timedelta:
    return timedelta(seconds=batch_size * timeout_seconds() + LEASE_MARGIN_SECONDS)


def send(delivery: WebhookDelivery, client: httpx.Client) -> Attempt:
    """POST one delivery (no database write)."""
    endpoint = delivery.endpoint
    organization = db.session.get_one(Organization, delivery.organization_id)
    headers = signed_headers(organization, endpoint, str(delivery.lago_id), delivery.body)
    db.session.commit()  # a JWT key made just now
    started = time.perf_counter()
    try:
        response = client.post(
            endpoint.webhook_url,
            content=delivery.body.encode(),
            headers=headers,
            timeout=timeout_seconds(),
        )
        status_code: int | None = response.status_code
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        status_code = None
        error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    elapsed = int((time.perf_counter() - started) * 1000)
    return Attempt(delivery.id, status_code, elapsed, error)


def record(attempt: Attempt, at: datetime | None = None) -> WebhookDelivery:
    """Store an attempt's outcome: succeeded, retrying after the backoff, or failed once the
    retry window has passed."""
    now = at or now_utc()
    delivery = db.session.get_one(WebhookDelivery, attempt.delivery_id)
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_status = attempt.status_code
    delivery.response_time_ms = attempt.elapsed_ms
    delivery.last_error = attempt.error
    if attempt.ok:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.next_attempt_at = None
    else:
        retry_at = now + backoff(delivery.attempts)
        if retry_at > delivery.created_at + retry_window():
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = retry_at
    db.session.commit()
    return delivery


def deliver_due(limit: int = 10, client: httpx.Client | None = None) -> int:
    """Send the due deliveries, one leased batch; returns how many were attempted."""
    deliveries = claim_due(limit)
    if not deliveries:
        return 0
    own_client = client is None
    client = client or httpx.Client(follow_redirects=False)
    try:
        for delivery in deliveries:
            record(send(delivery, client))
    finally:
        if own_client:
            client.close()
    return len(deliveries)


def replay(delivery: WebhookDelivery, actor: audit.Actor) -> WebhookDelivery:
    """Send a delivery again now (same unique key), whatever its status."""
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now_utc()
    db.session.flush()
    audit.record_activity(
        organization_id=delivery.organization_id,
        actor=actor,
        activity_type="webhook_delivery.replayed",
        resource_type="webhook_delivery",
        resource_id=str(delivery.lago_id),
        resource_label=delivery.event_type,
        customer_id=delivery.customer_id,
    )
    return delivery


def send_test(
    organization: Organization, endpoint: WebhookEndpoint, actor: audit.Actor
) -> WebhookDelivery:
    """Queue a `webhook.test` delivery to the endpoint; the jobs process sends it."""
    now = now_utc()
    delivery = WebhookDelivery(
        organization_id=organization.id,
        endpoint_id=endpoint.id,
        event_type=TEST_EVENT_TYPE,
        body=webhook_body(
            organization, TEST_EVENT_TYPE, "ping", {"sent_at": now.isoformat(), "test": True}
        ),
        next_attempt_at=now,
    )
    db.session.add(delivery)
    db.session.flush()
    _audit(endpoint, "webhook_endpoint.test_sent", actor, {})
    return delivery


def list_deliveries(
    organization: Organization,
    *,
    endpoint: WebhookEndpoint | None = None,
    customer: Customer | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """The latest deliveries of the organization, of one endpoint or about one customer."""
    query = select(WebhookDelivery).where(WebhookDelivery.organization_id == organization.id)
    if endpoint is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint.id)
    if customer is not None:
        query = query.where(WebhookDelivery.customer_id == customer.id)
    return list(
        db.session.scalars(
            query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(
                limit
            )
        )
    )
