"""POST /hooks/stripe: Stripe's signature scheme checked against a signer written here from
Stripe's documentation (hmac + hashlib, not the product's helper), and the events mapped to
payments: matched by invoice metadata or by the customer's provider id and amount, a repeat of
an event id changing nothing, unmatched and unknown events acknowledged and logged, refunds,
failed attempts. Nothing is recorded for a request whose signature does not verify."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import OutboxEvent, Payment, ProviderEvent
from billing.timeutil import set_clock
from extensions import db
from tests import factories
from tests.test_payments import amounts, one_off_invoice, shown

SECRET = "whsec_test_0123456789abcdef"
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def stripe_header(body: bytes, secret: str = SECRET, timestamp: int | None = None,
                  extra_v1: list[str] | None = None) -> str:  # fmt: skip
    """Stripe's documented scheme: v1 = hex HMAC-SHA256(secret, f"{t}.{body}")."""
    t = int(NOW.timestamp()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    parts = [f"t={t}"] + [f"v1={v}" for v in (extra_v1 or [])] + [f"v1={mac}", "v0=ignored"]
    return ",".join(parts)


def event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1") -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}
    ).encode()


def intent(invoice: Any, cents: int, intent_id: str = "pi_1", **fields: Any) -> dict[str, Any]:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": cents,
        "amount_received": cents,
        "currency": "eur",
        "metadata": {"lago_invoice_id": str(invoice.lago_id)},
        "created": int(NOW.timestamp()),
        **fields,
    }


@pytest.fixture
def stripe_org(org: Any, db_session: Any) -> Any:
    set_clock(lambda: NOW)
    org.stripe_webhook_secret = SECRET
    db.session.commit()
    return org


def post(client: Any, body: bytes, header: str | None, path: str = "/hooks/stripe") -> Any:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return client.post(path, data=body, headers=headers)


def count(model: Any, org: Any) -> int:
    return db.session.scalar(select(func.count(model.id)).where(model.organization_id == org.id))


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("valid", 200),
        ("valid_among_several_v1", 200),
        ("stale", 400),
        ("from_the_future", 400),
        ("tampered_body", 400),
        ("wrong_secret", 400),
        ("missing_header", 400),
        ("no_v1", 400),
        ("garbage_header", 400),
    ],
)
def test_signature_matrix(client, stripe_org, api_client, case, status):
    invoice = one_off_invoice(stripe_org, 1200)
    body = event("payment_intent.succeeded", intent(invoice, 1200))
    stale = int(NOW.timestamp()) - 301
    header = {
        "valid": stripe_header(body),
        "valid_among_several_v1": stripe_header(body, extra_v1=["00" * 32, "ab" * 32]),
        "stale": stripe_header(body, timestamp=stale),
        "from_the_future": stripe_header(body, timestamp=int(NOW.timestamp()) + 301),
        "tampered_body": stripe_header(body),
        "wrong_secret": stripe_header(body, secret="whsec_other"),
        "missing_header": None,
        "no_v1": f"t={int(NOW.timestamp())}",
        "garbage_header": "nonsense",
    }[case]
    sent = body.replace(b"1200", b"1100") if case == "tampered_body" else body

    response = post(client, sent, header)

    assert response.status_code == status, response.get_json()
    if status == 400:
        assert response.get_json()["status"] == 400
        assert count(Payment, stripe_org) == count(ProviderEvent, stripe_org) == 0
        assert amounts(shown(api_client, invoice)) == (0, 1200, "pending")
    else:
        assert amounts(shown(api_client, invoice)) == (1200, 0, "succeeded")


def test_the_organization_in_the_path(client, stripe_org, api_client):
    invoice = one_off_invoice(stripe_org, 1200)
    body = event("payment_intent.succeeded", intent(invoice, 1200))

    wrong = post(client, body, stripe_header(body), "/hooks/stripe/not-an-id")
    other = factories.make_organization(stripe_webhook_secret="whsec_other")
    elsewhere = post(client, body, stripe_header(body), f"/hooks/stripe/{other.lago_id}")
    right = post(client, body, stripe_header(body), f"/hooks/stripe/{stripe_org.lago_id}")

    assert (wrong.status_code, elsewhere.status_code, right.status_code) == (400, 400, 200)
    assert amounts(shown(api_client, invoice)) == (1200, 0, "succeeded")


def test_a_payment_intent_pays_and_a_repeat_changes_nothing(client, stripe_org, api_client):
    invoice = one_off_invoice(stripe_org, 1200)
    body = event("payment_intent.succeeded", intent(invoice, 500))

    first = post(client, body, stripe_header(body))
    again = post(client, body, stripe_header(body))

    assert first.get_json() == {"received": True, "outcome": "recorded", "duplicate": False}
    assert (again.status_code, again.get_json()["duplicate"]) == (200, True)
    assert amounts(shown(api_client, invoice)) == (500, 700, "pending")
    [payment] = api_client.get("/api/v1/payments").get_json()["payments"]
    assert (payment["type"], payment["external_payment_id"], payment["method"]) == (
        "provider", "pi_1", "stripe",
    )  # fmt: skip
    assert count(ProviderEvent, stripe_org) == 1


