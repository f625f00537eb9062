"""Contract tests: wallets and wallet transactions through the official Lago SDK
(lago-python-client 1.55.0) against a live Ledgerline: create, find, find_all, update,
destroy (terminate), transactions create and list, and the errors the SDK raises."""

from __future__ import annotations

from typing import Any

import pytest
from lago_python_client.client import Client
from lago_python_client.models import Wallet as SdkWallet
from lago_python_client.models import WalletTransaction as SdkWalletTransaction

from billing.models import Organization
from extensions import db
from tests import factories
from tests.test_sdk_contract import api_error, validation_body

pytestmark = pytest.mark.live


@pytest.fixture
def client(live_server: Any) -> Client:
    """An organization of its own with the EUR customer `acme`."""
    organization_id, raw_key = live_server.new_organization()
    with live_server.app.app_context():
        organization = db.session.get_one(Organization, organization_id)
        factories.make_customer(organization, external_id="acme", currency="EUR")
        db.session.commit()
    return Client(api_key=raw_key, api_url=live_server.url)


def test_wallet_lifecycle(client):
    wallet = client.wallets.create(
        SdkWallet(
            external_customer_id="acme",
            rate_amount="2",
            name="Prepaid",
            currency="EUR",
            paid_credits="5",
            granted_credits="3",
        )
    )

    assert (wallet.status, wallet.currency, wallet.name) == ("active", "EUR", "Prepaid")
    assert (wallet.rate_amount, wallet.credits_balance, wallet.balance_cents) == ("2.0", "3.0", 600)
    assert (wallet.ongoing_balance_cents, wallet.credits_ongoing_balance) == (600, "3.0")
    found = client.wallets.find(wallet.lago_id)
    assert found.lago_id == wallet.lago_id
    listed = client.wallets.find_all({"external_customer_id": "acme"})
    assert [w.lago_id for w in listed["wallets"]] == [wallet.lago_id]
    assert listed["meta"]["total_count"] == 1
    updated = client.wallets.update(SdkWallet(name="Renamed"), wallet.lago_id)
    assert updated.name == "Renamed"
    [invoice] = client.invoices.find_all({"external_customer_id": "acme"})["invoices"]
    assert (invoice.invoice_type, invoice.total_amount_cents) == ("credit", 1000)

    terminated = client.wallets.destroy(wallet.lago_id)

    assert (terminated.status, terminated.balance_cents) == ("terminated", 600)


def test_wallet_transactions(client):
    wallet = client.wallets.create(SdkWallet(external_customer_id="acme", rate_amount="1"))

    made = client.wallet_transactions.create(
        SdkWalletTransaction(wallet_id=wallet.lago_id, paid_credits="10", granted_credits="2.5")
    )

    transactions = made["wallet_transactions"]
    assert [(t.transaction_status, t.status, t.credit_amount, t.amount) for t in transactions] == [
        ("purchased", "pending", "10.0", "10.00"),
        ("granted", "settled", "2.5", "2.50"),
    ]
    assert all(t.lago_wallet_id == wallet.lago_id for t in transactions)
    listed = client.wallet_transactions.find_all(wallet.lago_id, {"status": "settled"})
    assert [t.transaction_status for t in listed["wallet_transactions"]] == ["granted"]
    assert listed["meta"]["total_count"] == 1
    assert client.wallets.find(wallet.lago_id).balance_cents == 250


def test_errors(client):
    client.wallets.create(SdkWallet(external_customer_id="acme", rate_amount="1"))

    second = api_error(
        lambda: client.wallets.create(SdkWallet(external_customer_id="acme", rate_amount="1"))
    )
    mismatch = api_error(
        lambda: client.wallets.create(
            SdkWallet(external_customer_id="acme", rate_amount="1", currency="USD")
        )
    )
    missing = api_error(lambda: client.wallets.find("00000000-0000-0000-0000-000000000000"))
    negative = api_error(
        lambda: client.wallet_transactions.create(
            SdkWalletTransaction(
                wallet_id=client.wallets.find_all()["wallets"][0].lago_id, granted_credits="-1"
            )
        )
    )

    assert (second.status_code, second.response) == (
        422,
        validation_body({"customer": ["wallet_already_exists"]}),
    )
    assert mismatch.response["error_details"]["currency"] == ["currencies_does_not_match"]
    assert (missing.status_code, missing.response["code"]) == (404, "wallet_not_found")
    assert negative.response == validation_body({"granted_credits": ["invalid_granted_credits"]})
