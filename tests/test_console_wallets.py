"""The customer's "Wallet & coupons" tab, as a support agent uses it: create a wallet (form
errors in place), top up with paid or granted credits, see the balance, ongoing balance and
transactions, terminate after confirmation, each in the audit log under the agent's name;
viewers only read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import Invoice, Wallet
from billing.services import wallets as wallet_service
from billing.timeutil import set_clock
from extensions import db
from tests import factories
from tests.factories import TEST_ACTOR


@pytest.fixture
def acme(org: Any, db_session: Any) -> Any:
    set_clock(lambda: datetime(2024, 1, 1, tzinfo=UTC))
    return factories.make_customer(org, external_id="acme", name="Acme", currency="EUR")


def tab(customer: Any) -> str:
    return f"/customers/{customer.lago_id}/wallet"


def wallet_count(customer: Any) -> int:
    return db.session.scalar(select(func.count(Wallet.id)).where(Wallet.customer_id == customer.id))


def test_the_tab_offers_a_wallet_when_there_is_none(agent_client, acme):
    page = agent_client.get(tab(acme))

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Wallet &amp; coupons" in html
    assert 'id="customer-wallet"' in html and "Create wallet" in html


def test_create_a_wallet_with_credits(agent_client, org, acme):
    response = agent_client.post(
        f"/customers/{acme.lago_id}/wallet",
        data={
            "name": "Prepaid",
            "rate_amount": "0.5",
            "paid_credits": "20",
            "granted_credits": "10",
        },
        htmx=True,
    )

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Wallet created." in html
    assert "€5.00" in html  # 10 granted credits at €0.50; the 20 paid ones wait for payment
    assert "1 credit = €0.50" in html
    [invoice] = db.session.scalars(select(Invoice).where(Invoice.customer_id == acme.id)).all()
    assert (invoice.invoice_type, invoice.total_amount_cents) == ("credit", 1000)
    assert invoice.number in html  # the purchase links to its invoice
    header = agent_client.get(f"/customers/{acme.lago_id}").get_data(as_text=True)
    assert "Prepaid credits" in header and "€5.00" in header
    # the audit log: the wallet, its two transactions and the purchase's invoice, by the agent
    [wallet] = db.session.scalars(select(Wallet).where(Wallet.customer_id == acme.id)).all()
    activity = [
        (what, resource) for what, resource, _ in factories.console_activity(agent_client.agent)
    ]
    assert sorted(what for what, _ in activity) == [
        "invoice.finalized",
        "wallet.created",
        "wallet_transaction.created",
        "wallet_transaction.created",
    ]
    assert ("wallet.created", str(wallet.lago_id)) in activity
    assert ("invoice.finalized", str(invoice.lago_id)) in activity


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rate_amount": "0"}, "A credit must be worth more than 0."),
        ({"rate_amount": "abc"}, "Enter a number such as 1 or 0.5."),
        ({"rate_amount": "1", "paid_credits": "-3"}, "Enter a number of credits of 0 or more."),
        ({"rate_amount": "1", "expiration_at": "2023-05-01"}, "Choose a day after today."),
    ],
)
def test_create_errors_show_next_to_the_fields(agent_client, acme, data, message):
    response = agent_client.post(f"/customers/{acme.lago_id}/wallet", data=data, htmx=True)

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert wallet_count(acme) == 0
    assert factories.console_activity(agent_client.agent) == []


def test_a_form_posted_without_javascript_comes_back_on_a_page(agent_client, acme):
    response = agent_client.post(f"/customers/{acme.lago_id}/wallet", data={"rate_amount": "-1"})

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<title>Wallet of Acme" in html and "A credit must be worth more than 0." in html


def test_top_up_and_errors(agent_client, org, acme):
    wallet = wallet_service.create_wallet(
        org, {"external_customer_id": "acme", "rate_amount": "1"}, TEST_ACTOR
    )
    db.session.commit()
    url = f"/customers/{acme.lago_id}/wallet/{wallet.lago_id}/top-up"

    empty = agent_client.post(url, data={}, htmx=True)
    negative = agent_client.post(url, data={"granted_credits": "-1"}, htmx=True)
    granted = agent_client.post(url, data={"granted_credits": "12.5"}, htmx=True)

    assert empty.status_code == 422 and "Enter paid or granted credits." in empty.get_data(
        as_text=True
    )
    assert negative.status_code == 422
    assert "Enter a number of credits of 0 or more." in negative.get_data(as_text=True)
    html = granted.get_data(as_text=True)
    assert granted.status_code == 200 and "Credits added." in html
    assert "€12.50" in html and "+12.5" in html
    db.session.refresh(wallet)
    assert wallet.balance_cents == 1250
    # one audit entry: the granted credits, not the refused attempts
    [(what, _transaction, changes)] = factories.console_activity(agent_client.agent)
    assert what == "wallet_transaction.created"
    assert changes["credit_amount"] == [None, "12.5"]


def test_terminate_after_confirmation(agent_client, org, acme):
    wallet = wallet_service.create_wallet(
        org, {"external_customer_id": "acme", "rate_amount": "1", "granted_credits": "3"},
        TEST_ACTOR,
    )  # fmt: skip
    db.session.commit()
    url = f"/customers/{acme.lago_id}/wallet/{wallet.lago_id}/terminate"

    confirm_page = agent_client.get(url)
    unconfirmed = agent_client.post(url, data={})
    done = agent_client.post(url, data={"confirm": "y"}, htmx=True)

    assert confirm_page.status_code == 200
    assert "3 credit(s) left (€3.00)" in confirm_page.get_data(as_text=True)
    assert unconfirmed.status_code == 422
    assert done.status_code == 204 and done.headers["HX-Redirect"].endswith("/wallet")
    db.session.refresh(wallet)
    assert wallet.status == "terminated"
    assert factories.console_activity(agent_client.agent) == [
        ("wallet.terminated", str(wallet.lago_id), {"status": ["active", "terminated"]})
    ]
    page = agent_client.get(tab(acme)).get_data(as_text=True)
    assert "Create wallet" in page  # a new one can be made


def test_viewers_read_but_cannot_change(make_agent_client, org, acme):
    wallet = wallet_service.create_wallet(
        org, {"external_customer_id": "acme", "rate_amount": "1", "granted_credits": "3"},
        TEST_ACTOR,
    )  # fmt: skip
    db.session.commit()
    viewer = make_agent_client("viewer")

    page = viewer.get(tab(acme)).get_data(as_text=True)

    assert "€3.00" in page and "Top up" not in page and "Terminate" not in page
    base = f"/customers/{acme.lago_id}/wallet"
    assert viewer.post(base, data={"rate_amount": "1"}).status_code == 403
    assert viewer.post(f"{base}/{wallet.lago_id}/top-up", data={}).status_code == 403
    assert viewer.post(f"{base}/{wallet.lago_id}/terminate", data={}).status_code == 403


def test_the_deletion_preview_names_the_wallet(agent_client, org, acme):
    wallet_service.create_wallet(
        org, {"external_customer_id": "acme", "rate_amount": "2", "granted_credits": "4"},
        TEST_ACTOR,
    )  # fmt: skip
    db.session.commit()

    page = agent_client.get(f"/customers/{acme.lago_id}/delete").get_data(as_text=True)

    assert "left of its 4.0 credit(s) (€8.00) is voided" in page


def test_the_credit_invoice_page_shows_the_purchase(agent_client, org, acme):
    wallet_service.create_wallet(
        org, {"external_customer_id": "acme", "rate_amount": "2", "name": "Top-ups",
              "paid_credits": "7"},
        TEST_ACTOR,
    )  # fmt: skip
    db.session.commit()
    [invoice] = db.session.scalars(select(Invoice).where(Invoice.customer_id == acme.id)).all()

    page = agent_client.get(f"/invoices/{invoice.lago_id}")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Top-ups" in html and "€14.00" in html