def test_matched_by_the_customers_provider_id_and_the_amount(client, stripe_org, api_client):
    customer = factories.make_customer(
        stripe_org,
        currency="EUR",
        billing_configuration={"payment_provider": "stripe", "provider_customer_id": "cus_S1"},
    )
    older = one_off_invoice(stripe_org, 1500, customer)
    newer = one_off_invoice(stripe_org, 900, customer)
    same_amount = one_off_invoice(stripe_org, 900, customer)
    obj = {**intent(newer, 900), "metadata": {}, "customer": "cus_S1"}
    body = event("payment_intent.succeeded", obj)

    post(client, body, stripe_header(body))

    assert amounts(shown(api_client, older))[2] == "pending"
    assert amounts(shown(api_client, newer)) == (900, 0, "succeeded")  # the oldest of 900
    assert amounts(shown(api_client, same_amount)) == (0, 900, "pending")


@pytest.mark.parametrize(
    ("obj_change", "why"),
    [
        ({"metadata": {"lago_invoice_id": "00000000-0000-0000-0000-000000000000"}}, "unknown"),
        ({"metadata": {}, "customer": "cus_nobody"}, "no customer"),
        ({"amount_received": 1300, "amount": 1300}, "more than due"),
        ({"currency": "usd"}, "currency"),
    ],
)
def test_unmatched_events_are_acknowledged_and_logged(
    client, stripe_org, api_client, obj_change, why
):
    invoice = one_off_invoice(stripe_org, 1200)
    body = event("payment_intent.succeeded", {**intent(invoice, 1200), **obj_change})

    response = post(client, body, stripe_header(body))

    assert response.status_code == 200, why
    assert response.get_json()["outcome"] == "unmatched"
    [logged] = db.session.scalars(
        select(ProviderEvent).where(ProviderEvent.organization_id == stripe_org.id)
    ).all()
    assert (logged.event_id, logged.outcome, logged.payment_id) == ("evt_1", "unmatched", None)
    assert logged.detail
    assert count(Payment, stripe_org) == 0
    assert amounts(shown(api_client, invoice)) == (0, 1200, "pending")


def test_unknown_types_are_acknowledged(client, stripe_org):
    body = event("customer.created", {"id": "cus_1"}, "evt_9")

    response = post(client, body, stripe_header(body))

    assert (response.status_code, response.get_json()["outcome"]) == (200, "ignored")
    assert count(ProviderEvent, stripe_org) == 1


def test_a_failed_attempt_then_success_then_a_refund(client, stripe_org, api_client):
    invoice = one_off_invoice(stripe_org, 1200)

    def send(event_type: str, obj: dict[str, Any], event_id: str) -> None:
        body = event(event_type, obj, event_id)
        assert post(client, body, stripe_header(body)).status_code == 200

    send("payment_intent.payment_failed", intent(invoice, 1200, amount_received=0), "evt_a")
    after_failure = amounts(shown(api_client, invoice))
    send("payment_intent.succeeded", intent(invoice, 1200), "evt_b")
    after_success = amounts(shown(api_client, invoice))
    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "amount": 1200}
    send("charge.refunded", {**charge, "amount_refunded": 200}, "evt_c")
    after_partial_refund = amounts(shown(api_client, invoice))
    send("charge.refunded", {**charge, "amount_refunded": 1200}, "evt_d")
    after_full_refund = amounts(shown(api_client, invoice))

    assert after_failure == (0, 1200, "failed")
    assert after_success == (1200, 0, "succeeded")
    assert after_partial_refund == (1000, 200, "pending")
    assert after_full_refund == (0, 1200, "pending")
    [payment] = api_client.get("/api/v1/payments").get_json()["payments"]
    assert (payment["payment_status"], payment["refunded_amount_cents"]) == ("refunded", 1200)
    statuses = [
        e.payload["payment_status"]
        for e in db.session.scalars(
            select(OutboxEvent)
            .where(
                OutboxEvent.organization_id == stripe_org.id,
                OutboxEvent.event_type == "invoice.payment_status_updated",
            )
            .order_by(OutboxEvent.id)
        )
    ]
    assert statuses == ["failed", "succeeded", "pending"]


def test_without_a_secret_nothing_verifies(client, org, api_client):
    set_clock(lambda: NOW)
    invoice = one_off_invoice(org, 1200)
    body = event("payment_intent.succeeded", intent(invoice, 1200))

    response = post(client, body, stripe_header(body))

    assert response.status_code == 400
    assert amounts(shown(api_client, invoice)) == (0, 1200, "pending")
