"""/api/v1/wallets and /api/v1/wallet_transactions: prepaid credits (lago-api.md §16)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.errors import ValidationFailed
from billing.models import Wallet
from billing.serializers_wallets import serialize_wallet_transaction
from billing.services import wallets as wallet_service
from billing.services.customers import get_customer
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import list_param, pagination, root_object
from extensions import db


def _shown(wallet: Wallet) -> ResponseReturnValue:
    return jsonify(wallet=wallet_service.wallet_payload(wallet))


@bp.post("/wallets")
def create_wallet() -> ResponseReturnValue:
    """A customer's wallet, with its first paid and granted credits."""
    wallet = wallet_service.create_wallet(
        current_organization(), root_object("wallet"), current_actor()
    )
    db.session.commit()
    return _shown(wallet)


@bp.get("/wallets")
def list_wallets() -> ResponseReturnValue:
    """The organization's wallets, newest first (one customer's with
    `external_customer_id`: an unknown customer is 404)."""
    organization = current_organization()
    external_customer_id = request.args.get("external_customer_id")
    customer = get_customer(organization, external_customer_id) if external_customer_id else None
    page, per_page = pagination()
    result = wallet_service.list_wallets(
        organization,
        customer=customer,
        currency=(request.args.get("currency") or "").upper() or None,
        page=page,
        per_page=per_page,
    )
    return jsonify(
        wallets=[wallet_service.wallet_payload(wallet) for wallet in result.items],
        meta=result.meta(),
    )


@bp.get("/wallets/<lago_id>")
def show_wallet(lago_id: str) -> ResponseReturnValue:
    """One wallet, with its ongoing balance."""
    return _shown(wallet_service.get_wallet(current_organization(), lago_id))


@bp.put("/wallets/<lago_id>")
def update_wallet(lago_id: str) -> ResponseReturnValue:
    """Rename the wallet or change its expiration."""
    wallet = wallet_service.get_wallet(current_organization(), lago_id)
    wallet_service.update_wallet(wallet, root_object("wallet"), current_actor())
    db.session.commit()
    return _shown(wallet)


@bp.delete("/wallets/<lago_id>")
def terminate_wallet(lago_id: str) -> ResponseReturnValue:
    """Terminate the wallet (idempotent)."""
    wallet = wallet_service.get_wallet(current_organization(), lago_id)
    wallet_service.terminate_wallet(wallet, current_actor())
    db.session.commit()
    return _shown(wallet)


@bp.post("/wallet_transactions")
def create_wallet_transactions() -> ResponseReturnValue:
    """Top up (paid, granted) or void credits: one transaction per kind given."""
    data = root_object("wallet_transaction")
    wallet = wallet_service.find_wallet(current_organization(), data.get("wallet_id"))
    if wallet is None:
        code = "wallet_not_found" if data.get("wallet_id") else "value_is_mandatory"
        raise ValidationFailed({"wallet_id": [code]})
    transactions = wallet_service.top_up(wallet, data, current_actor())
    db.session.commit()
    return jsonify(wallet_transactions=[serialize_wallet_transaction(t) for t in transactions])


@bp.get("/wallets/<lago_id>/wallet_transactions")
def list_wallet_transactions(lago_id: str) -> ResponseReturnValue:
    """The wallet's transactions, newest first (`status`, `transaction_status`,
    `transaction_type` filters)."""
    wallet = wallet_service.get_wallet(current_organization(), lago_id)
    errors: dict[str, list[str]] = {}
    filters = wallet_service.TransactionFilters(
        statuses=list_param("status"),
        kinds=list_param("transaction_status"),
        types=list_param("transaction_type"),
    )
    for name, values, allowed in (
        ("status", filters.statuses, wallet_service.TRANSACTION_STATUSES),
        ("transaction_status", filters.kinds, wallet_service.TRANSACTION_KINDS),
        ("transaction_type", filters.types, wallet_service.TRANSACTION_TYPES),
    ):
        if any(value not in allowed for value in values):
            errors[name] = ["value_is_invalid"]
    if errors:
        raise ValidationFailed(errors)
    page, per_page = pagination()
    result = wallet_service.list_transactions(wallet, filters, page=page, per_page=per_page)
    return jsonify(
        wallet_transactions=[serialize_wallet_transaction(t) for t in result.items],
        meta=result.meta(),
    )


@bp.get("/wallet_transactions/<lago_id>")
def show_wallet_transaction(lago_id: str) -> ResponseReturnValue:
    """One wallet transaction."""
    transaction = wallet_service.get_transaction(current_organization(), lago_id)
    return jsonify(wallet_transaction=serialize_wallet_transaction(transaction))
