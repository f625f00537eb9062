"""Wallets: prepaid credits a customer buys (paid) or is given (granted), consumed by its
subscription invoices when they are finalized (lago-api.md §16, §10.1).

- A credit is worth `rate_amount` of the wallet's currency (the customer's). One active wallet
  per customer (a partial unique index; writers take the organization's lock first).
- Granted credits settle at once. Paid credits produce a ``credit`` invoice, finalized and
  numbered like any invoice; their inbound transaction stays ``pending`` until that invoice's
  payment succeeds (`on_invoice_payment`, called by the invoicing service), then credits the
  balance. A failed payment fails the transaction.
- Consumption (`apply_prepaid_credits`) happens at finalization, after taxes: the wallet pays
  min(balance, what is left to pay), read under a row lock on the wallet so two finalizations
  never spend the same credits; the CHECK constraint on `balance_cents` is the last guard.
  Drafts and credit invoices never consume.
- The ongoing balance is the balance minus the usage of the customer's current periods
  (`ongoing_balance`), computed on read.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from billing.errors import InvariantBroken, NotFound, ValidationFailed
from billing.models import (
    Customer,
    Fee,
    FeeType,
    Invoice,
    InvoiceStatus,
    Organization,
    PaymentStatus,
    Subscription,
    SubscriptionStatus,
    TransactionKind,
    TransactionStatus,
    TransactionType,
    Wallet,
    WalletStatus,
    WalletTransaction,
)
from billing.money import currency_exponent, from_minor_units, parse_decimal, to_minor_units
from billing.periods import local_date
from billing.serializers import serialize_customer
from billing.serializers_wallets import serialize_wallet, serialize_wallet_transaction
from billing.services import audit, outbox
from billing.services.customers import get_customer
from billing.services.organizations import lock_organization
from billing.services.pagination import Page
from billing.services.usage import current_usage
from billing.timeutil import now_utc
from extensions import db

#: decimals kept on credits computed from an amount (Lago stores credits with 5)
CREDIT_STEP = Decimal("0.00001")
#: the largest value one transaction may move, in major units (keeps cents in a BIGINT)
MAX_AMOUNT = Decimal(10) ** 12
#: the kinds of credits a top-up may carry, in the order their transactions are created
TOP_UP_KINDS = ("paid_credits", "granted_credits", "voided_credits")
TRANSACTION_STATUSES = tuple(TransactionStatus)
TRANSACTION_KINDS = tuple(TransactionKind)
TRANSACTION_TYPES = tuple(TransactionType)
#: what a credit invoice deducts from its fees: nothing
_DEDUCTIONS = (
    "coupons_amount_cents",
    "progressive_billing_credit_amount_cents",
    "taxes_amount_cents",
    "credit_notes_amount_cents",
    "prepaid_credit_amount_cents",
    "total_paid_amount_cents",
)
#: what a credit invoice's amounts all are: its one fee's
_TOTALS = (
    "fees_amount_cents",
    "sub_total_excluding_taxes_amount_cents",
    "sub_total_including_taxes_amount_cents",
    "total_amount_cents",
)


@dataclass(frozen=True)
class OngoingBalance:
    """The balance once the usage of the current periods is paid (never below zero)."""

    usage_cents: int
    balance_cents: int
    credits_usage: Decimal
    credits_balance: Decimal


# ---------------------------------------------------------------------------------------------
# Credits and amounts


def credits_value(credits: Decimal, wallet: Wallet) -> int:
    """What `credits` are worth, in minor units of the wallet's currency."""
    return to_minor_units(credits * wallet.rate_amount, wallet.currency)


def credits_for(amount_cents: int, wallet: Wallet) -> Decimal:
    """The credits worth `amount_cents` (to 5 decimals); the whole balance for the whole
    balance, so a drained wallet has exactly 0 credits left."""
    if amount_cents >= wallet.balance_cents:
        return wallet.credits_balance
    credits = from_minor_units(amount_cents, wallet.currency) / wallet.rate_amount
    return min(credits.quantize(CREDIT_STEP, rounding=ROUND_HALF_UP), wallet.credits_balance)


