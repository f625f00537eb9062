"""The customer portal: signed links, visits, and what the portal pages read and change.

A portal link carries an itsdangerous timed signature (salt `ledgerline.portal`) over the
organization id, the customer's id and the customer's `portal_version`; bumping the version
revokes every outstanding link. The clock is `billing.timeutil.now_utc`, so tests freeze it.
Nothing here knows about Flask requests: views pass the secret, the visitor's address and agent.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from billing.errors import NotFound
from billing.models import (
    ActivityLog,
    CreditNote,
    Customer,
    Invoice,
    Organization,
    Subscription,
    Wallet,
)
from billing.models.invoices import InvoiceStatus, PaymentStatus
from billing.models.subscriptions import SubscriptionStatus
from billing.money import parse_decimal, to_minor_units
from billing.pdf import LOCALES
from billing.services import (
    audit,
    customers,
    documents,
    invoicing,
    subscriptions,
    wallets,
)
from billing.services.pagination import Page
from billing.timeutil import now_utc
from extensions import db

SALT = "ledgerline.portal"
FORM_SALT = "ledgerline.portal.form"
#: a visit is logged on the customer's timeline at most once per link in this interval
VISIT_INTERVAL = timedelta(minutes=30)
VISITED = "portal.visited"
LINKS_REVOKED = "customer.portal_links_revoked"
#: invoice history filters (DESIGN.md: paid, unpaid, overdue)
INVOICE_FILTERS = ("paid", "unpaid", "overdue")
INVOICES_PER_PAGE = 20
#: the billing details a customer may change in the portal (payload keys of the customer API)
EDITABLE_FIELDS = (
    "name",
    "legal_name",
    "email",
    "address_line1",
    "address_line2",
    "zipcode",
    "city",
    "state",
    "country",
    "tax_identification_number",
    "document_locale",
)


class PortalLinkInvalid(Exception):
    """A link that opens nothing: `reason` is tampered, expired or revoked. `customer` is set
    when the signature was genuine: its organization's origins may still frame the error page,
    shown in the customer's language."""

    def __init__(self, reason: str, customer: Customer | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.customer = customer


class _ClockSigner(TimestampSigner):
    """Timestamps from the domain's clock (frozen in tests) instead of time.time()."""

    def get_timestamp(self) -> int:
        return int(now_utc().timestamp())


def _serializer(secret_key: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=salt, signer=_ClockSigner)


@dataclass(frozen=True)
class PortalAccess:
    """A verified link: whose portal it opens."""

    organization: Organization
    customer: Customer
    token: str

    @property
    def fingerprint(self) -> str:
        """A short, stable digest of the link (what the timeline records instead of the link)."""
        return hashlib.sha256(self.token.encode()).hexdigest()[:16]

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor(type="portal", source="portal", id=self.fingerprint, label="customer")


# --- links ----------------------------------------------------------------------------------


def issue_token(secret_key: str, customer: Customer) -> str:
    """A fresh signed token for the customer's portal (valid until it expires or is revoked)."""
    payload = [customer.organization_id, customer.lago_id.hex, customer.portal_version]
    return str(_serializer(secret_key, SALT).dumps(payload))


def portal_url(base_url: str, secret_key: str, customer: Customer) -> str:
    """The absolute portal link of the customer, under `base_url` (PUBLIC_URL)."""
    return f"{base_url.rstrip('/')}/portal/{issue_token(secret_key, customer)}/"


def open_link(secret_key: str, token: str, max_age: int) -> PortalAccess:
    """The portal `token` opens; PortalLinkInvalid when it is tampered, expired or revoked.

    A link is valid for `max_age` seconds: at exactly `max_age` after signing it has expired.
    """
    try:
        payload, signed_at = _serializer(secret_key, SALT).loads(token, return_timestamp=True)
    except (BadData, ValueError, TypeError):
        raise PortalLinkInvalid("tampered") from None
    if not (
        isinstance(payload, list)
        and len(payload) == 3
        and all(isinstance(item, int) and not isinstance(item, bool) for item in payload[::2])
        and isinstance(payload[1], str)
    ):
        raise PortalLinkInvalid("tampered")
    organization_id, customer_hex, version = payload
    try:
        customer_id = uuid.UUID(hex=customer_hex)
    except ValueError:
        raise PortalLinkInvalid("tampered") from None
    customer = db.session.scalar(
        select(Customer)
        .where(Customer.lago_id == customer_id, Customer.organization_id == organization_id)
        .options(joinedload(Customer.organization))
    )
    if customer is None:
        raise PortalLinkInvalid("revoked")
    age = now_utc() - signed_at.astimezone(UTC)
    if age >= timedelta(seconds=max_age) or age < -timedelta(minutes=5):
        raise PortalLinkInvalid("expired", customer)
    if version != customer.portal_version or customer.deleted_at is not None:
        raise PortalLinkInvalid("revoked", customer)
    return PortalAccess(customer.organization, customer, token)


def revoke_links(customer: Customer, actor: audit.Actor) -> None:
    """Kill every outstanding link of the customer (bump its version) and say so on its timeline."""
    db.session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
    db.session.refresh(customer, ["portal_version"])  # the committed version, under the lock
    before = customer.portal_version
    customer.portal_version = before + 1
    audit.record_activity(
        organization_id=customer.organization_id,
        actor=actor,
        activity_type=LINKS_REVOKED,
        resource_type="customer",
        resource_id=str(customer.lago_id),
        resource_label=customer.display_name,
        changes={"portal_version": [before, customer.portal_version]},
        customer_id=customer.id,
    )
    db.session.flush()


def _recent_visit(access: PortalAccess) -> Any:
    return (
        select(ActivityLog.id)
        .where(
            ActivityLog.customer_id == access.customer.id,
            ActivityLog.activity_type == VISITED,
            ActivityLog.actor_id == access.fingerprint,
            ActivityLog.created_at > now_utc() - VISIT_INTERVAL,
        )
        .limit(1)
    )


def visit_logged_recently(access: PortalAccess) -> bool:
    """Whether a visit through this link is on the timeline from the last 30 minutes."""
    return db.session.scalar(_recent_visit(access)) is not None


def record_visit(access: PortalAccess, ip_address: str | None, user_agent: str | None) -> bool:
    """Log the visit on the customer's timeline unless this link was logged in the last
    30 minutes; returns whether an entry was written. The customer's row lock makes two
    simultaneous first requests write one entry."""
    customer = access.customer
    db.session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
    if visit_logged_recently(access):
        return False
    audit.record_activity(
        organization_id=customer.organization_id,
        actor=access.actor,
        activity_type=VISITED,
        resource_type="customer",
        resource_id=str(customer.lago_id),
        resource_label=customer.display_name,
        changes={
            "ip_address": [None, (ip_address or "")[:64] or None],
            "user_agent": [None, (user_agent or "")[:255] or None],
        },
        customer_id=customer.id,
    )
    db.session.flush()
    return True


# --- signed form nonces (self-service writes carry one; no cookie, no session) --------------


def form_nonce(secret_key: str, access: PortalAccess) -> str:
    """A signed value bound to this link (unique: a random part), put in the portal's forms;
    a cross-site form cannot forge one without the secret key."""
    return str(_serializer(secret_key, FORM_SALT).dumps([access.fingerprint, secrets.token_hex(8)]))


def check_form_nonce(secret_key: str, access: PortalAccess, nonce: str, max_age: int) -> bool:
    """Whether `nonce` was signed by us for this very link less than `max_age` seconds ago."""
    try:
        payload, signed_at = _serializer(secret_key, FORM_SALT).loads(nonce, return_timestamp=True)
    except (BadData, ValueError, TypeError):
        return False
    if now_utc() - signed_at.astimezone(UTC) >= timedelta(seconds=max_age):
        return False
    return isinstance(payload, list) and len(payload) == 2 and payload[0] == access.fingerprint


# --- locale ---------------------------------------------------------------------------------


def portal_locale(customer: Customer, requested: str | None = None) -> str:
    """The language of the visit: the one asked for (if supported), else the customer's
    document locale, the organization's, English (DESIGN.md, Locales)."""
    for candidate in (requested, customer.document_locale, customer.organization.document_locale):
        if candidate in LOCALES:
            return str(candidate)
    return "en"


# --- pages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceQuery:
    #: one of INVOICE_FILTERS, or "" for every finalized invoice
    status: str = ""
    #: part of an invoice number, or an amount ("120", "120.50", "1,234.00")
    search: str = ""
    page: int = 1


def search_amount(text: str, currency: str | None) -> int | None:
    """The search text as an amount in minor units of `currency` (None if it is no amount)."""
    if not currency:
        return None
    cleaned = text.strip().replace(" ", "").replace("\u00a0", "")
    if "," in cleaned and "." not in cleaned and len(cleaned.rsplit(",", 1)[1]) != 3:
        cleaned = cleaned.replace(",", ".")  # 120,50 written the European way
    cleaned = cleaned.replace(",", "")
    value = parse_decimal(cleaned)
    if value is None or value < 0 or value > Decimal(10) ** 15:
        return None
    try:
        return to_minor_units(value, currency)
    except (ValueError, ArithmeticError):
        return None


def invoice_history(customer: Customer, query: InvoiceQuery) -> Page[Invoice]:
    """One page of the customer's finalized invoices, newest first, filtered and searched."""
    filters = invoicing.InvoiceFilters(customer_id=customer.id, statuses=[InvoiceStatus.FINALIZED])
    if query.status == "paid":
        filters.payment_statuses = [PaymentStatus.SUCCEEDED]
    elif query.status == "unpaid":
        filters.payment_statuses = [PaymentStatus.PENDING, PaymentStatus.FAILED]
    elif query.status == "overdue":
        filters.payment_overdue = True
    search = query.search.strip()[:64]
    if search:
        filters.search_term = search
        filters.search_amount_cents = search_amount(search, customer.currency)
    return invoicing.list_invoices(
        customer.organization, filters, page=max(query.page, 1), per_page=INVOICES_PER_PAGE
    )


def overdue_invoices(customer: Customer) -> list[Invoice]:
    """The customer's unpaid invoices past their due date, oldest due first (the banner)."""
    from billing.services import mail  # noqa: PLC0415

    return mail.overdue_invoices(customer)


def downloadable_invoice(customer: Customer, invoice_id: str) -> Invoice:
    """The customer's finalized invoice with this id; NotFound for anything else (another
    customer's, another organization's, a draft, a malformed id)."""
    invoice = invoicing.get_invoice(
        customer.organization, invoice_id, status=InvoiceStatus.FINALIZED
    )
    if invoice.customer_id != customer.id:
        raise NotFound("invoice")
    return invoice


@dataclass(frozen=True)
class PrepaidCredits:
    """The customer's active wallet as the overview shows it."""

    wallet: Wallet
    #: what the current periods' usage leaves of the balance
    ongoing: wallets.OngoingBalance


def prepaid_credits(customer: Customer) -> PrepaidCredits | None:
    wallet = wallets.active_wallet(customer)
    return None if wallet is None else PrepaidCredits(wallet, wallets.ongoing_balance(wallet))


def customer_credit_notes(customer: Customer, limit: int = 20) -> list[CreditNote]:
    """The customer's latest credit notes (voided ones too: their PDF says so), newest first."""
    return list(
        db.session.scalars(
            select(CreditNote)
            .where(CreditNote.customer_id == customer.id)
            .order_by(CreditNote.created_at.desc(), CreditNote.id.desc())
            .limit(limit)
        )
    )


def downloadable_credit_note(customer: Customer, credit_note_id: str) -> CreditNote:
    """The customer's credit note with this id; NotFound for anything else."""
    try:
        key = uuid.UUID(credit_note_id)
    except ValueError:
        raise NotFound("credit_note") from None
    credit_note = db.session.scalar(
        select(CreditNote).where(CreditNote.lago_id == key, CreditNote.customer_id == customer.id)
    )
    if credit_note is None:
        raise NotFound("credit_note")
    return credit_note


def portal_credit_note_pdf(credit_note: CreditNote) -> bytes:
    """The credit note's PDF: the stored one, else rendered now (a portal page stores nothing)."""
    return documents.stored_pdf("credit_note", credit_note.id) or documents.render_pdf(
        "credit_note", credit_note
    )


def active_subscriptions(customer: Customer) -> list[Subscription]:
    """The customer's active subscriptions, newest first (pending ones have no usage yet)."""
    return [
        subscription
        for subscription in subscriptions.customer_subscriptions(customer)
        if subscription.status == SubscriptionStatus.ACTIVE
    ]


def update_billing_details(access: PortalAccess, values: dict[str, str]) -> Customer:
    """Apply the portal's billing-details form through the customer service (same validation,
    audit entry by the portal, `customer.updated` webhook); ValidationFailed on bad input."""
    payload: dict[str, Any] = {"external_id": access.customer.external_id}
    for key in EDITABLE_FIELDS:
        if key == "document_locale":
            payload["billing_configuration"] = {"document_locale": values.get(key) or None}
        else:
            payload[key] = (values.get(key) or "").strip() or None
    if payload["country"]:
        payload["country"] = payload["country"].upper()
    return customers.update_customer(access.organization, access.customer, payload, access.actor)


# --- PDF --------------------------------------------------------------------------------------


def portal_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice's PDF for the portal: the stored one, else rendered now the same way (a
    portal page is a read: it stores nothing)."""
    return documents.stored_pdf("invoice", invoice.id) or documents.render_pdf("invoice", invoice)
