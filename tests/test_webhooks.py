"""Outgoing webhooks: endpoints API, signatures checked by an independent receiver, delivery
at least once with retries, and every emitted event type delivered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import func, select, update

from billing.models import ActivityLog, CreditNote, DeliveryStatus, OutboxEvent, WebhookDelivery
from billing.services import documents, invoicing, outbox, webhooks
from billing.timeutil import now_utc
from config import Config
from extensions import db
from tests import factories
from tests.test_inbound_hooks import send as send_inbound

URL = "/api/v1/webhook_endpoints"


class Receiver:
    """A real HTTP server recording what it receives; answers with `statuses` in turn, then
    200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def quiet_outbox(db_session: Any) -> None:
    """Other tests may have committed outbox events or deliveries to the shared database: set
    them aside (in this test's transaction), so that the counts below are this test's own."""
    while webhooks.dispatch_outbox():
        pass
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status.in_(DeliveryStatus.OPEN))
        .values(status=DeliveryStatus.FAILED)
    )
    db.session.commit()


#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def create(api_client: Any, **fields: Any) -> Any:
    payload = {"webhook_url": "https://example.com/hooks", **fields}
    return api_client.post(URL, json={"webhook_endpoint": payload})


def details(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.get_json()
    return response.get_json()["error_details"]


def deliveries() -> list[WebhookDelivery]:
    """This test's deliveries (the fixture failed any other)."""
    query = select(WebhookDelivery).where(WebhookDelivery.status != DeliveryStatus.FAILED)
    return list(db.session.scalars(query.order_by(WebhookDelivery.id)))


# ---------------------------------------------------------------------------------------------
# Endpoints API


def test_create_list_show_update_delete(api_client: Any, org: Any) -> None:
    response = create(api_client, name="Backend", event_types=["customer.created"])
    assert response.status_code == 200
    endpoint = response.get_json()["webhook_endpoint"]
    assert endpoint["webhook_url"] == "https://example.com/hooks"
    assert endpoint["signature_algo"] == "jwt"  # Lago's default
    assert endpoint["lago_organization_id"] == str(org.lago_id)
    assert endpoint["event_types"] == ["customer.created"]
    lago_id = endpoint["lago_id"]

    listed = api_client.get(URL).get_json()
    assert [e["lago_id"] for e in listed["webhook_endpoints"]] == [lago_id]
    assert listed["meta"]["total_count"] == 1
    assert api_client.get(f"{URL}/{lago_id}").get_json()["webhook_endpoint"] == endpoint

    updated = api_client.put(
        f"{URL}/{lago_id}",
        json={"webhook_endpoint": {"signature_algo": "hmac", "event_types": None}},
    ).get_json()["webhook_endpoint"]
    assert (updated["signature_algo"], updated["event_types"]) == ("hmac", None)

    assert api_client.delete(f"{URL}/{lago_id}").status_code == 200
    assert api_client.get(f"{URL}/{lago_id}").status_code == 404
    activities = db.session.scalars(
        select(ActivityLog.activity_type).where(ActivityLog.resource_id == lago_id)
    ).all()
    assert sorted(activities) == [
        "webhook_endpoint.created",
        "webhook_endpoint.deleted",
        "webhook_endpoint.updated",
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"webhook_url": "ftp://example.com/x"}, {"webhook_url": ["url_is_invalid"]}),
        ({"webhook_url": "example.com/hooks"}, {"webhook_url": ["url_is_invalid"]}),
        ({"webhook_url": "https://exa mple.com"}, {"webhook_url": ["url_is_invalid"]}),
        ({"webhook_url": "https://example.com:99999/"}, {"webhook_url": ["url_is_invalid"]}),
        ({"webhook_url": ""}, {"webhook_url": ["value_is_mandatory"]}),
        ({"signature_algo": "md5"}, {"signature_algo": ["value_is_invalid"]}),
        ({"event_types": ["customer.exploded"]}, {"event_types": ["value_is_invalid"]}),
        ({"event_types": "customer.created"}, {"event_types": ["value_is_invalid"]}),
        ({"event_types": [{}]}, {"event_types": ["value_is_invalid"]}),  # was a 500 (unhashable)
        ({"signature_algo": ["hmac"]}, {"signature_algo": ["value_is_invalid"]}),
        ({"name": "x" * 256}, {"name": ["value_is_too_long"]}),
    ],
)
def test_bad_input_is_422_and_stores_nothing(
    api_client: Any, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert details(create(api_client, **fields)) == expected
    assert api_client.get(URL).get_json()["meta"]["total_count"] == 0


def test_url_is_unique_and_ten_endpoints_at_most(api_client: Any) -> None:
    assert create(api_client).status_code == 200
    assert details(create(api_client)) == {"webhook_url": ["value_already_exist"]}
    for n in range(9):
        assert create(api_client, webhook_url=f"https://example.com/{n}").status_code == 200
    assert details(create(api_client, webhook_url="https://example.com/11")) == {
        "base": ["webhook_endpoints_limit_reached"]
    }


def test_other_organizations_endpoints_are_not_found(api_client: Any) -> None:
    other = factories.make_organization()
    other_key = factories.make_api_key(other)
    lago_id = create(api_client).get_json()["webhook_endpoint"]["lago_id"]
    headers = {"Authorization": f"Bearer {other_key}"}
    response = api_client.client.get(f"{URL}/{lago_id}", headers=headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "webhook_endpoint_not_found"
    assert api_client.client.delete(f"{URL}/{lago_id}", headers=headers).status_code == 404
    assert api_client.get(f"{URL}/not-a-uuid").status_code == 404


def test_public_key_is_stable_and_served_both_ways(api_client: Any) -> None:
    first = api_client.get("/api/v1/webhooks/json_public_key").get_json()["webhook"]["public_key"]
    second = api_client.get("/api/v1/webhooks/json_public_key").get_json()["webhook"]["public_key"]
    assert first == second
    assert base64.b64decode(first).startswith(b"-----BEGIN PUBLIC KEY-----")
    plain = api_client.get("/api/v1/webhooks/public_key")
    assert plain.mimetype == "text/plain" and plain.get_data(as_text=True) == first


# ---------------------------------------------------------------------------------------------
# Delivery and signatures, checked without the product's code


def verify_jwt(token: str, public_key_pem: bytes) -> dict[str, Any]:
    """RS256 by hand: the signature over `header.payload` with the published key."""
    header_b64, payload_b64, signature_b64 = token.split(".")

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    assert json.loads(decode(header_b64))["alg"] == "RS256"
    key = serialization.load_pem_public_key(public_key_pem)
    key.verify(  # type: ignore[union-attr,call-arg]
        decode(signature_b64),
        f"{header_b64}.{payload_b64}".encode(),
        padding.PKCS1v15(),  # type: ignore[arg-type]
        hashes.SHA256(),  # type: ignore[arg-type]
    )
    return json.loads(decode(payload_b64))


def verify_ledgerline(header: str, body: str, secret: str) -> int:
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    assert match, header
    expected = hmac.new(secret.encode(), f"{match[1]}.{body}".encode(), hashlib.sha256)
    assert hmac.compare_digest(expected.hexdigest(), match[2])
    return int(match[1])


def test_signed_deliveries_reach_subscribed_endpoints(
    api_client: Any, org: Any, receiver: Receiver
) -> None:
    create(api_client, webhook_url=receiver.url + "/hmac", signature_algo="hmac")
    create(
        api_client,
        webhook_url=receiver.url + "/jwt",
        signature_algo="jwt",
        event_types=["customer.created"],
    )
    customer = {"external_id": "acme", "name": "Acme"}
    api_client.post("/api/v1/customers", json={"customer": customer})
    api_client.post("/api/v1/customers", json={"customer": {**customer, "name": "Acme Inc"}})

    assert webhooks.dispatch_outbox() == 2
    assert webhooks.dispatch_outbox() == 0  # nothing twice
    assert webhooks.deliver_due() == 3
    assert {d.status for d in deliveries()} == {DeliveryStatus.SUCCEEDED}

    received = sorted(
        (r["headers"]["X-Lago-Signature-Algorithm"], json.loads(r["body"])["webhook_type"])
        for r in receiver.requests
    )
    assert received == [
        ("hmac", "customer.created"),
        ("hmac", "customer.updated"),
        ("jwt", "customer.created"),
    ]
    public_pem = base64.b64decode(
        api_client.get("/api/v1/webhooks/json_public_key").get_json()["webhook"]["public_key"]
    )
    for request in receiver.requests:
        headers, body = request["headers"], request["body"]
        payload = json.loads(body)
        assert payload["organization_id"] == str(org.lago_id)
        assert payload["object_type"] == "customer"
        assert payload["customer"]["external_id"] == "acme"
        if headers["X-Lago-Signature-Algorithm"] == "hmac":
            digest = hmac.new(org.webhook_secret.encode(), body.encode(), hashlib.sha256).digest()
            assert headers["X-Lago-Signature"] == base64.b64encode(digest).decode()
        else:
            claims = verify_jwt(headers["X-Lago-Signature"], public_pem)
            assert claims["data"] == body
            assert claims["iss"] == "http://testserver"
        sent_at = verify_ledgerline(headers["X-Ledgerline-Signature"], body, org.webhook_secret)
        assert abs(sent_at - now_utc().timestamp()) < 60
    keys = [r["headers"]["X-Lago-Unique-Key"] for r in receiver.requests]
    assert sorted(keys) == sorted(str(d.lago_id) for d in deliveries())
    customer_id = db.session.scalar(
        select(WebhookDelivery.customer_id).where(WebhookDelivery.event_type == "customer.created")
    )
    assert customer_id is not None  # shown on the customer's timeline


def test_a_tampered_body_fails_every_signature(org: Any) -> None:
    body = '{"webhook_type":"customer.created"}'
    header = webhooks.ledgerline_signature(org.webhook_secret, body, 1_700_000_000)
    with pytest.raises(AssertionError):
        verify_ledgerline(header, body.replace("created", "updated"), org.webhook_secret)
    assert webhooks.hmac_signature(org.webhook_secret, body) != webhooks.hmac_signature(
        org.webhook_secret, body + " "
    )


def test_receiver_down_then_up_is_delivered_after_retries(
    api_client: Any, receiver: Receiver
) -> None:
    create(api_client, webhook_url=receiver.url, signature_algo="hmac")
    api_client.post("/api/v1/customers", json={"customer": {"external_id": "acme"}})
    webhooks.dispatch_outbox()
    receiver.statuses = [500, 503]

    assert webhooks.deliver_due() == 1
    (delivery,) = deliveries()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("retrying", 1, 500)
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > now_utc()
    assert webhooks.deliver_due() == 0  # not due before its backoff

    for expected_attempts, expected_status in ((2, "retrying"), (3, "succeeded")):
        delivery.next_attempt_at = now_utc() - timedelta(seconds=1)  # the backoff has passed
        db.session.commit()
        assert webhooks.deliver_due() == 1
        assert (delivery.status, delivery.attempts) == (expected_status, expected_attempts)
    assert len(receiver.requests) == 3
    assert len({r["headers"]["X-Lago-Unique-Key"] for r in receiver.requests}) == 1


def test_unreachable_receiver_fails_after_the_retry_window(api_client: Any, app: Any) -> None:
    create(api_client, webhook_url="http://127.0.0.1:9/closed", signature_algo="hmac")
    api_client.post("/api/v1/customers", json={"customer": {"external_id": "acme"}})
    webhooks.dispatch_outbox()
    assert webhooks.deliver_due() == 1
    (delivery,) = deliveries()
    assert delivery.status == "retrying" and delivery.response_status is None
    assert delivery.last_error
    delivery.created_at = now_utc() - timedelta(hours=24)  # its window has (nearly) passed
    delivery.next_attempt_at = now_utc()
    db.session.commit()
    assert webhooks.deliver_due() == 1
    assert (delivery.status, delivery.next_attempt_at) == ("failed", None)


def test_backoff_doubles_from_30_seconds_up_to_two_hours() -> None:
    waits = [webhooks.backoff(n).total_seconds() for n in range(1, 11)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3840, 7200, 7200]


def test_timeout_and_retry_window_come_from_the_environment() -> None:
    assert (Config({}).WEBHOOK_TIMEOUT_SECONDS, Config({}).WEBHOOK_RETRY_HOURS) == (10, 24)
    configured = Config({"WEBHOOK_TIMEOUT_SECONDS": "3", "WEBHOOK_RETRY_HOURS": "1"})
    assert (configured.WEBHOOK_TIMEOUT_SECONDS, configured.WEBHOOK_RETRY_HOURS) == (3, 1)


@pytest.mark.parametrize(("retry_hours", "attempts"), [(None, 19), (1, 7)])
def test_retries_back_off_until_the_retry_window_closes(
    api_client: Any,
    app: Any,
    clock: list[datetime],
    monkeypatch: pytest.MonkeyPatch,
    retry_hours: int | None,
    attempts: int,
) -> None:
    """Failing every time, with a frozen clock moved to each retry: the waits follow the backoff
    and the delivery fails at the first retry that would fall after the window (24 h by
    default: 19 attempts; 1 h: 7). Each request is sent with the 10 s timeout."""
    if retry_hours is not None:
        monkeypatch.setitem(app.config, "WEBHOOK_RETRY_HOURS", retry_hours)
    create(api_client, webhook_url="https://backend.example.com/hooks", signature_algo="hmac")
    api_client.post("/api/v1/customers", json={"customer": {"external_id": "acme"}})
    webhooks.dispatch_outbox()
    (delivery,) = deliveries()
    timeouts: list[Any] = []

    def answer_500(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(500)

    waits = []
    with httpx.Client(transport=httpx.MockTransport(answer_500)) as http:
        while delivery.status != DeliveryStatus.FAILED:
            assert webhooks.deliver_due(client=http) == 1
            if delivery.next_attempt_at is not None:
                waits.append(delivery.next_attempt_at - clock[0])
                clock[0] = delivery.next_attempt_at
    assert delivery.attempts == attempts
    assert waits == [webhooks.backoff(n) for n in range(1, attempts)]
    window = timedelta(hours=retry_hours or 24)
    assert clock[0] - delivery.created_at <= window < sum(waits, webhooks.backoff(attempts))
    assert {t["read"] for t in timeouts} == {10}


def test_a_sender_dying_mid_flight_loses_nothing(api_client: Any, receiver: Receiver) -> None:
    create(api_client, webhook_url=receiver.url, signature_algo="hmac")
    api_client.post("/api/v1/customers", json={"customer": {"external_id": "acme"}})
    webhooks.dispatch_outbox()
    (claimed,) = webhooks.claim_due()  # leased and committed; then the process dies
    assert webhooks.claim_due() == []  # another sender does not take it during the lease
    later = now_utc() + webhooks.lease_duration(1) + timedelta(seconds=1)
    (again,) = webhooks.claim_due(at=later)
    assert again.id == claimed.id
    webhooks.record(webhooks.send(again, httpx.Client()))
    assert again.status == "succeeded" and len(receiver.requests) == 1


def test_replay_and_test_event(api_client: Any, org: Any, receiver: Receiver) -> None:
    lago_id = create(api_client, webhook_url=receiver.url, signature_algo="hmac").get_json()[
        "webhook_endpoint"
    ]["lago_id"]
    endpoint = webhooks.get_endpoint(org, lago_id)
    test = webhooks.send_test(org, endpoint, factories.TEST_ACTOR)
    db.session.commit()
    assert webhooks.deliver_due() == 1
    assert json.loads(receiver.requests[0]["body"])["webhook_type"] == "webhook.test"
    webhooks.replay(test, factories.TEST_ACTOR)
    db.session.commit()
    assert webhooks.deliver_due() == 1
    assert test.status == "succeeded" and test.attempts == 2 and len(receiver.requests) == 2


# ---------------------------------------------------------------------------------------------
# Every event type the product writes to the outbox reaches a catch-all endpoint


def test_every_emitted_type_is_known_and_delivered(
    api_client: Any, org: Any, receiver: Receiver
) -> None:
    types = outbox.WEBHOOK_TYPES
    assert types <= webhooks.KNOWN_TYPES
    create(api_client, webhook_url=receiver.url, signature_algo="hmac")
    for event_type in sorted(types):
        outbox.emit(org.id, event_type, event_type.split(".")[0], {"lago_id": "x"})
    db.session.commit()
    assert webhooks.dispatch_outbox() == len(types)
    while webhooks.deliver_due():
        pass
    delivered = {json.loads(r["body"])["webhook_type"] for r in receiver.requests}
    assert delivered == types
    undispatched = db.session.scalar(
        select(func.count()).where(OutboxEvent.dispatched_at.is_(None))
    )
    assert undispatched == 0


def test_the_outbox_refuses_an_unlisted_type(org: Any) -> None:
    with pytest.raises(ValueError, match="WEBHOOK_TYPES"):
        outbox.emit(org.id, "customer.exploded", "customer", {})


# ---------------------------------------------------------------------------------------------
# Real actions


def test_the_loop_closes_a_crm_customer_goes_out_as_customer_created(
    client: Any, org: Any, receiver: Receiver
) -> None:
    webhooks.create_endpoint(
        org,
        {
            "webhook_url": receiver.url,
            "signature_algo": "hmac",
            "event_types": ["customer.created"],
        },
        factories.TEST_ACTOR,
    )
    db.session.commit()
    company = {"objectType": "company", "objectId": 31337, "properties": {"name": "Pied Piper"}}
    answer = send_inbound(client, org, company, delivery="crm-evt-1")
    assert answer.status_code == 201
    assert webhooks.dispatch_outbox() == 1
    assert webhooks.deliver_due() == 1
    (request,) = receiver.requests
    headers, body = request["headers"], request["body"]
    verify_ledgerline(headers["X-Ledgerline-Signature"], body, org.webhook_secret)
    digest = hmac.new(org.webhook_secret.encode(), body.encode(), hashlib.sha256).digest()
    assert headers["X-Lago-Signature"] == base64.b64encode(digest).decode()
    payload = json.loads(body)
    assert payload["webhook_type"] == "customer.created"
    assert payload["customer"]["lago_id"] == answer.get_json()["customer"]["lago_id"]
    assert payload["customer"]["name"] == "Pied Piper"
    assert payload["customer"]["integration_customers"][0]["external_customer_id"] == "31337"


def test_drafting_voiding_and_a_credit_note_pdf_are_delivered(
    api_client: Any, org: Any, clock: list[datetime], receiver: Receiver
) -> None:
    announced = [
        "invoice.drafted",
        "invoice.voided",
        "credit_note.created",
        "credit_note.generated",
    ]
    create(api_client, webhook_url=receiver.url, signature_algo="hmac", event_types=announced)
    customer = factories.make_customer(
        org, currency="EUR", billing_configuration={"invoice_grace_period": 3}
    )
    plan = factories.make_plan(org, charges=[])
    factories.make_subscription(org, customer, plan, subscription_at="2024-01-01T00:00:00Z")
    clock[0] = datetime(2024, 2, 1, 0, 0, 10, tzinfo=UTC)
    invoicing.close_periods(organization_id=org.id)
    (invoice,) = factories.invoices_of(org)
    assert invoice.status == "draft"  # the grace period
    invoice_id = str(invoice.lago_id)
    assert api_client.put(f"/api/v1/invoices/{invoice_id}/finalize").status_code == 200
    (fee,) = invoice.fees
    note = api_client.post(
        "/api/v1/credit_notes",
        json={
            "credit_note": {
                "invoice_id": invoice_id,
                "reason": "other",
                "items": [{"fee_id": str(fee.lago_id), "amount_cents": 100}],
                "credit_amount_cents": 100,
                "refund_amount_cents": 0,
            }
        },
    )
    assert note.status_code == 200, note.get_json()
    note_id = note.get_json()["credit_note"]["lago_id"]
    documents.generate_pdf(
        "credit_note",
        db.session.scalars(select(CreditNote).where(CreditNote.organization_id == org.id)).one(),
    )
    db.session.commit()
    assert api_client.post(f"/api/v1/invoices/{invoice_id}/void").status_code == 200

    while webhooks.dispatch_outbox():
        pass
    while webhooks.deliver_due():
        pass
    received = []
    for request in receiver.requests:
        payload = json.loads(request["body"])
        received.append((payload["webhook_type"], payload[payload["object_type"]]["lago_id"]))
    assert sorted(received) == sorted(
        [
            ("invoice.drafted", invoice_id),
            ("invoice.voided", invoice_id),
            ("credit_note.created", note_id),
            ("credit_note.generated", note_id),
        ]
    )