def _parse_credits(
    data: dict[str, Any], key: str, rate: Decimal | None, errors: dict[str, list[str]]
) -> Decimal:
    """A credits field (decimal string, absent or null = 0); Lago's `invalid_<key>` when it
    is not a number, negative, or worth more than MAX_AMOUNT."""
    raw = data.get(key)
    if raw is None or raw == "":
        return Decimal(0)
    credits = parse_decimal(raw)
    if credits is None or credits < 0 or (rate is not None and credits * rate > MAX_AMOUNT):
        errors[key] = [f"invalid_{key}"]
        return Decimal(0)
    return credits


def _parse_rate(raw: Any, errors: dict[str, list[str]]) -> Decimal | None:
    if raw is None or raw == "":
        errors["rate_amount"] = ["value_is_mandatory"]
        return None
    rate = parse_decimal(raw)
    if rate is None:
        errors["rate_amount"] = ["value_is_invalid"]
    elif rate <= 0 or rate > MAX_AMOUNT:
        errors["rate_amount"] = ["value_is_out_of_range"]
    else:
        return rate
    return None


def _parse_expiration(
    data: dict[str, Any], errors: dict[str, list[str]], now: datetime
) -> datetime | None:
    raw = data.get("expiration_at")
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(str(raw))
        if value.tzinfo is None:
            value = value.replace(tzinfo=now.tzinfo)
        value = value.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved to UTC
        errors["expiration_at"] = ["invalid_date"]
        return None
    if value <= now:
        errors["expiration_at"] = ["invalid_date"]
        return None
    return value


def _parse_name(data: dict[str, Any], errors: dict[str, list[str]]) -> str | None:
    name = data.get("name")
    if name is None:
        return None
    if not isinstance(name, str):
        errors["name"] = ["value_is_invalid"]
        return None
    if len(name) > 255:
        errors["name"] = ["value_is_too_long"]
    return name.strip() or None


# ---------------------------------------------------------------------------------------------
# Create, update, terminate


def create_wallet(organization: Organization, data: dict[str, Any], actor: audit.Actor) -> Wallet:
    """A customer's wallet (`POST /wallets`), topped up with its `paid_credits` and
    `granted_credits`. Every bad field is one 422 and nothing is written."""
    now = now_utc()
    errors: dict[str, list[str]] = {}
    external_customer_id = data.get("external_customer_id")
    if not isinstance(external_customer_id, str) or not external_customer_id:
        raise ValidationFailed({"external_customer_id": ["value_is_mandatory"]})
    lock_organization(organization)
    customer = get_customer(organization, external_customer_id)
    rate = _parse_rate(data.get("rate_amount"), errors)
    name = _parse_name(data, errors)
    expiration_at = _parse_expiration(data, errors, now)
    credits = {key: _parse_credits(data, key, rate, errors) for key in TOP_UP_KINDS[:2]}
    currency = data.get("currency") or customer.currency
    if currency is None:
        errors["currency"] = ["value_is_mandatory"]
    elif not isinstance(currency, str) or not _is_currency(currency):
        errors["currency"] = ["value_is_invalid"]
    elif customer.currency is not None and customer.currency != currency:
        errors["currency"] = ["currencies_does_not_match"]
    if active_wallet(customer) is not None:
        errors["customer"] = ["wallet_already_exists"]
    if errors:
        raise ValidationFailed(errors)
    if not (rate is not None and isinstance(currency, str)):
        raise InvariantBroken("expected rate is not None and isinstance(currency, str)")
    if customer.currency is None:  # as Lago: the wallet sets a currency-less customer's
        _set_customer_currency(customer, currency, actor, now)
    wallet = Wallet(
        organization_id=organization.id,
        customer=customer,
        customer_id=customer.id,
        name=name,
        currency=currency,
        rate_amount=rate,
        expiration_at=expiration_at,
        created_at=now,
        updated_at=now,
    )
    db.session.add(wallet)
    db.session.flush()
    _record(wallet, "wallet.created", actor, _audited(wallet, credits))
    _emit_wallet(wallet, "wallet.created")
    _top_up(wallet, credits, actor, now)
    return wallet


