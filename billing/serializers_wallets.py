"""Wallets and wallet transactions as Lago's v1 API shows them (lago-api.md §16); the API and
the outbox share these. Credit amounts are decimal strings, `*_cents` integers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billing.models import Wallet, WalletTransaction
from billing.money import from_minor_units
from billing.serializers_usage import units_text
from billing.timeutil import iso_utc

if TYPE_CHECKING:
    from billing.services.wallets import OngoingBalance


def serialize_wallet(wallet: Wallet, ongoing: OngoingBalance) -> dict[str, Any]:
    customer = wallet.customer
    return {
        "lago_id": str(wallet.lago_id),
        "lago_customer_id": str(customer.lago_id),
        "external_customer_id": customer.external_id,
        "status": wallet.status,
        "currency": wallet.currency,
        "name": wallet.name,
        "code": None,
        "priority": 50,
        "rate_amount": units_text(wallet.rate_amount),
        "credits_balance": units_text(wallet.credits_balance),
        "balance_cents": wallet.balance_cents,
        "consumed_credits": units_text(wallet.consumed_credits),
        "consumed_amount_cents": wallet.consumed_amount_cents,
        "created_at": iso_utc(wallet.created_at),
        "expiration_at": iso_utc(wallet.expiration_at),
        "last_balance_sync_at": iso_utc(wallet.updated_at),
        "last_consumed_credit_at": iso_utc(wallet.last_consumed_credit_at),
        "terminated_at": iso_utc(wallet.terminated_at),
        "ongoing_balance_cents": ongoing.balance_cents,
        "ongoing_usage_balance_cents": ongoing.usage_cents,
        "credits_ongoing_balance": units_text(ongoing.credits_balance),
        "credits_ongoing_usage_balance": units_text(ongoing.credits_usage),
        "invoice_requires_successful_payment": False,
        "recurring_transaction_rules": [],
        "applies_to": {"fee_types": [], "billable_metric_codes": []},
        "paid_top_up_min_amount_cents": None,
        "paid_top_up_max_amount_cents": None,
        "metadata": {},
        "billing_entity_code": None,
    }


def serialize_wallet_transaction(
    transaction: WalletTransaction, lago_invoice_id: Any = None
) -> dict[str, Any]:
    """`lago_invoice_id` is given by callers whose invoice is not a loaded model (an invoice
    being finalized in bulk); otherwise the transaction's invoice is read."""
    wallet = transaction.wallet
    if lago_invoice_id is None and transaction.invoice_id is not None:
        invoice = transaction.invoice
        lago_invoice_id = invoice.lago_id if invoice is not None else None
    return {
        "lago_id": str(transaction.lago_id),
        "lago_wallet_id": str(wallet.lago_id),
        "lago_invoice_id": str(lago_invoice_id) if lago_invoice_id is not None else None,
        "lago_credit_note_id": None,
        "lago_voided_invoice_id": None,
        "status": transaction.status,
        "source": "manual",
        "transaction_status": transaction.transaction_status,
        "transaction_type": transaction.transaction_type,
        "amount": str(from_minor_units(transaction.amount_cents, wallet.currency)),
        "amount_cents": transaction.amount_cents,
        "credit_amount": units_text(transaction.credit_amount),
        "priority": 50,
        "settled_at": iso_utc(transaction.settled_at),
        "failed_at": iso_utc(transaction.failed_at),
        "created_at": iso_utc(transaction.created_at),
        "metadata": [],
        "name": None,
        "invoice_requires_successful_payment": False,
    }
