"""Stripe's webhook: signed events that become payment records and invoice payment statuses.

Signature (Stripe's scheme): the `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=…]`
(other schemes such as `v0` are ignored); each `v1` is a candidate HMAC-SHA256 of
`"<t>.<raw body>"` keyed with the endpoint's signing secret (`whsec_…`, used as is). One
matching `v1` is enough; a timestamp more than 300 s away from now is refused, so a captured
request cannot be replayed later.

The organization: `/hooks/stripe/<organization lago_id>` checks that organization's secret;
plain `/hooks/stripe` tries each organization that has a Stripe secret set and takes the one
whose secret verifies.

Events (`data.object`):
- `payment_intent.succeeded` records a provider payment of `amount_received` on the invoice it
  pays (or marks an earlier failed attempt of the same intent as succeeded);
- `payment_intent.payment_failed` records the failed attempt (it pays nothing) and sets the
  invoice's payment status to `failed` while something is due;
- `charge.refunded` sets the refunded amount of the payment of the charge's intent
  (`amount_refunded`, cumulative): what it counts for on the invoice shrinks, and the invoice
  is pending again.
The invoice is the one named by `metadata.lago_invoice_id` (or `metadata.invoice_id`) of the
object; without either, the oldest finalized unpaid invoice of the customer whose
`provider_customer_id` is the object's `customer`, in its currency, whose amount due is exactly
the amount. An event that matches nothing, or whose amount is more than is due, is kept as
`unmatched` (answered 200, so Stripe stops retrying; agents see it in the settings' log).
Other event types are acknowledged and kept as `ignored`. An event id seen before is a no-op
(a unique key on the organization, provider and event id).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from billing.errors import ValidationFailed
from billing.models import (
    Customer,
    Invoice,
    InvoiceStatus,
    Organization,
    Payment,
    PaymentRecordStatus,
    PaymentStatus,
    PaymentType,
    ProviderEvent,
    ProviderEventOutcome,
)
from billing.services import audit
from billing.services.payments import (
    lock_invoice,
    record_payment_activity,
    settle_payment_status,
)
from billing.timeutil import now_utc
from extensions import db

log = logging.getLogger(__name__)

PROVIDER = "stripe"
TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 1024 * 1024
ACTOR = audit.Actor(type="webhook", source="webhook", label="Stripe")
HANDLED_TYPES = ("payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded")


class BadSignature(Exception):
    """Missing or malformed header, no matching v1, or a stale timestamp: 400, nothing kept."""


def verify_signature(secret: str, header: str, body: bytes, now: datetime | None = None) -> None:
    """Raise BadSignature unless `header` signs `body` with `secret` within the tolerance."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.lower())
    if timestamp is None or not candidates or not secret:
        raise BadSignature("malformed header")
    current = (now or now_utc()).timestamp()
    if abs(current - timestamp) > TOLERANCE_SECONDS:
        raise BadSignature("stale timestamp")
    expected = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise BadSignature("no matching signature")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """A `Stripe-Signature` value for `body` (for the demo and tools; tests sign on their own)."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def authenticate(organization_ref: str | None, header: str, body: bytes) -> Organization:
    """The organization whose Stripe secret signed the request (see the module's docstring);
    BadSignature otherwise (the caller is not told why)."""
    if not header:
        raise BadSignature("missing header")
    if organization_ref is not None:
        try:
            lago_id = uuid.UUID(organization_ref)
        except ValueError:
            raise BadSignature("unknown organization") from None
        organization = db.session.scalar(
            select(Organization).where(Organization.lago_id == lago_id)
        )
        if organization is None or not organization.stripe_webhook_secret:
            raise BadSignature("unknown organization")
        verify_signature(organization.stripe_webhook_secret, header, body)
        return organization
    organizations = db.session.scalars(
        select(Organization)
        .where(Organization.stripe_webhook_secret.is_not(None))
        .order_by(Organization.id)
    )
    error = BadSignature("no organization's secret matches")
    for organization in organizations:
        try:
            verify_signature(organization.stripe_webhook_secret or "", header, body)
        except BadSignature as exc:
            error = exc
            continue
        return organization
    raise error


@dataclass
class Outcome:
    outcome: str
    detail: str | None = None
    payment: Payment | None = None
    duplicate: bool = False


def receive_event(organization: Organization, event: dict[str, Any]) -> Outcome:
    """Apply one verified event (see the module's docstring) and log it; a repeated event id
    changes nothing. The caller commits."""
    event_id, event_type = str(event.get("id") or ""), str(event.get("type") or "")
    if _seen(organization, event_id):
        return Outcome("duplicate", duplicate=True)
    try:
        with db.session.begin_nested():
            logged = ProviderEvent(
                organization_id=organization.id,
                provider=PROVIDER,
                event_id=event_id[:255],
                event_type=event_type[:128],
                outcome=ProviderEventOutcome.IGNORED,
                received_at=now_utc(),
            )
            db.session.add(logged)
            db.session.flush()
    except IntegrityError:
        # the same event delivered twice at once: the other delivery applies it
        return Outcome("duplicate", duplicate=True)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if event_type not in HANDLED_TYPES:
        result = Outcome(ProviderEventOutcome.IGNORED, f"event type {event_type} not handled")
    elif not isinstance(obj, dict):
        result = Outcome(ProviderEventOutcome.UNMATCHED, "no data.object")
    elif event_type == "charge.refunded":
        result = _refunded(organization, obj)
    else:
        result = _payment_intent(organization, obj, succeeded=event_type.endswith("succeeded"))
    logged.outcome = result.outcome
    logged.detail = result.detail
    logged.payment_id = result.payment.id if result.payment is not None else None
    db.session.flush()
    if result.outcome != ProviderEventOutcome.RECORDED:
        log.info("stripe event %r (%r) %s: %s", event_id, event_type, result.outcome, result.detail)
    return result


def _seen(organization: Organization, event_id: str) -> bool:
    return (
        db.session.scalar(
            select(ProviderEvent.id).where(
                ProviderEvent.organization_id == organization.id,
                ProviderEvent.provider == PROVIDER,
                ProviderEvent.event_id == event_id[:255],
            )
        )
        is not None
    )


def _amount(obj: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _metadata_invoice(
    organization: Organization, obj: dict[str, Any]
) -> tuple[bool, Invoice | None]:
    """(whether the metadata names an invoice, the organization's invoice it names)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return False, None
    ref = metadata.get("lago_invoice_id") or metadata.get("invoice_id")
    if not ref:
        return False, None
    try:
        lago_id = uuid.UUID(str(ref))
    except ValueError:
        return True, None
    return True, db.session.scalar(
        select(Invoice).where(
            Invoice.organization_id == organization.id, Invoice.lago_id == lago_id
        )
    )


def _customer_invoice(
    organization: Organization, obj: dict[str, Any], amount: int, currency: str
) -> Invoice | None:
    """The oldest finalized unpaid invoice of the customer with this provider customer id,
    in `currency`, whose amount due is exactly `amount`."""
    provider_customer = obj.get("customer")
    if not isinstance(provider_customer, str) or not provider_customer:
        return None
    candidates = db.session.scalars(
        select(Invoice)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(
            Invoice.organization_id == organization.id,
            Customer.provider_customer_id == provider_customer,
            Invoice.status == InvoiceStatus.FINALIZED,
            Invoice.payment_status != PaymentStatus.SUCCEEDED,
            Invoice.currency == currency,
        )
        .order_by(Invoice.issuing_date, Invoice.id)
    )
    for invoice in candidates:
        if invoice.total_due_amount_cents == amount:
            return invoice
    return None


def _payment_by_intent(organization: Organization, intent_id: str) -> Payment | None:
    return db.session.scalar(
        select(Payment).where(
            Payment.organization_id == organization.id,
            Payment.provider == PROVIDER,
            Payment.provider_payment_id == intent_id,
        )
    )


def _payment_intent(organization: Organization, obj: dict[str, Any], *, succeeded: bool) -> Outcome:
    intent_id = obj.get("id")
    currency = str(obj.get("currency") or "").upper()
    amount = _amount(obj, "amount_received", "amount") if succeeded else _amount(obj, "amount")
    if not isinstance(intent_id, str) or not intent_id or amount is None or not currency:
        return Outcome(ProviderEventOutcome.UNMATCHED, "no payment intent id, amount or currency")
    existing = _payment_by_intent(organization, intent_id)
    if existing is not None:
        return _update_intent(existing, amount, succeeded=succeeded)
    named, invoice = _metadata_invoice(organization, obj)
    if not named:
        invoice = _customer_invoice(organization, obj, amount, currency)
    if invoice is None:
        return Outcome(ProviderEventOutcome.UNMATCHED, "no invoice matches")
    if invoice.currency != currency:
        return Outcome(ProviderEventOutcome.UNMATCHED, f"currency {currency} is not the invoice's")
    if invoice.status != InvoiceStatus.FINALIZED:
        return Outcome(
            ProviderEventOutcome.UNMATCHED, f"invoice {invoice.number} is {invoice.status}"
        )
    lock_invoice(invoice)
    if succeeded and amount > invoice.total_due_amount_cents:
        return Outcome(
            ProviderEventOutcome.UNMATCHED,
            f"{amount} is more than the {invoice.total_due_amount_cents} due on {invoice.number}",
        )
    now = now_utc()
    payment = Payment(
        organization_id=organization.id,
        customer_id=invoice.customer_id,
        invoice=invoice,
        invoice_id=invoice.id,
        amount_cents=amount,
        currency=invoice.currency,
        refunded_amount_cents=0,
        payment_type=PaymentType.PROVIDER,
        status=PaymentRecordStatus.SUCCEEDED if succeeded else PaymentRecordStatus.FAILED,
        method="stripe",
        reference=None,
        paid_at=_created_at(obj) or now,
        provider=PROVIDER,
        provider_payment_id=intent_id[:255],
        created_at=now,
        updated_at=now,
    )
    db.session.add(payment)
    if succeeded:
        invoice.total_paid_amount_cents += amount
    db.session.flush()
    record_payment_activity(payment, "payment.created" if succeeded else "payment.failed", ACTOR)
    settle_payment_status(invoice, ACTOR, failed_attempt=not succeeded)
    return Outcome(ProviderEventOutcome.RECORDED, payment=payment)


def _update_intent(payment: Payment, amount: int, *, succeeded: bool) -> Outcome:
    """A later event of an intent already recorded: a success after a failed attempt pays
    the invoice; anything else changes nothing."""
    if not succeeded or payment.status != PaymentRecordStatus.FAILED:
        return Outcome(ProviderEventOutcome.UNMATCHED, "payment intent already recorded", payment)
    invoice = payment.invoice
    lock_invoice(invoice)
    if amount > invoice.total_due_amount_cents:
        return Outcome(
            ProviderEventOutcome.UNMATCHED,
            f"{amount} is more than the {invoice.total_due_amount_cents} due on {invoice.number}",
            payment,
        )
    payment.status = PaymentRecordStatus.SUCCEEDED
    payment.amount_cents = amount
    payment.updated_at = now_utc()
    invoice.total_paid_amount_cents += amount
    db.session.flush()
    record_payment_activity(payment, "payment.updated", ACTOR, {"status": ["failed", "succeeded"]})
    settle_payment_status(invoice, ACTOR)
    return Outcome(ProviderEventOutcome.RECORDED, payment=payment)


def _refunded(organization: Organization, charge: dict[str, Any]) -> Outcome:
    intent_id = charge.get("payment_intent") or charge.get("id")
    refunded = charge.get("amount_refunded")
    if not isinstance(intent_id, str) or not isinstance(refunded, int) or refunded < 0:
        return Outcome(ProviderEventOutcome.UNMATCHED, "no payment intent or amount_refunded")
    payment = _payment_by_intent(organization, intent_id)
    if payment is None or payment.status == PaymentRecordStatus.FAILED:
        return Outcome(ProviderEventOutcome.UNMATCHED, f"no payment recorded for {intent_id}")
    invoice = payment.invoice
    lock_invoice(invoice)
    db.session.refresh(payment)
    refunded = min(refunded, payment.amount_cents)
    delta = refunded - payment.refunded_amount_cents
    if delta <= 0:
        return Outcome(ProviderEventOutcome.UNMATCHED, "refund already recorded", payment)
    before = [payment.refunded_amount_cents, refunded]
    payment.refunded_amount_cents = refunded
    if refunded == payment.amount_cents:
        payment.status = PaymentRecordStatus.REFUNDED
    payment.updated_at = now_utc()
    invoice.total_paid_amount_cents = max(0, invoice.total_paid_amount_cents - delta)
    db.session.flush()
    record_payment_activity(payment, "payment.refunded", ACTOR, {"refunded_amount_cents": before})
    settle_payment_status(invoice, ACTOR)
    return Outcome(ProviderEventOutcome.RECORDED, payment=payment)


def _created_at(obj: dict[str, Any]) -> datetime | None:
    created = obj.get("created")
    if isinstance(created, int) and not isinstance(created, bool) and created > 0:
        try:
            return datetime.fromtimestamp(created, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def set_webhook_secret(organization: Organization, secret: str | None, actor: audit.Actor) -> bool:
    """Set (or with None remove) the organization's Stripe signing secret: `whsec_` and up to
    250 visible characters, else ValidationFailed({"secret": [...]}). The audit log records
    that it changed, never the secret. Returns whether it changed."""
    if secret is not None:
        secret = secret.strip()
        if not secret:
            raise ValidationFailed({"secret": ["value_is_mandatory"]})
        if not re.fullmatch(r"whsec_[\x21-\x7e]{1,250}", secret):
            raise ValidationFailed({"secret": ["value_is_invalid"]})
    if secret == organization.stripe_webhook_secret:
        return False
    before = "set" if organization.stripe_webhook_secret else None
    organization.stripe_webhook_secret = secret
    db.session.flush()
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type="organization.updated",
        resource_type="organization",
        resource_id=str(organization.lago_id),
        resource_label=organization.name,
        changes={"stripe_webhook_secret": [before, "changed" if secret else None]},
    )
    return True


def recent_events(organization: Organization, limit: int = 20) -> list[ProviderEvent]:
    """The organization's latest provider events, newest first (the settings page's log)."""
    return list(
        db.session.scalars(
            select(ProviderEvent)
            .where(ProviderEvent.organization_id == organization.id)
            .order_by(ProviderEvent.received_at.desc(), ProviderEvent.id.desc())
            .limit(limit)
        )
    )