def _set_customer_currency(
    customer: Customer, currency: str, actor: audit.Actor, at: datetime
) -> None:
    """The customer takes the wallet's currency: a change of the customer like any other."""
    customer.currency = currency
    customer.updated_at = at
    db.session.flush()
    audit.record_activity(
        organization_id=customer.organization_id,
        actor=actor,
        activity_type="customer.updated",
        resource_type="customer",
        resource_id=str(customer.lago_id),
        resource_label=customer.display_name,
        changes={"currency": [None, currency]},
        customer_id=customer.id,
    )
    outbox.emit(
        customer.organization_id, "customer.updated", "customer", serialize_customer(customer)
    )


def _is_currency(code: str) -> bool:
    try:
        currency_exponent(code)
    except ValueError:
        return False
    return True


def update_wallet(wallet: Wallet, data: dict[str, Any], actor: audit.Actor) -> Wallet:
    """Change the name and the expiration of an active wallet (`PUT /wallets/{id}`); its rate
    and currency never change (other keys are ignored, as Lago's strong params)."""
    now = now_utc()
    if not wallet.is_active:
        raise ValidationFailed({"wallet": ["wallet_is_terminated"]})
    errors: dict[str, list[str]] = {}
    changes: dict[str, list[Any]] = {}
    if "name" in data:
        name = _parse_name(data, errors)
        if name != wallet.name:
            changes["name"] = [wallet.name, name]
    if "expiration_at" in data:
        expiration_at = _parse_expiration(data, errors, now)
        if expiration_at != wallet.expiration_at:
            changes["expiration_at"] = [_iso(wallet.expiration_at), _iso(expiration_at)]
    if errors:
        raise ValidationFailed(errors)
    if not changes:
        return wallet
    if "name" in changes:
        wallet.name = changes["name"][1]
    if "expiration_at" in changes:
        wallet.expiration_at = expiration_at
    wallet.updated_at = now
    db.session.flush()
    _record(wallet, "wallet.updated", actor, changes)
    _emit_wallet(wallet, "wallet.updated")
    return wallet


def terminate_wallet(
    wallet: Wallet,
    actor: audit.Actor,
    *,
    void_remaining: bool = False,
    at: datetime | None = None,
) -> Wallet:
    """Terminate the wallet (`DELETE /wallets/{id}`, the expiration job, customer deletion);
    with `void_remaining` its credits left are voided first. A terminated wallet is returned
    as it is (Lago's terminate is idempotent)."""
    if not wallet.is_active:
        return wallet
    at = at or now_utc()
    if void_remaining and wallet.credits_balance > 0:
        _lock(wallet)
        _void(wallet, wallet.credits_balance, actor, at)
    wallet.terminate(at)
    db.session.flush()
    _record(wallet, "wallet.terminated", actor, {"status": ["active", "terminated"]})
    _emit_wallet(wallet, "wallet.terminated")
    return wallet


def terminate_customer_wallets(customer: Customer, actor: audit.Actor) -> list[Wallet]:
    """What deleting a customer does to its wallet: remaining credits voided, terminated."""
    wallet = active_wallet(customer)
    if wallet is None:
        return []
    return [terminate_wallet(wallet, actor, void_remaining=True)]


def terminate_expired_wallets(at: datetime | None = None) -> list[Wallet]:
    """Terminate the active wallets whose expiration time has passed (the expiration job);
    rows another process holds are skipped on PostgreSQL."""
    at = at or now_utc()
    query = (
        select(Wallet)
        .where(Wallet.status == WalletStatus.ACTIVE, Wallet.expiration_at <= at)
        .order_by(Wallet.expiration_at, Wallet.id)
        .limit(500)
    )
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    expired = list(db.session.scalars(query))
    return [terminate_wallet(wallet, audit.SYSTEM, at=at) for wallet in expired]


