"""Wallets through /api/v1 and the services: paid credits and their credit invoice, granted
credits, settlement on payment, consumption by finalized invoices (after taxes, partial and
full), voided credits, termination and expiration, customer deletion, and Lago's errors with
nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import Invoice, OutboxEvent, Wallet, WalletTransaction
from billing.services import customers as customer_service
from billing.services import invoicing
from extensions import db
from jobs.wallets import run_wallet_expiration
from tests import factories
from tests.factories import TEST_ACTOR, invoices_of

WALLET_KEYS = {
    "lago_id", "lago_customer_id", "external_customer_id", "status", "currency", "name", "code",
    "priority", "rate_amount", "credits_balance", "balance_cents", "consumed_credits",
    "consumed_amount_cents", "created_at", "expiration_at", "last_balance_sync_at",
    "last_consumed_credit_at", "terminated_at", "ongoing_balance_cents",
    "ongoing_usage_balance_cents", "credits_ongoing_balance", "credits_ongoing_usage_balance",
    "invoice_requires_successful_payment", "recurring_transaction_rules", "applies_to",
    "paid_top_up_min_amount_cents", "paid_top_up_max_amount_cents", "metadata",
    "billing_entity_code",
}  # fmt: skip


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = at("2024-01-01T00:00:00")


@pytest.fixture
def acme(org: Any, clock: Any) -> Any:
    return factories.make_customer(org, external_id="acme", currency="EUR")


def create(api_client: Any, **fields: Any) -> Any:
    payload = {"external_customer_id": "acme", "rate_amount": "1", **fields}
    return api_client.post("/api/v1/wallets", json={"wallet": payload})


def created(api_client: Any, **fields: Any) -> dict[str, Any]:
    response = create(api_client, **fields)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["wallet"]


def wallet_of(lago_id: str) -> Wallet:
    db.session.expire_all()
    return db.session.scalars(select(Wallet).where(Wallet.lago_id == _uuid(lago_id))).one()


def _uuid(text: str) -> Any:
    import uuid  # noqa: PLC0415

    return uuid.UUID(text)


def transactions(api_client: Any, wallet_id: str, query: str = "") -> list[dict[str, Any]]:
    response = api_client.get(f"/api/v1/wallets/{wallet_id}/wallet_transactions{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["wallet_transactions"]


def events(org: Any) -> list[str]:
    return list(
        db.session.scalars(
            select(OutboxEvent.event_type)
            .where(OutboxEvent.organization_id == org.id)
            .order_by(OutboxEvent.id)
        )
    )


def counts(org: Any) -> tuple[int, int, int]:
    def count(model: Any) -> int:
        return db.session.scalar(
            select(func.count(model.id)).where(model.organization_id == org.id)
        )

    return count(Wallet), count(WalletTransaction), count(Invoice)


# --- creation and top-ups --------------------------------------------------------------------


def test_create_with_paid_and_granted_credits(api_client, org, acme):
    before = len(events(org))

    wallet = created(
        api_client,
        name="Prepaid",
        rate_amount="2.5",
        paid_credits="10",
        granted_credits="4",
        currency="EUR",
        expiration_at="2024-12-31T00:00:00Z",
    )

    assert set(wallet) == WALLET_KEYS
    assert (wallet["status"], wallet["currency"], wallet["name"]) == ("active", "EUR", "Prepaid")
    assert (wallet["rate_amount"], wallet["credits_balance"], wallet["balance_cents"]) == (
        "2.5",
        "4.0",
        1000,
    )  # only the granted credits: the paid ones wait for the payment
    assert (wallet["ongoing_balance_cents"], wallet["credits_ongoing_balance"]) == (1000, "4.0")
    assert wallet["expiration_at"] == "2024-12-31T00:00:00Z"
    [invoice] = invoices_of(org)
    assert (invoice.invoice_type, invoice.status, invoice.payment_status) == (
        "credit",
        "finalized",
        "pending",
    )
    assert invoice.number == f"{acme.slug}-001"
    assert (invoice.fees_amount_cents, invoice.total_amount_cents) == (2500, 2500)
    assert [(fee.fee_type, fee.amount_cents) for fee in invoice.fees] == [("credit", 2500)]
    assert invoice.prepaid_credit_amount_cents == 0  # a credit invoice never consumes credits
    listed = transactions(api_client, wallet["lago_id"])
    assert sorted(
        (
            t["transaction_status"],
            t["status"],
            t["transaction_type"],
            t["credit_amount"],
            t["amount"],
        )
        for t in listed
    ) == [
        ("granted", "settled", "inbound", "4.0", "10.00"),
        ("purchased", "pending", "inbound", "10.0", "25.00"),
    ]
    purchased = next(t for t in listed if t["transaction_status"] == "purchased")
    assert purchased["lago_invoice_id"] == str(invoice.lago_id)
    assert sorted(events(org)[before:]) == sorted(
        [
            "wallet.created",
            "wallet_transaction.created",
            "wallet_transaction.created",
            "invoice.created",
            "invoice.paid_credit_added",
        ]
    )
    show = api_client.get(f"/api/v1/invoices/{invoice.lago_id}").get_json()["invoice"]
    assert show["fees"][0]["item"]["type"] == "credit"
    assert show["fees"][0]["item"]["lago_item_id"] == purchased["lago_id"]


def test_paid_credits_settle_when_the_credit_invoice_is_paid(api_client, org, acme):
    wallet = created(api_client, rate_amount="2.5", paid_credits="10", granted_credits="4")
    [invoice] = invoices_of(org)

    response = api_client.put(
        f"/api/v1/invoices/{invoice.lago_id}", json={"invoice": {"payment_status": "succeeded"}}
    )

    assert response.status_code == 200
    shown = api_client.get(f"/api/v1/wallets/{wallet['lago_id']}").get_json()["wallet"]
    assert (shown["credits_balance"], shown["balance_cents"]) == ("14.0", 3500)
    purchased = transactions(api_client, wallet["lago_id"], "?transaction_status=purchased")
    assert [(t["status"], t["settled_at"]) for t in purchased] == [
        ("settled", "2024-01-01T00:00:00Z")
    ]
    assert events(org)[-1] == "wallet_transaction.updated"


def test_a_failed_payment_fails_the_purchase_and_credits_nothing(api_client, org, acme):
    wallet = created(api_client, paid_credits="10")
    [invoice] = invoices_of(org)

    api_client.put(
        f"/api/v1/invoices/{invoice.lago_id}", json={"invoice": {"payment_status": "failed"}}
    )

    shown = api_client.get(f"/api/v1/wallets/{wallet['lago_id']}").get_json()["wallet"]
    assert (shown["credits_balance"], shown["balance_cents"]) == ("0.0", 0)
    [purchase] = transactions(api_client, wallet["lago_id"])
    assert (purchase["status"], purchase["failed_at"]) == ("failed", "2024-01-01T00:00:00Z")


def test_voiding_the_credit_invoice_fails_the_purchase(api_client, org, acme):
    wallet = created(api_client, paid_credits="10")
    [invoice] = invoices_of(org)

    api_client.post(f"/api/v1/invoices/{invoice.lago_id}/void")
    api_client.put(  # a voided invoice marked paid afterwards credits nothing either
        f"/api/v1/invoices/{invoice.lago_id}", json={"invoice": {"payment_status": "succeeded"}}
    )

    [purchase] = transactions(api_client, wallet["lago_id"])
    assert purchase["status"] == "failed"
    assert wallet_of(wallet["lago_id"]).balance_cents == 0


def test_paid_credits_worth_nothing_settle_at_once(api_client, org, acme):
    wallet = created(api_client, paid_credits="0.004")  # 0.004 EUR rounds to 0 cents

    [invoice] = invoices_of(org)
    assert (invoice.total_amount_cents, invoice.payment_status) == (0, "succeeded")
    [purchase] = transactions(api_client, wallet["lago_id"])
    assert (purchase["status"], purchase["credit_amount"]) == ("settled", "0.004")
    assert wallet_of(wallet["lago_id"]).credits_balance == Decimal("0.004")


def test_top_up_paid_granted_and_voided_credits(api_client, org, acme):
    wallet = created(api_client, rate_amount="1.5", granted_credits="10")

    response = api_client.post(
        "/api/v1/wallet_transactions",
        json={
            "wallet_transaction": {
                "wallet_id": wallet["lago_id"],
                "paid_credits": "2",
                "granted_credits": "3",
                "voided_credits": "5",
                "invoice_requires_successful_payment": None,
                "metadata": None,
            }
        },
    )

    assert response.status_code == 200, response.get_json()
    made = response.get_json()["wallet_transactions"]
    assert [
        (t["transaction_status"], t["status"], t["credit_amount"], t["amount"]) for t in made
    ] == [
        ("purchased", "pending", "2.0", "3.00"),
        ("granted", "settled", "3.0", "4.50"),
        ("voided", "settled", "5.0", "7.50"),
    ]
    assert made[2]["transaction_type"] == "outbound"
    stored = wallet_of(wallet["lago_id"])
    assert (stored.credits_balance, stored.balance_cents) == (8, 1200)  # 10 + 3 - 5 credits


@pytest.mark.parametrize(
    ("currency", "rate", "granted", "balance_cents", "amount"),
    [
        ("EUR", "1", "12.34", 1234, "12.34"),
        ("EUR", "0.333", "3", 100, "1.00"),  # 0.999 EUR rounds half up to 1.00
        ("JPY", "10", "7", 70, "70"),  # no minor unit
        ("JPY", "0.5", "3", 2, "2"),  # 1.5 yen → 2
        ("KWD", "1.25", "2", 2500, "2.500"),  # three decimals
        ("BHD", "0.001", "1500", 1500, "1.500"),
    ],
)
def test_credits_value_in_each_currency(api_client, org, clock, currency, rate, granted,
                                        balance_cents, amount):  # fmt: skip
    factories.make_customer(org, external_id="acme", currency=currency)

    wallet = created(api_client, rate_amount=rate, granted_credits=granted)

    assert (wallet["currency"], wallet["balance_cents"]) == (currency, balance_cents)
    [granted_transaction] = transactions(api_client, wallet["lago_id"])
    assert granted_transaction["amount"] == amount


def test_a_customer_without_currency_takes_the_wallets(api_client, org, clock):
    customer = factories.make_customer(org, external_id="acme")

    wallet = created(api_client, currency="USD", granted_credits="1")

    assert wallet["currency"] == "USD"
    db.session.refresh(customer)
    assert customer.currency == "USD"
    assert "customer.updated" in events(org)
    response = api_client.post(
        "/api/v1/customers", json={"customer": {"external_id": "acme", "currency": "EUR"}}
    )
    assert response.get_json()["error_details"] == {"currency": ["value_is_immutable"]}


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        ({"currency": "USD"}, {"currency": ["currencies_does_not_match"]}),
        ({"currency": "XYZ"}, {"currency": ["value_is_invalid"]}),
        ({"rate_amount": None}, {"rate_amount": ["value_is_mandatory"]}),
        ({"rate_amount": "0"}, {"rate_amount": ["value_is_out_of_range"]}),
        ({"rate_amount": "-1"}, {"rate_amount": ["value_is_out_of_range"]}),
        ({"rate_amount": "abc"}, {"rate_amount": ["value_is_invalid"]}),
        ({"paid_credits": "-1"}, {"paid_credits": ["invalid_paid_credits"]}),
        ({"granted_credits": "-0.5"}, {"granted_credits": ["invalid_granted_credits"]}),
        ({"granted_credits": "ten"}, {"granted_credits": ["invalid_granted_credits"]}),
        ({"paid_credits": "1e20"}, {"paid_credits": ["invalid_paid_credits"]}),
        ({"expiration_at": "2023-01-01T00:00:00Z"}, {"expiration_at": ["invalid_date"]}),
        ({"expiration_at": "soon"}, {"expiration_at": ["invalid_date"]}),
        # after year 9999 in UTC: was a 500 (OverflowError)
        ({"expiration_at": "9999-12-31T23:00:00-05:00"}, {"expiration_at": ["invalid_date"]}),
        ({"name": "x" * 256}, {"name": ["value_is_too_long"]}),
        ({"external_customer_id": ""}, {"external_customer_id": ["value_is_mandatory"]}),
    ],
)
def test_create_refusals_change_nothing(api_client, org, acme, fields, details):
    before = counts(org)

    response = create(api_client, **{"paid_credits": "5", **fields})

    assert response.status_code == 422
    assert response.get_json() == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }
    assert counts(org) == before


def test_one_active_wallet_per_customer(api_client, org, acme):
    first = created(api_client, granted_credits="1")
    before = counts(org)

    second = create(api_client, paid_credits="5")

    assert second.status_code == 422
    assert second.get_json()["error_details"] == {"customer": ["wallet_already_exists"]}
    assert counts(org) == before
    api_client.delete(f"/api/v1/wallets/{first['lago_id']}")
    assert create(api_client).status_code == 200  # a terminated wallet does not count


def test_unknown_customer_and_wallet(api_client, org, acme):
    assert create(api_client, external_customer_id="nobody").get_json()["code"] == (
        "customer_not_found"
    )
    for method in ("get", "put", "delete"):
        kwargs = {"json": {"wallet": {}}} if method == "put" else {}
        response = getattr(api_client, method)("/api/v1/wallets/not-a-uuid", **kwargs)
        assert (response.status_code, response.get_json()["code"]) == (404, "wallet_not_found")
    assert api_client.get("/api/v1/wallets?external_customer_id=nobody").status_code == 404
    response = api_client.post(
        "/api/v1/wallet_transactions",
        json={"wallet_transaction": {"wallet_id": str(_uuid("0" * 32)), "paid_credits": "1"}},
    )
    assert response.get_json()["error_details"] == {"wallet_id": ["wallet_not_found"]}


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        ({"paid_credits": "-1"}, {"paid_credits": ["invalid_paid_credits"]}),
        ({"voided_credits": "-1"}, {"voided_credits": ["invalid_voided_credits"]}),
        ({"voided_credits": "10.01"}, {"voided_credits": ["insufficient_credits"]}),
    ],
)
def test_transaction_refusals_change_nothing(api_client, org, acme, fields, details):
    wallet = created(api_client, granted_credits="10")
    before = counts(org)

    response = api_client.post(
        "/api/v1/wallet_transactions",
        json={"wallet_transaction": {"wallet_id": wallet["lago_id"], **fields}},
    )

    assert response.status_code == 422
    assert response.get_json()["error_details"] == details
    assert counts(org) == before
    assert wallet_of(wallet["lago_id"]).balance_cents == 1000


# --- consumption ------------------------------------------------------------------------------


def subscribe(org: Any, customer: Any, amount_cents: int = 1000) -> Any:
    plan = factories.make_plan(org, charges=[], amount_cents=amount_cents)
    return factories.make_subscription(org, customer, plan, subscription_at="2024-01-01T00:00:00Z")


def close_january(clock: Any) -> None:
    clock[0] = at("2024-02-01T00:00:10")
    report = invoicing.close_periods()
    assert report.failed == []


@pytest.mark.parametrize(
    ("rate", "granted", "prepaid", "total", "payment", "credits_left", "cents_left", "consumed"),
    [
        ("1", "4", 400, 600, "pending", "0", 0, "4"),  # partial: the whole balance
        ("1", "15", 1000, 0, "succeeded", "5", 500, "10"),  # full: the invoice is paid
        ("3", "5", 1000, 0, "succeeded", "1.66667", 500, "3.33333"),  # 10 EUR = 3.33333 credits
        ("0.25", "10", 250, 750, "pending", "0", 0, "10"),
    ],
)
def test_finalization_consumes_credits_after_taxes(api_client, org, acme, clock, rate, granted,
                                                   prepaid, total, payment, credits_left,
                                                   cents_left, consumed):  # fmt: skip
    wallet = created(api_client, rate_amount=rate, granted_credits=granted)
    subscribe(org, acme)

    close_january(clock)

    [invoice] = invoices_of(org)
    assert (invoice.fees_amount_cents, invoice.prepaid_credit_amount_cents) == (1000, prepaid)
    assert (invoice.total_amount_cents, invoice.payment_status) == (total, payment)
    stored = wallet_of(wallet["lago_id"])
    assert (stored.credits_balance, stored.balance_cents) == (Decimal(credits_left), cents_left)
    assert (stored.consumed_credits, stored.consumed_amount_cents) == (Decimal(consumed), prepaid)
    [consumption] = transactions(api_client, wallet["lago_id"], "?transaction_type=outbound")
    assert (consumption["transaction_status"], consumption["status"]) == ("invoiced", "settled")
    assert consumption["amount_cents"] == prepaid
    assert consumption["lago_invoice_id"] == str(invoice.lago_id)
    shown = api_client.get(f"/api/v1/invoices/{invoice.lago_id}").get_json()["invoice"]
    assert (shown["prepaid_credit_amount_cents"], shown["total_amount_cents"]) == (prepaid, total)


@pytest.mark.parametrize(
    ("currency", "rate", "granted", "prepaid", "total", "credits_left", "cents_left"),
    [
        ("JPY", "3", "100", 300, 700, "0", 0),  # 100 credits × ¥3, all spent
        ("JPY", "7", "200", 1000, 0, "57.14286", 400),  # ¥1,000 = 142.85714 credits
        ("KWD", "0.25", "4", 1000, 500, "0", 0),  # 1.000 KWD against 1.500 KWD
    ],
)
def test_consumption_in_zero_and_three_decimal_currencies(api_client, org, clock, currency, rate,
                                                          granted, prepaid, total, credits_left,
                                                          cents_left):  # fmt: skip
    customer = factories.make_customer(org, external_id="acme", currency=currency)
    wallet = created(api_client, rate_amount=rate, granted_credits=granted)
    plan = factories.make_plan(
        org, charges=[], amount_cents=1000 if currency == "JPY" else 1500, amount_currency=currency
    )
    factories.make_subscription(org, customer, plan, subscription_at="2024-01-01T00:00:00Z")

    close_january(clock)

    [invoice] = invoices_of(org)
    assert (invoice.prepaid_credit_amount_cents, invoice.total_amount_cents) == (prepaid, total)
    stored = wallet_of(wallet["lago_id"])
    assert (stored.credits_balance, stored.balance_cents) == (Decimal(credits_left), cents_left)


def test_an_invoice_paid_in_advance_at_the_start_consumes_credits(api_client, org, acme):
    created(api_client, granted_credits="5")
    plan = factories.make_plan(org, charges=[], pay_in_advance=True)

    response = api_client.post(
        "/api/v1/subscriptions",
        json={"subscription": {"external_customer_id": "acme", "plan_code": plan.code,
                               "external_id": "acme-sub"}},
    )  # fmt: skip

    assert response.status_code == 200
    [invoice] = [i for i in invoices_of(org) if i.invoice_type == "subscription"]
    assert (invoice.fees_amount_cents, invoice.prepaid_credit_amount_cents) == (1000, 500)
    assert (invoice.status, invoice.total_amount_cents) == ("finalized", 500)


def test_drafts_do_not_consume_until_finalized(api_client, org, clock):
    customer = factories.make_customer(
        org, external_id="acme", currency="EUR", billing_configuration={"invoice_grace_period": 3}
    )
    wallet = created(api_client, granted_credits="4")
    subscribe(org, customer)
    close_january(clock)
    [draft] = invoices_of(org)
    assert (draft.status, draft.prepaid_credit_amount_cents, draft.total_amount_cents) == (
        "draft",
        0,
        1000,
    )
    assert wallet_of(wallet["lago_id"]).balance_cents == 400

    response = api_client.put(f"/api/v1/invoices/{draft.lago_id}/finalize")

    body = response.get_json()["invoice"]
    assert (body["prepaid_credit_amount_cents"], body["total_amount_cents"]) == (400, 600)
    assert wallet_of(wallet["lago_id"]).balance_cents == 0


def test_a_terminated_or_other_currency_wallet_is_not_consumed(api_client, org, acme, clock):
    wallet = created(api_client, granted_credits="4")
    api_client.delete(f"/api/v1/wallets/{wallet['lago_id']}")
    subscribe(org, acme)

    close_january(clock)

    [invoice] = invoices_of(org)
    assert (invoice.prepaid_credit_amount_cents, invoice.total_amount_cents) == (0, 1000)


def test_two_invoices_of_one_close_never_overspend(api_client, org, acme, clock):
    wallet = created(api_client, granted_credits="15")
    subscribe(org, acme)
    subscribe(org, acme, amount_cents=800)

    close_january(clock)  # one bulk finalization of both invoices

    amounts = sorted(
        (i.fees_amount_cents, i.prepaid_credit_amount_cents, i.total_amount_cents)
        for i in invoices_of(org)
    )
    # whichever is finalized first is paid in full, the other gets the 500 or 700 left
    assert amounts in ([(800, 500, 300), (1000, 1000, 0)], [(800, 800, 0), (1000, 700, 300)])
    stored = wallet_of(wallet["lago_id"])
    assert (stored.balance_cents, stored.consumed_amount_cents) == (0, 1500)


def test_ongoing_balance_subtracts_current_usage(api_client, org, acme, clock):
    plan = factories.make_plan(org)  # 0.50 per unit of `value`
    subscription = factories.make_subscription(
        org, acme, plan, subscription_at="2024-01-01T00:00:00Z"
    )
    wallet = created(api_client, rate_amount="2", granted_credits="5")
    clock[0] = at("2024-01-10T00:00:00")
    factories.send_event(org, subscription, at("2024-01-09T00:00:00"), value=6)

    shown = api_client.get(f"/api/v1/wallets/{wallet['lago_id']}").get_json()["wallet"]

    assert (shown["balance_cents"], shown["ongoing_usage_balance_cents"]) == (1000, 300)
    assert (shown["ongoing_balance_cents"], shown["credits_ongoing_balance"]) == (700, "3.5")
    assert shown["credits_ongoing_usage_balance"] == "1.5"


# --- update, terminate, expire, delete --------------------------------------------------------


def test_update_name_and_expiration(api_client, org, acme):
    wallet = created(api_client, name="Old", rate_amount="3")

    response = api_client.put(
        f"/api/v1/wallets/{wallet['lago_id']}",
        json={
            "wallet": {"name": "New", "expiration_at": "2025-01-01T00:00:00Z", "rate_amount": "9"}
        },
    )

    body = response.get_json()["wallet"]
    assert (body["name"], body["expiration_at"], body["rate_amount"]) == (
        "New",
        "2025-01-01T00:00:00Z",
        "3.0",
    )
    assert events(org)[-1] == "wallet.updated"


def test_terminate_is_idempotent_and_refuses_top_ups(api_client, org, acme, clock):
    wallet = created(api_client, granted_credits="2")
    clock[0] = at("2024-01-05T00:00:00")

    first = api_client.delete(f"/api/v1/wallets/{wallet['lago_id']}")
    second = api_client.delete(f"/api/v1/wallets/{wallet['lago_id']}")

    assert first.get_json()["wallet"]["status"] == "terminated"
    assert first.get_json()["wallet"]["terminated_at"] == "2024-01-05T00:00:00Z"
    assert second.status_code == 200
    assert events(org).count("wallet.terminated") == 1
    response = api_client.post(
        "/api/v1/wallet_transactions",
        json={"wallet_transaction": {"wallet_id": wallet["lago_id"], "granted_credits": "1"}},
    )
    assert response.get_json()["error_details"] == {"wallet_id": ["wallet_is_terminated"]}
    refused = api_client.put(f"/api/v1/wallets/{wallet['lago_id']}", json={"wallet": {"name": "x"}})
    assert refused.get_json()["error_details"] == {"wallet": ["wallet_is_terminated"]}


def test_expiration_job_terminates_expired_wallets(api_client, org, acme, clock):
    wallet = created(api_client, granted_credits="2", expiration_at="2024-01-10T12:00:00Z")

    clock[0] = at("2024-01-10T11:59:59")
    run_wallet_expiration()
    assert wallet_of(wallet["lago_id"]).status == "active"
    clock[0] = at("2024-01-10T12:00:00")
    run_wallet_expiration()

    stored = wallet_of(wallet["lago_id"])
    assert (stored.status, stored.balance_cents) == ("terminated", 200)
    assert events(org)[-1] == "wallet.terminated"


def test_customer_deletion_voids_the_credits_and_terminates_the_wallet(api_client, org, acme):
    wallet = created(api_client, granted_credits="7.5")

    customer_service.delete_customer(org, acme, TEST_ACTOR)
    db.session.commit()

    stored = wallet_of(wallet["lago_id"])
    assert (stored.status, stored.credits_balance, stored.balance_cents) == ("terminated", 0, 0)
    voided = transactions(api_client, wallet["lago_id"], "?transaction_status=voided")
    assert [(t["credit_amount"], t["amount"]) for t in voided] == [("7.5", "7.50")]


def test_list_wallets_of_a_customer(api_client, org, acme):
    factories.make_customer(org, external_id="globex", currency="EUR")
    mine = created(api_client)
    created(api_client, external_customer_id="globex")

    acme_only = api_client.get("/api/v1/wallets?external_customer_id=acme").get_json()
    everything = api_client.get("/api/v1/wallets").get_json()

    assert [w["lago_id"] for w in acme_only["wallets"]] == [mine["lago_id"]]
    assert acme_only["meta"]["total_count"] == 1
    assert everything["meta"]["total_count"] == 2
    bad = api_client.get(f"/api/v1/wallets/{mine['lago_id']}/wallet_transactions?status=paid")
    assert bad.get_json()["error_details"] == {"status": ["value_is_invalid"]}