# ---------------------------------------------------------------------------------------------
# Transactions


def top_up(wallet: Wallet, data: dict[str, Any], actor: audit.Actor) -> list[WalletTransaction]:
    """`POST /wallet_transactions`: one transaction per kind of credits given (paid, granted,
    voided, in that order). Voiding more credits than the balance is refused."""
    errors: dict[str, list[str]] = {}
    credits = {key: _parse_credits(data, key, wallet.rate_amount, errors) for key in TOP_UP_KINDS}
    if not wallet.is_active:
        errors["wallet_id"] = ["wallet_is_terminated"]
    if errors:
        raise ValidationFailed(errors)
    _lock(wallet)
    if credits["voided_credits"] > wallet.credits_balance:
        raise ValidationFailed({"voided_credits": ["insufficient_credits"]})
    return _top_up(wallet, credits, actor, now_utc())


def _top_up(
    wallet: Wallet, credits: dict[str, Decimal], actor: audit.Actor, at: datetime
) -> list[WalletTransaction]:
    transactions = []
    if credits.get("paid_credits"):
        transactions.append(_purchase(wallet, credits["paid_credits"], actor, at))
    if credits.get("granted_credits"):
        transaction = _new_transaction(
            wallet,
            TransactionType.INBOUND,
            TransactionKind.GRANTED,
            credits["granted_credits"],
            credits_value(credits["granted_credits"], wallet),
            at,
        )
        _settle(transaction, actor, at, announce=False)
        transactions.append(transaction)
    if credits.get("voided_credits"):
        transactions.append(_void(wallet, credits["voided_credits"], actor, at))
    return transactions


def _new_transaction(
    wallet: Wallet,
    transaction_type: TransactionType,
    kind: TransactionKind,
    credits: Decimal,
    amount_cents: int,
    at: datetime,
    *,
    invoice_id: int | None = None,
) -> WalletTransaction:
    transaction = WalletTransaction(
        organization_id=wallet.organization_id,
        wallet=wallet,
        wallet_id=wallet.id,
        transaction_type=transaction_type,
        status=TransactionStatus.PENDING,
        transaction_status=kind,
        credit_amount=credits,
        amount_cents=amount_cents,
        invoice_id=invoice_id,
        created_at=at,
        updated_at=at,
    )
    db.session.add(transaction)
    return transaction


def _purchase(
    wallet: Wallet, credits: Decimal, actor: audit.Actor, at: datetime
) -> WalletTransaction:
    """Paid credits: a pending inbound transaction and its ``credit`` invoice (one ``credit``
    fee), finalized and numbered now through the invoicing service's own finalization; a
    zero-amount invoice is paid at once, so its credits settle at once."""
    # Imported here: invoicing calls this module back when it finalizes and when paid.
    from billing.services import invoicing  # noqa: PLC0415

    customer = wallet.customer
    amount_cents = credits_value(credits, wallet)
    today = local_date(at, customer.applicable_timezone)
    term = invoicing._net_payment_term(customer)
    invoice = Invoice(
        organization_id=wallet.organization_id,
        customer=customer,
        customer_id=customer.id,
        number=f"{customer.slug}-DRAFT",
        invoice_type="credit",
        status=InvoiceStatus.DRAFT,
        payment_status=PaymentStatus.PENDING,
        issuing_date=today,
        payment_due_date=today + timedelta(days=term),
        net_payment_term=term,
        currency=wallet.currency,
        created_at=at,
        updated_at=at,
        # A purchase of credits is untaxed (taxes are paid on what the credits buy) and nothing
        # is deducted from it: every amount of §10.1 is the fee's.
        **dict.fromkeys(_DEDUCTIONS, 0),
        **dict.fromkeys(_TOTALS, amount_cents),
    )
    invoice.fees.append(
        Fee(
            fee_type=FeeType.CREDIT,
            amount_cents=amount_cents,
            precise_amount=credits * wallet.rate_amount,
            currency=wallet.currency,
            units=credits,
            total_aggregated_units=credits,
            precise_unit_amount=wallet.rate_amount,
            invoice_display_name=wallet.name or "Prepaid credits",
            created_at=at,
        )
    )
    db.session.add(invoice)
    transaction = _new_transaction(
        wallet, TransactionType.INBOUND, TransactionKind.PURCHASED, credits, amount_cents, at
    )
    transaction.invoice = invoice
    db.session.flush()
    _record_transaction(transaction, actor)
    outbox.emit(
        wallet.organization_id,
        "wallet_transaction.created",
        "wallet_transaction",
        serialize_wallet_transaction(transaction),
    )
    invoicing._finalize(invoice, actor, at)
    outbox.emit(
        invoice.organization_id, "invoice.paid_credit_added", "invoice", invoicing._payload(invoice)
    )
    if invoice.payment_status == PaymentStatus.SUCCEEDED:
        _settle(transaction, actor, at, announce=True)
    return transaction


def _settle(
    transaction: WalletTransaction, actor: audit.Actor, at: datetime, *, announce: bool
) -> None:
    """Settle an inbound transaction: its credits join the balance (under the wallet's lock).
    A new transaction is announced as created; a pending one as updated (`announce`)."""
    wallet = transaction.wallet
    _lock(wallet)
    transaction.transition(TransactionStatus.SETTLED, at)
    wallet.credits_balance += transaction.credit_amount
    wallet.balance_cents += transaction.amount_cents
    wallet.updated_at = at
    db.session.flush()
    _record_transaction(transaction, actor, updated=announce)
    outbox.emit(
        wallet.organization_id,
        "wallet_transaction.updated" if announce else "wallet_transaction.created",
        "wallet_transaction",
        serialize_wallet_transaction(transaction),
    )


def _void(wallet: Wallet, credits: Decimal, actor: audit.Actor, at: datetime) -> WalletTransaction:
    """Remove `credits` (at most the balance) from the wallet: a settled outbound
    transaction. The caller holds the wallet's lock."""
    amount_cents = min(credits_value(credits, wallet), wallet.balance_cents)
    if credits == wallet.credits_balance:
        amount_cents = wallet.balance_cents
    transaction = _new_transaction(
        wallet, TransactionType.OUTBOUND, TransactionKind.VOIDED, credits, amount_cents, at
    )
    transaction.transition(TransactionStatus.SETTLED, at)
    wallet.credits_balance -= credits
    wallet.balance_cents -= amount_cents
    wallet.updated_at = at
    db.session.flush()
    _record_transaction(transaction, actor)
    outbox.emit(
        wallet.organization_id,
        "wallet_transaction.created",
        "wallet_transaction",
        serialize_wallet_transaction(transaction),
    )
    return transaction


def on_invoice_payment(invoice: Invoice, actor: audit.Actor) -> None:
    """A credit invoice's payment status changed, or it was voided: a successful payment of
    a finalized one settles its purchase (the credits join the balance); a failed payment or
    a void fails it. Other invoices are not this module's."""
    if invoice.invoice_type != "credit":
        return
    at = now_utc()
    paid = (
        invoice.payment_status == PaymentStatus.SUCCEEDED
        and invoice.status == InvoiceStatus.FINALIZED
    )
    lost = invoice.payment_status == PaymentStatus.FAILED or invoice.status == InvoiceStatus.VOIDED
    transactions = db.session.scalars(
        select(WalletTransaction).where(
            WalletTransaction.invoice_id == invoice.id,
            WalletTransaction.transaction_status == TransactionKind.PURCHASED,
            WalletTransaction.status != TransactionStatus.SETTLED,
        )
    )
    for transaction in transactions:
        if paid:
            _settle(transaction, actor, at, announce=True)
        elif lost and transaction.status == TransactionStatus.PENDING:
            transaction.transition(TransactionStatus.FAILED, at)
            db.session.flush()
            _record_transaction(transaction, actor, updated=True)
            outbox.emit(
                invoice.organization_id,
                "wallet_transaction.updated",
                "wallet_transaction",
                serialize_wallet_transaction(transaction),
            )


# ---------------------------------------------------------------------------------------------
# Consumption by invoices


def apply_prepaid_credits(invoices: Sequence[Any], at: datetime | None = None) -> None:
    """Let each customer's active wallet pay what its subscription invoices being finalized
    leave to pay, after taxes (§10.1): `prepaid_credit_amount_cents` grows and
    `total_amount_cents` shrinks by min(balance, total), and an outbound ``invoiced``
    transaction records it (at `at`, else at each invoice's creation). `invoices` are models
    or the invoicing service's in-memory new invoices (inserted already, so they have ids);
    the caller writes them.

    The wallets are read with a row lock (in id order: two finalizations wait for each other
    and never deadlock), so the second one sees what the first consumed; SQLite has one writer.
    """
    eligible = [
        invoice
        for invoice in invoices
        if invoice.invoice_type == "subscription" and invoice.total_amount_cents > 0
    ]
    if not eligible:
        return
    query = (
        select(Wallet)
        .where(
            Wallet.customer_id.in_(sorted({invoice.customer_id for invoice in eligible})),
            Wallet.status == WalletStatus.ACTIVE,
            Wallet.balance_cents > 0,
            or_(Wallet.expiration_at.is_(None), Wallet.expiration_at > (at or now_utc())),
        )
        .order_by(Wallet.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    wallets = {wallet.customer_id: wallet for wallet in db.session.scalars(query)}
    if not wallets:
        return
    for invoice in eligible:
        wallet = wallets.get(invoice.customer_id)
        if wallet is None or wallet.currency != invoice.currency or wallet.balance_cents <= 0:
            continue
        when = at or invoice.created_at
        amount_cents = min(wallet.balance_cents, invoice.total_amount_cents)
        credits = credits_for(amount_cents, wallet)
        transaction = _new_transaction(
            wallet,
            TransactionType.OUTBOUND,
            TransactionKind.INVOICED,
            credits,
            amount_cents,
            when,
            invoice_id=invoice.id,
        )
        transaction.transition(TransactionStatus.SETTLED, when)
        wallet.credits_balance -= credits
        wallet.balance_cents -= amount_cents
        wallet.consumed_credits += credits
        wallet.consumed_amount_cents += amount_cents
        wallet.last_consumed_credit_at = when
        wallet.updated_at = when
        invoice.prepaid_credit_amount_cents += amount_cents
        invoice.total_amount_cents -= amount_cents
        db.session.flush()
        _record_transaction(transaction, audit.SYSTEM, lago_invoice_id=invoice.lago_id)
        outbox.emit(
            wallet.organization_id,
            "wallet_transaction.created",
            "wallet_transaction",
            # not through the relationship: a bulk finalization's invoice is no model
            serialize_wallet_transaction(transaction, invoice.lago_id),
        )


def _lock(wallet: Wallet) -> None:
    """Take the wallet's row lock and read its balance afresh (PostgreSQL; SQLite has one
    writer)."""
    db.session.execute(
        select(Wallet)
        .where(Wallet.id == wallet.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


# ---------------------------------------------------------------------------------------------
# Reading


def active_wallet(customer: Customer) -> Wallet | None:
    """The customer's active wallet, if any."""
    return db.session.scalar(
        select(Wallet).where(
            Wallet.customer_id == customer.id, Wallet.status == WalletStatus.ACTIVE
        )
    )


def customer_wallets(customer: Customer) -> list[Wallet]:
    """The customer's wallets, the active one first, then newest first."""
    return list(
        db.session.scalars(
            select(Wallet)
            .where(Wallet.customer_id == customer.id)
            .order_by((Wallet.status == WalletStatus.ACTIVE).desc(), Wallet.created_at.desc())
        )
    )


def ongoing_balance(wallet: Wallet, at: datetime | None = None) -> OngoingBalance:
    """The balance minus the usage of the current periods of the customer's active
    subscriptions in the wallet's currency (the usage service's current usage)."""
    usage_cents = 0
    if wallet.is_active:
        subscriptions = db.session.scalars(
            select(Subscription)
            .where(
                Subscription.customer_id == wallet.customer_id,
                Subscription.status == SubscriptionStatus.ACTIVE,
            )
            .options(joinedload(Subscription.plan))
        )
        for subscription in subscriptions:
            if subscription.plan.amount_currency == wallet.currency:
                usage_cents += current_usage(subscription, at).total_amount_cents
    balance_cents = max(0, wallet.balance_cents - usage_cents)
    return OngoingBalance(
        usage_cents=usage_cents,
        balance_cents=balance_cents,
        credits_usage=credits_for_display(usage_cents, wallet),
        credits_balance=(
            wallet.credits_balance
            if usage_cents == 0
            else credits_for_display(balance_cents, wallet)
        ),
    )


def credits_for_display(amount_cents: int, wallet: Wallet) -> Decimal:
    """`amount_cents` in credits (to 5 decimals), not bounded by the balance."""
    credits = from_minor_units(amount_cents, wallet.currency) / wallet.rate_amount
    return credits.quantize(CREDIT_STEP, rounding=ROUND_HALF_UP).normalize()


def wallet_payload(wallet: Wallet) -> dict[str, Any]:
    """The wallet as the API and webhooks show it, ongoing balance included."""
    return serialize_wallet(wallet, ongoing_balance(wallet))


def get_wallet(organization: Organization, lago_id: str) -> Wallet:
    """The organization's wallet with this lago id; NotFound("wallet") otherwise."""
    key = _uuid(lago_id)
    wallet = None
    if key is not None:
        wallet = db.session.scalar(
            select(Wallet).where(Wallet.organization_id == organization.id, Wallet.lago_id == key)
        )
    if wallet is None:
        raise NotFound("wallet")
    return wallet


def find_wallet(organization: Organization, lago_id: Any) -> Wallet | None:
    """The wallet of a `wallet_id` field, or None (a 422 for the caller)."""
    try:
        return get_wallet(organization, str(lago_id)) if lago_id else None
    except NotFound:
        return None


def list_wallets(
    organization: Organization,
    *,
    customer: Customer | None = None,
    currency: str | None = None,
    page: int = 1,
    per_page: int = 100,
) -> Page[Wallet]:
    """The organization's (or one customer's) wallets, newest first."""
    conditions: list[Any] = [Wallet.organization_id == organization.id]
    if customer is not None:
        conditions.append(Wallet.customer_id == customer.id)
    if currency:
        conditions.append(Wallet.currency == currency)
    total = db.session.scalar(select(func.count(Wallet.id)).where(*conditions)) or 0
    items = db.session.scalars(
        select(Wallet)
        .where(*conditions)
        .order_by(Wallet.created_at.desc(), Wallet.id.asc())
        .offset((page - 1) * per_page)
        .limit(per_page)
        .options(joinedload(Wallet.customer))
    )
    return Page(list(items), total, page, per_page)


@dataclass
class TransactionFilters:
    statuses: list[str]
    kinds: list[str]
    types: list[str]


def list_transactions(
    wallet: Wallet, filters: TransactionFilters | None = None, *, page: int = 1, per_page: int = 100
) -> Page[WalletTransaction]:
    """The wallet's transactions, newest first (filtered on status, kind, direction)."""
    conditions: list[Any] = [WalletTransaction.wallet_id == wallet.id]
    if filters is not None:
        if filters.statuses:
            conditions.append(WalletTransaction.status.in_(filters.statuses))
        if filters.kinds:
            conditions.append(WalletTransaction.transaction_status.in_(filters.kinds))
        if filters.types:
            conditions.append(WalletTransaction.transaction_type.in_(filters.types))
    total = db.session.scalar(select(func.count(WalletTransaction.id)).where(*conditions)) or 0
    items = db.session.scalars(
        select(WalletTransaction)
        .where(*conditions)
        .order_by(WalletTransaction.created_at.desc(), WalletTransaction.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
        .options(joinedload(WalletTransaction.invoice))
    )
    return Page(list(items), total, page, per_page)


def get_transaction(organization: Organization, lago_id: str) -> WalletTransaction:
    key = _uuid(lago_id)
    transaction = None
    if key is not None:
        transaction = db.session.scalar(
            select(WalletTransaction).where(
                WalletTransaction.organization_id == organization.id,
                WalletTransaction.lago_id == key,
            )
        )
    if transaction is None:
        raise NotFound("wallet_transaction")
    return transaction


def credit_fee_item(fee: Fee) -> dict[str, Any]:
    """The `item` of a credit fee: the wallet transaction it bills (Lago's shape)."""
    transaction_id = db.session.scalar(
        select(WalletTransaction.lago_id).where(
            WalletTransaction.invoice_id == fee.invoice_id,
            WalletTransaction.transaction_status == TransactionKind.PURCHASED,
        )
    )
    return {
        "type": "credit",
        "code": "credit",
        "name": "credit",
        "invoice_display_name": fee.invoice_display_name,
        "filter_invoice_display_name": None,
        "filters": None,
        "lago_item_id": str(transaction_id) if transaction_id else None,
        "item_type": "WalletTransaction",
        "grouped_by": {},
    }


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Audit and outbox


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _audited(wallet: Wallet, credits: dict[str, Decimal]) -> dict[str, list[Any]]:
    changes: dict[str, list[Any]] = {
        "currency": [None, wallet.currency],
        "rate_amount": [None, str(wallet.rate_amount)],
    }
    if wallet.name:
        changes["name"] = [None, wallet.name]
    if wallet.expiration_at:
        changes["expiration_at"] = [None, _iso(wallet.expiration_at)]
    for key, value in credits.items():
        if value:
            changes[key] = [None, str(value)]
    return changes


def _label(wallet: Wallet) -> str:
    return wallet.name or f"Wallet ({wallet.currency})"


def _record(
    wallet: Wallet, activity_type: str, actor: audit.Actor, changes: dict[str, Any]
) -> None:
    """An entry on the customer's timeline; the label is the wallet's name."""
    audit.record_activity(
        organization_id=wallet.organization_id,
        actor=actor,
        activity_type=activity_type,
        resource_type="wallet",
        resource_id=str(wallet.lago_id),
        resource_label=_label(wallet),
        changes=changes,
        customer_id=wallet.customer_id,
    )


def _record_transaction(
    transaction: WalletTransaction,
    actor: audit.Actor,
    *,
    lago_invoice_id: Any = None,
    updated: bool = False,
) -> None:
    """A transaction created (what it moves) or updated (its new status) on the timeline."""
    wallet = transaction.wallet
    if updated:
        changes: dict[str, list[Any]] = {"status": ["pending", transaction.status]}
    else:
        changes = {
            "transaction_status": [None, transaction.transaction_status],
            "status": [None, transaction.status],
            "credit_amount": [None, str(transaction.credit_amount)],
            "amount_cents": [None, transaction.amount_cents],
        }
        if lago_invoice_id is not None:
            changes["lago_invoice_id"] = [None, str(lago_invoice_id)]
    audit.record_activity(
        organization_id=wallet.organization_id,
        actor=actor,
        activity_type="wallet_transaction.updated" if updated else "wallet_transaction.created",
        resource_type="wallet_transaction",
        resource_id=str(transaction.lago_id),
        resource_label=_label(wallet),
        changes=changes,
        customer_id=wallet.customer_id,
    )


def _emit_wallet(wallet: Wallet, event_type: str) -> None:
    outbox.emit(wallet.organization_id, event_type, "wallet", wallet_payload(wallet))
