"""Credit notes with a frozen clock: creation through /api/v1/credit_notes with exact amounts and
Lago's error codes (nothing written on an error), estimate, refund status, void; the credit
consumed by the customer's next invoices; the credit of a subscription paid in advance that
ends mid-period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from billing.models import ActivityLog, CreditNote, Invoice, OutboxEvent
from billing.services import credit_notes, invoicing
from billing.services import subscriptions as subscription_service
from extensions import db
from tests import factories
from tests.factories import TEST_ACTOR, invoices_of
from tests.test_invoicing import at

#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = at("2024-01-01T00:00:00")


def close(clock: Any, when: str, org: Any) -> list[Invoice]:
    clock[0] = at(when)
    report = invoicing.close_periods(organization_id=org.id)
    assert report.failed == []
    return invoices_of(org)


@pytest.fixture
def billed(clock: Any, org: Any) -> dict[str, Any]:
    """Acme (UTC, no grace period, monthly 10.00 EUR in arrears + 0.50 per unit): January is
    finalized with a base fee of 1000 and a usage fee of 200 (total 1200)."""
    customer = factories.make_customer(org, external_id="acme", currency="EUR")
    plan = factories.make_plan(org)
    subscription = factories.make_subscription(
        org, customer, plan, external_id="acme-sub", subscription_at="2024-01-01T00:00:00Z"
    )
    factories.send_event(org, subscription, at("2024-01-10T00:00:00"), value=4)
    [january] = close(clock, "2024-02-01T00:00:10", org)
    base, usage = january.fees
    assert (base.amount_cents, usage.amount_cents, january.total_amount_cents) == (1000, 200, 1200)
    return {"customer": customer, "subscription": subscription, "january": january,
            "base": base, "usage": usage, "clock": clock}  # fmt: skip


def body(invoice: Invoice, items: list[tuple[Any, int]], **amounts: Any) -> dict[str, Any]:
    return {
        "credit_note": {
            "invoice_id": str(invoice.lago_id),
            "reason": amounts.pop("reason", "duplicated_charge"),
            "description": "counted twice",
            "items": [{"fee_id": str(fee.lago_id), "amount_cents": cents} for fee, cents in items],
            **amounts,
        }
    }


def pay(invoice: Invoice) -> None:
    invoicing.update_invoice(invoice, {"payment_status": "succeeded"}, TEST_ACTOR)
    db.session.commit()


def count(model: Any, org: Any) -> int:
    return db.session.scalar(select(func.count(model.id)).where(model.organization_id == org.id))


# ---------------------------------------------------------------------------------------------
# Creation


@pytest.mark.parametrize(
    ("items", "credit", "refund", "paid", "balance", "refund_status"),
    [
        ([("base", 300)], 300, 0, False, 300, None),  # partial credit
        ([("base", 1000), ("usage", 200)], 1200, 0, False, 1200, None),  # everything
        ([("base", 1000), ("usage", 200)], 200, 1000, True, 200, "pending"),  # paid: refund
        ([("usage", 150)], 0, 150, True, 0, "pending"),  # refund only
    ],
)
def test_create_credit_note(api_client, billed, org, items, credit, refund, paid, balance,
                            refund_status):  # fmt: skip
    january = billed["january"]
    if paid:
        pay(january)
    response = api_client.post(
        "/api/v1/credit_notes",
        json=body(
            january,
            [(billed[name], cents) for name, cents in items],
            credit_amount_cents=credit,
            refund_amount_cents=refund,
        ),
    )

    assert response.status_code == 200, response.get_json()
    note = response.get_json()["credit_note"]
    total = sum(cents for _, cents in items)
    assert note["number"] == f"{january.number}-CN001"
    assert (note["sequential_id"], note["lago_invoice_id"], note["invoice_number"]) == (
        1, str(january.lago_id), january.number,
    )  # fmt: skip
    assert (note["reason"], note["description"], note["currency"]) == (
        "duplicated_charge", "counted twice", "EUR",
    )  # fmt: skip
    assert {key: note[key] for key in (
        "sub_total_excluding_taxes_amount_cents", "taxes_amount_cents", "total_amount_cents",
        "credit_amount_cents", "refund_amount_cents", "balance_amount_cents",
        "offset_amount_cents", "coupons_adjustment_amount_cents",
    )} == {
        "sub_total_excluding_taxes_amount_cents": total, "taxes_amount_cents": 0,
        "total_amount_cents": total, "credit_amount_cents": credit,
        "refund_amount_cents": refund, "balance_amount_cents": balance,
        "offset_amount_cents": 0, "coupons_adjustment_amount_cents": 0,
    }  # fmt: skip
    assert (note["credit_status"], note["refund_status"]) == ("available", refund_status)
    assert note["issuing_date"] == "2024-02-01"
    assert [(item["fee"]["lago_id"], item["amount_cents"]) for item in note["items"]] == [
        (str(billed[name].lago_id), cents) for name, cents in items
    ]
    assert note["customer"]["external_id"] == "acme"
    created = db.session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.organization_id == org.id, OutboxEvent.event_type == "credit_note.created"
        )
    ).all()
    assert [event.payload["lago_id"] for event in created] == [note["lago_id"]]
    assert (
        db.session.scalar(
            select(func.count(ActivityLog.id)).where(
                ActivityLog.organization_id == org.id,
                ActivityLog.activity_type == "credit_note.created",
                ActivityLog.resource_label == note["number"],
            )
        )
        == 1
    )


def test_second_credit_note_is_numbered_after_the_first_and_takes_what_is_left(api_client, billed):
    january, base = billed["january"], billed["base"]
    first = api_client.post(
        "/api/v1/credit_notes", json=body(january, [(base, 600)], credit_amount_cents=600)
    )
    too_much = api_client.post(
        "/api/v1/credit_notes", json=body(january, [(base, 401)], credit_amount_cents=401)
    )
    second = api_client.post(
        "/api/v1/credit_notes", json=body(january, [(base, 400)], credit_amount_cents=400)
    )

    assert first.status_code == 200
    assert too_much.status_code == 422
    assert too_much.get_json()["error_details"] == {
        "amount_cents": ["higher_than_remaining_fee_amount"]
    }
    assert second.get_json()["credit_note"]["number"] == f"{january.number}-CN002"
    state = credit_notes.invoice_credit_state(january)
    assert (state.credited_cents, state.creditable_cents) == (1000, 200)


def invoice_of(billed: dict[str, Any], which: str) -> Invoice:
    if which == "january":
        return billed["january"]
    other = factories.make_customer(billed["january"].customer.organization, currency="EUR")
    subscription = factories.make_subscription(
        other.organization, other, billed["subscription"].plan,
        subscription_at="2024-01-01T00:00:00Z",
    )  # fmt: skip
    db.session.flush()
    invoicing.close_periods(organization_id=other.organization_id)
    return db.session.scalars(
        select(Invoice).where(Invoice.customer_id == subscription.customer_id)
    ).one()


@pytest.mark.parametrize(
    ("amounts", "paid", "details"),
    [
        # items do not add up to credit + refund
        ({"credit_amount_cents": 100, "items": [("base", 200)]}, False,
         {"base": ["does_not_match_item_amounts"]}),
        # above what the fee has left
        ({"credit_amount_cents": 1001, "items": [("base", 1001)]}, False,
         {"amount_cents": ["higher_than_remaining_fee_amount"]}),
        # the same fee twice, together above its amount
        ({"credit_amount_cents": 1200, "items": [("base", 600), ("base", 600)]}, False,
         {"amount_cents": ["higher_than_remaining_fee_amount"]}),
        # a refund of an unpaid invoice
        ({"credit_amount_cents": 0, "refund_amount_cents": 100, "items": [("base", 100)]},
         False, {"refund_amount_cents": ["cannot_refund_unpaid_invoice"]}),
        # negative amounts
        ({"credit_amount_cents": -100, "items": [("base", 100)]}, False,
         {"credit_amount_cents": ["value_is_out_of_range"]}),
        ({"credit_amount_cents": 0, "items": [("base", -100)]}, False,
         {"amount_cents": ["invalid_value"]}),
        ({"refund_amount_cents": -5, "items": [("base", 5)]}, True,
         {"refund_amount_cents": ["value_is_out_of_range"]}),
        # unreadable values
        ({"credit_amount_cents": "ten", "items": [("base", 10)]}, False,
         {"credit_amount_cents": ["value_is_invalid"]}),
        ({"credit_amount_cents": 10, "reason": "angry", "items": [("base", 10)]}, False,
         {"reason": ["value_is_invalid"]}),
        ({"credit_amount_cents": 10, "items": "all"}, False, {"items": ["must_be_an_array"]}),
        ({"credit_amount_cents": 10, "items": []}, False, {"items": ["value_is_mandatory"]}),
        # an offset of a paid invoice: nothing is due on it (tests/test_credit_note_offsets.py)
        ({"credit_amount_cents": 0, "offset_amount_cents": 10, "items": [("base", 10)]}, True,
         {"offset_amount_cents": ["higher_than_remaining_invoice_amount"]}),
    ],
)  # fmt: skip
def test_bad_input_is_422_and_writes_nothing(api_client, billed, org, amounts, paid, details):
    january = billed["january"]
    if paid:
        pay(january)
    amounts = dict(amounts)  # the table is shared by both backends' runs
    raw_items = amounts.pop("items")
    payload = body(january, [], **amounts)
    payload["credit_note"]["items"] = (
        [{"fee_id": str(billed[name].lago_id), "amount_cents": cents} for name, cents in raw_items]
        if isinstance(raw_items, list)
        else raw_items
    )
    outbox_before = count(OutboxEvent, org)

    response = api_client.post("/api/v1/credit_notes", json=payload)

    assert response.status_code == 422
    assert response.get_json() == {
        "status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
        "error_details": details,
    }  # fmt: skip
    assert count(CreditNote, org) == 0
    assert count(OutboxEvent, org) == outbox_before


def test_refund_is_limited_to_what_was_paid_less_earlier_refunds(api_client, billed):
    january, base = billed["january"], billed["base"]
    pay(january)
    ok = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(base, 1000)], refund_amount_cents=1000),
    )
    usage_refund = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["usage"], 200)], refund_amount_cents=200),
    )

    assert ok.status_code == 200
    assert usage_refund.status_code == 200  # paid 1200: 1000 + 200 refunded
    assert credit_notes.invoice_credit_state(january).refundable_cents == 0


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("unknown invoice", 404, "invoice_not_found"),
        ("fee of another invoice", 404, "fee_not_found"),
        ("voided invoice", 405, "invalid_type_or_status"),
        ("draft invoice", 405, "invalid_type_or_status"),
    ],
)
def test_invoice_and_fee_errors(api_client, billed, org, case, status, code):
    january = billed["january"]
    payload = body(january, [(billed["base"], 100)], credit_amount_cents=100)
    if case == "unknown invoice":
        payload["credit_note"]["invoice_id"] = "00000000-0000-0000-0000-000000000000"
    elif case == "fee of another invoice":
        other = invoice_of(billed, "other")
        payload["credit_note"]["items"][0]["fee_id"] = str(other.fees[0].lago_id)
    elif case == "voided invoice":
        invoicing.void_invoice(january, TEST_ACTOR)
        db.session.commit()
    else:
        january.status = "draft"
        db.session.commit()

    response = api_client.post("/api/v1/credit_notes", json=payload)

    assert response.status_code == status
    assert response.get_json()["code"] == code
    assert count(CreditNote, org) == 0


# ---------------------------------------------------------------------------------------------
# Estimate, update, void, list, download


def test_estimate(api_client, billed):
    january = billed["january"]
    payload = {
        "credit_note": {
            "invoice_id": str(january.lago_id),
            "items": [
                {"fee_id": str(billed["base"].lago_id), "amount_cents": 500},
                {"fee_id": str(billed["usage"].lago_id), "amount_cents": 50},
            ],
        }
    }
    unpaid = api_client.post("/api/v1/credit_notes/estimate", json=payload).get_json()
    pay(january)
    paid = api_client.post("/api/v1/credit_notes/estimate", json=payload).get_json()
    payload["credit_note"]["items"][0]["amount_cents"] = 1001
    too_much = api_client.post("/api/v1/credit_notes/estimate", json=payload)

    estimate = unpaid["estimated_credit_note"]
    assert (estimate["lago_invoice_id"], estimate["invoice_number"], estimate["currency"]) == (
        str(january.lago_id), january.number, "EUR",
    )  # fmt: skip
    assert (
        estimate["sub_total_excluding_taxes_amount_cents"], estimate["taxes_amount_cents"],
        estimate["max_creditable_amount_cents"], estimate["max_refundable_amount_cents"],
    ) == (550, 0, 550, 0)  # fmt: skip
    assert estimate["items"] == [
        {"amount_cents": 500, "lago_fee_id": str(billed["base"].lago_id)},
        {"amount_cents": 50, "lago_fee_id": str(billed["usage"].lago_id)},
    ]
    assert paid["estimated_credit_note"]["max_refundable_amount_cents"] == 550
    assert too_much.status_code == 422
    assert too_much.get_json()["error_details"] == {
        "amount_cents": ["higher_than_remaining_fee_amount"]
    }
    assert count(CreditNote, billed["customer"].organization) == 0


def test_refund_status_update(api_client, billed):
    january = billed["january"]
    pay(january)
    refunded = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["base"], 100)], refund_amount_cents=100),
    ).get_json()["credit_note"]
    credited = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["base"], 100)], credit_amount_cents=100),
    ).get_json()["credit_note"]
    url = f"/api/v1/credit_notes/{refunded['lago_id']}"

    bad = api_client.put(url, json={"credit_note": {"refund_status": "done"}})
    ok = api_client.put(url, json={"credit_note": {"refund_status": "succeeded"}})
    nothing_to_refund = api_client.put(
        f"/api/v1/credit_notes/{credited['lago_id']}",
        json={"credit_note": {"refund_status": "succeeded"}},
    )

    assert bad.status_code == 422
    assert bad.get_json()["error_details"] == {"refund_status": ["value_is_invalid"]}
    assert ok.get_json()["credit_note"]["refund_status"] == "succeeded"
    assert nothing_to_refund.status_code == 422
    assert nothing_to_refund.get_json()["error_details"] == {
        "refund_status": ["cannot_refund_credit_note"]
    }


def test_void_voids_the_balance_left_once(api_client, billed, org):
    january = billed["january"]
    note = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["base"], 300)], credit_amount_cents=300),
    ).get_json()["credit_note"]
    url = f"/api/v1/credit_notes/{note['lago_id']}/void"

    voided = api_client.put(url)
    again = api_client.put(url)
    [february] = close(billed["clock"], "2024-03-01T00:00:10", org)[1:]

    assert voided.status_code == 200
    voided_note = voided.get_json()["credit_note"]
    assert (voided_note["credit_status"], voided_note["balance_amount_cents"]) == ("voided", 0)
    assert voided_note["credit_amount_cents"] == 300  # what was credited stays on record
    assert again.status_code == 405
    assert again.get_json() == {
        "status": 405, "error": "Method Not Allowed", "code": "no_voidable_amount",
    }  # fmt: skip
    assert february.credit_notes_amount_cents == 0  # a voided credit is not consumed
    assert february.total_amount_cents == 1000


def test_list_filters_show_and_download(api_client, billed, org):
    january = billed["january"]
    pay(january)
    credit = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["base"], 300)], credit_amount_cents=300,
                  reason="order_change"),
    ).get_json()["credit_note"]  # fmt: skip
    billed["clock"][0] = at("2024-02-01T10:00:00")
    refund = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["usage"], 200)], refund_amount_cents=200),
    ).get_json()["credit_note"]

    def listed(query: str) -> list[str]:
        response = api_client.get(f"/api/v1/credit_notes?{query}")
        assert response.status_code == 200, response.get_json()
        return [note["lago_id"] for note in response.get_json()["credit_notes"]]

    assert listed("") == [refund["lago_id"], credit["lago_id"]]
    assert listed("external_customer_id=acme&per_page=1") == [refund["lago_id"]]
    assert listed("external_customer_id=nobody") == []
    assert listed("reason=order_change") == [credit["lago_id"]]
    assert listed("refund_status=pending") == [refund["lago_id"]]
    assert listed("credit_status=available&amount_from=250") == [credit["lago_id"]]
    assert listed(f"invoice_number={january.number}&amount_to=250") == [refund["lago_id"]]
    assert listed("search_term=CN002") == [refund["lago_id"]]
    assert listed("issuing_date_from=2024-02-02") == []
    assert listed("self_billed=true") == []
    bad = api_client.get("/api/v1/credit_notes?credit_status=gone&issuing_date_to=soon")
    assert bad.status_code == 422
    assert bad.get_json()["error_details"] == {
        "credit_status": ["value_is_invalid"], "issuing_date_to": ["invalid_date"],
    }  # fmt: skip
    shown = api_client.get(f"/api/v1/credit_notes/{credit['lago_id']}")
    assert shown.get_json()["credit_note"] == credit
    missing = api_client.get("/api/v1/credit_notes/nope")
    assert missing.status_code == 404
    assert missing.get_json()["code"] == "credit_note_not_found"
    download = api_client.post(
        f"/api/v1/credit_notes/{credit['lago_id']}/download", content_type="application/json"
    )
    assert download.status_code == 200
    assert download.get_json()["credit_note"]["file_url"].startswith("http")
    pdf = api_client.get(f"/api/v1/credit_notes/{credit['lago_id']}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


# ---------------------------------------------------------------------------------------------
# Credit consumed by later invoices


def test_credit_is_consumed_by_the_next_invoices_oldest_note_first(api_client, billed, org):
    january, clock = billed["january"], billed["clock"]
    older = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["base"], 700)], credit_amount_cents=700),
    ).get_json()["credit_note"]
    newer = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["usage"], 200), (billed["base"], 300)],
                  credit_amount_cents=500),
    ).get_json()["credit_note"]  # fmt: skip

    february = close(clock, "2024-03-01T00:00:10", org)[1]  # 1000 base, no usage
    after_february = {
        note.lago_id.hex: (note.balance_amount_cents, note.credit_status)
        for note in db.session.scalars(
            select(CreditNote).where(CreditNote.organization_id == org.id)
        )
    }
    march = close(clock, "2024-04-01T00:00:10", org)[2]

    assert (february.credit_notes_amount_cents, february.total_amount_cents) == (1000, 0)
    assert february.payment_status == "succeeded"  # a zero total
    assert after_february == {
        older["lago_id"].replace("-", ""): (0, "consumed"),
        newer["lago_id"].replace("-", ""): (200, "available"),
    }
    assert (march.credit_notes_amount_cents, march.total_amount_cents) == (200, 800)
    notes = db.session.scalars(select(CreditNote).where(CreditNote.organization_id == org.id))
    assert {note.credit_status for note in notes} == {"consumed"}
    shown = api_client.get(f"/api/v1/invoices/{march.lago_id}").get_json()["invoice"]
    assert shown["credit_notes_amount_cents"] == 200
    assert [
        (c["amount_cents"], c["item"]["type"], c["before_taxes"]) for c in shown["credits"]
    ] == [(200, "credit_note", False)]
    assert shown["credits"][0]["item"]["lago_item_id"] == newer["lago_id"]


def test_a_draft_shows_the_credit_and_consumes_it_when_finalized(api_client, billed, org):
    january, clock = billed["january"], billed["clock"]
    customer = billed["customer"]
    customer.invoice_grace_period = 3
    db.session.commit()
    note = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["base"], 400)], credit_amount_cents=400),
    ).get_json()["credit_note"]

    draft = close(clock, "2024-03-01T00:00:10", org)[1]
    stored = credit_notes.get_credit_note(org, note["lago_id"])
    balance_while_draft = stored.balance_amount_cents
    clock[0] = at("2024-03-02T00:00:00")
    invoicing.finalize_invoice(draft, TEST_ACTOR)
    db.session.commit()

    assert draft.status == "finalized"
    assert (draft.credit_notes_amount_cents, draft.total_amount_cents) == (400, 600)
    assert balance_while_draft == 400
    assert (stored.balance_amount_cents, stored.credit_status) == (0, "consumed")


def test_credit_in_another_currency_is_not_consumed(api_client, billed, org):
    note = api_client.post(
        "/api/v1/credit_notes",
        json=body(billed["january"], [(billed["base"], 400)], credit_amount_cents=400),
    ).get_json()["credit_note"]
    stored = credit_notes.get_credit_note(org, note["lago_id"])
    stored.currency = "USD"
    db.session.commit()

    february = close(billed["clock"], "2024-03-01T00:00:10", org)[1]

    assert february.credit_notes_amount_cents == 0
    assert stored.balance_amount_cents == 400


# ---------------------------------------------------------------------------------------------
# Termination and upgrade of a subscription paid in advance


def subscribe_in_advance(org: Any, clock: Any, tz: str, **customer: Any) -> Any:
    """A customer in `tz` on a monthly plan of 31.00 EUR paid in advance from January 1st
    (local): 100 cents a day in January."""
    begins = datetime(2024, 1, 1, tzinfo=ZoneInfo(tz))
    clock[0] = begins.astimezone(UTC)
    customer_ = factories.make_customer(org, currency="EUR", timezone=tz, **customer)
    plan = factories.make_plan(org, charges=[], amount_cents=3100, pay_in_advance=True)
    return factories.make_subscription(
        org, customer_, plan, subscription_at=begins.astimezone(UTC).isoformat()
    )


@pytest.mark.parametrize(
    ("tz", "terminated_at", "mode", "credit", "refund"),
    [
        # 10:00 on January 10th in Paris: January 11th-31st unused (21 days)
        ("Europe/Paris", "2024-01-10T09:00:00", "credit", 2100, 0),
        # 23:30 UTC is already January 11th in Paris: 20 days left
        ("Europe/Paris", "2024-01-10T23:30:00", "credit", 2000, 0),
        # ... and still January 10th in Los Angeles: 21 days left
        ("America/Los_Angeles", "2024-01-11T07:30:00", "credit", 2100, 0),
        # refund asked, the invoice paid: refunded instead
        ("Europe/Paris", "2024-01-10T09:00:00", "refund", 0, 2100),
        # the last day: nothing unused
        ("Europe/Paris", "2024-01-31T12:00:00", "credit", None, None),
        ("Europe/Paris", "2024-01-10T09:00:00", "skip", None, None),
    ],
)
def test_termination_credits_the_unused_days(clock, org, tz, terminated_at, mode, credit, refund):
    subscription = subscribe_in_advance(org, clock, tz)
    [starting] = invoices_of(org)
    assert starting.fees[0].amount_cents == 3100
    pay(starting)
    clock[0] = at(terminated_at)

    subscription_service.terminate_subscription(
        org, subscription, TEST_ACTOR, on_termination_credit_note=mode
    )
    db.session.commit()

    notes = db.session.scalars(select(CreditNote).where(CreditNote.organization_id == org.id)).all()
    if credit is None:
        assert notes == []
        return
    [note] = notes
    assert note.invoice_id == starting.id
    assert note.reason == "order_cancellation"
    assert (note.credit_amount_cents, note.refund_amount_cents, note.total_amount_cents) == (
        credit, refund, credit + refund,
    )  # fmt: skip
    assert [(item.fee_id, item.amount_cents) for item in note.items] == [
        (starting.fees[0].id, credit + refund)
    ]


def test_upgrade_credits_the_old_plan_from_the_upgrade_day_and_the_new_plan_consumes_it(clock, org):
    old = subscribe_in_advance(org, clock, "Europe/Paris")
    premium = factories.make_plan(org, charges=[], amount_cents=6200, pay_in_advance=True)
    clock[0] = at("2024-01-10T09:00:00")  # January 10th in Paris

    subscription_service.create_subscription(
        org,
        {"external_customer_id": old.customer.external_id, "plan_code": premium.code,
         "external_id": old.external_id},
        TEST_ACTOR,
    )  # fmt: skip
    db.session.commit()

    [note] = db.session.scalars(select(CreditNote).where(CreditNote.organization_id == org.id))
    assert note.reason == "order_change"
    assert note.credit_amount_cents == 2200  # January 10th-31st: 22 days of 100
    invoices = invoices_of(org)
    new_start = invoices[-1]
    assert new_start.fees[0].amount_cents == 4400  # 22 days of 200
    assert (new_start.credit_notes_amount_cents, new_start.total_amount_cents) == (2200, 2200)
    assert note.credit_status == "consumed"


def test_voiding_an_invoice_gives_its_credit_back(api_client, billed, org):
    january, clock = billed["january"], billed["clock"]
    kept = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(billed["base"], 600)], credit_amount_cents=600),
    ).get_json()["credit_note"]
    february = close(clock, "2024-03-01T00:00:10", org)[1]
    assert (february.credit_notes_amount_cents, february.total_amount_cents) == (600, 400)

    voided = api_client.post(
        f"/api/v1/invoices/{february.lago_id}/void", content_type="application/json"
    )

    assert voided.status_code == 200
    note = credit_notes.get_credit_note(org, kept["lago_id"])
    assert (note.balance_amount_cents, note.credit_status) == (600, "available")
    march = close(clock, "2024-04-01T00:00:10", org)[2]
    assert (march.credit_notes_amount_cents, march.total_amount_cents) == (600, 400)


def test_termination_while_the_invoice_is_a_draft_credits_at_finalization(clock, org):
    subscription = subscribe_in_advance(
        org, clock, "Europe/Paris", billing_configuration={"invoice_grace_period": 3}
    )
    [draft] = invoices_of(org)
    assert draft.status == "draft"
    clock[0] = at("2024-01-02T09:00:00")  # January 2nd in Paris: 29 days unused

    subscription_service.terminate_subscription(org, subscription, TEST_ACTOR)
    db.session.commit()
    assert count(CreditNote, org) == 0  # a draft's fees are not credited
    clock[0] = at("2024-01-04T00:00:00")
    invoicing.finalize_due_drafts()
    db.session.commit()

    [note] = db.session.scalars(select(CreditNote).where(CreditNote.organization_id == org.id))
    assert note.invoice_id == draft.id and note.number == f"{draft.number}-CN001"
    assert (note.reason, note.credit_amount_cents) == ("order_cancellation", 2900)


def test_termination_credit_deducts_what_was_credited_on_the_fee_already(clock, org):
    subscription = subscribe_in_advance(org, clock, "Europe/Paris")
    [starting] = invoices_of(org)
    fee = starting.fees[0]
    credit_notes.create_credit_note(
        starting,
        {"items": [{"fee_id": str(fee.lago_id), "amount_cents": 500}], "credit_amount_cents": 500},
        TEST_ACTOR,
    )
    clock[0] = at("2024-01-10T09:00:00")  # 21 days unused: 2100

    subscription_service.terminate_subscription(org, subscription, TEST_ACTOR)
    db.session.commit()

    notes = db.session.scalars(
        select(CreditNote).where(CreditNote.organization_id == org.id).order_by(CreditNote.id)
    ).all()
    assert [(n.reason, n.credit_amount_cents) for n in notes] == [
        ("other", 500), ("order_cancellation", 1600),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("paid", "options", "status", "result"),
    [
        # a paid invoice voided with a refund and a credit, spread over the fees (1000 / 200)
        (True, {"generate_credit_note": True, "refund_amount": 600, "credit_amount": 300},
         200, {"items": [750, 150], "refund": 600, "credit": 300}),
        # cents left by the spread go to the largest remainder: 834.17 / 166.83
        (False, {"generate_credit_note": True, "credit_amount": 1001},
         200, {"items": [834, 167], "refund": 0, "credit": 1001}),
        # asked explicitly, a paid invoice is voided without a credit note
        (True, {"generate_credit_note": False}, 200, None),
        # nothing asked: a paid invoice is not voidable
        (True, {}, 405, "not_voidable"),
        (False, {"generate_credit_note": True, "refund_amount": 100}, 422,
         {"refund_amount": ["refund_amount_exceeds_available_amount"]}),
        (True, {"generate_credit_note": True, "credit_amount": 1201}, 422,
         {"credit_amount": ["credit_amount_exceeds_available_amount"]}),
        (True, {"generate_credit_note": True, "credit_amount": 700, "refund_amount": 700}, 422,
         {"credit_amount": ["credit_amount_exceeds_available_amount"]}),
        (False, {"generate_credit_note": True, "credit_amount": -1}, 422,
         {"credit_amount": ["value_is_out_of_range"]}),
    ],
)  # fmt: skip
def test_void_invoice_with_a_credit_note(api_client, billed, org, paid, options, status, result):
    january = billed["january"]
    if paid:
        pay(january)

    response = api_client.post(f"/api/v1/invoices/{january.lago_id}/void", json=options)

    assert response.status_code == status, response.get_json()
    notes = db.session.scalars(select(CreditNote).where(CreditNote.organization_id == org.id)).all()
    db.session.expire_all()
    if status == 405:
        assert response.get_json()["code"] == result
    elif status == 422:
        assert response.get_json()["error_details"] == result
    if status != 200:
        assert notes == [] and january.status == "finalized"
        return
    assert response.get_json()["invoice"]["status"] == "voided"
    if result is None:
        assert notes == []
        return
    [note] = notes
    assert [item.amount_cents for item in note.items] == result["items"]
    assert (note.refund_amount_cents, note.credit_amount_cents) == (
        result["refund"],
        result["credit"],
    )
    assert note.number == f"{january.number}-CN001"


def test_metadata(api_client, billed):
    january = billed["january"]
    payload = body(january, [(billed["base"], 100)], credit_amount_cents=100)
    payload["credit_note"]["metadata"] = {"ticket": "SUP-42", "agent": None}
    note = api_client.post("/api/v1/credit_notes", json=payload).get_json()["credit_note"]
    url = f"/api/v1/credit_notes/{note['lago_id']}"

    updated = api_client.put(url, json={"credit_note": {"metadata": {"ticket": "SUP-43"}}})
    merged = api_client.client.patch(
        f"{url}/metadata", headers=api_client.headers, json={"metadata": {"region": "eu"}}
    )
    one_less = api_client.delete(f"{url}/metadata/ticket")
    replaced = api_client.post(f"{url}/metadata", json={"metadata": {"a": "1"}})
    bad = api_client.post(f"{url}/metadata", json={"metadata": {"x" * 41: "1"}})
    emptied = api_client.delete(f"{url}/metadata")

    assert note["metadata"] == {"ticket": "SUP-42", "agent": None}
    assert updated.get_json()["credit_note"]["metadata"] == {"ticket": "SUP-43"}
    assert merged.get_json() == {"metadata": {"ticket": "SUP-43", "region": "eu"}}
    assert one_less.get_json() == {"metadata": {"region": "eu"}}
    assert replaced.get_json() == {"metadata": {"a": "1"}}
    assert bad.status_code == 422
    assert bad.get_json()["error_details"] == {"metadata": ["value_is_too_long"]}
    assert emptied.get_json() == {"metadata": {}}


def test_taxes_are_the_fees_share_and_the_last_note_takes_exactly_what_is_left(api_client, billed):
    """Fees taxed 33.3 % (base 1000 + 333, usage 200 + 67): the shares of two credit notes
    would round to 1601; the second takes the taxes left, so they add up to 1600."""
    january, base, usage = billed["january"], billed["base"], billed["usage"]
    base.taxes_amount_cents, usage.taxes_amount_cents = 333, 67
    january.taxes_amount_cents = 400
    january.sub_total_including_taxes_amount_cents = january.total_amount_cents = 1600
    db.session.commit()

    first = api_client.post(
        "/api/v1/credit_notes", json=body(january, [(base, 500)], credit_amount_cents=667)
    )
    estimate = api_client.post(
        "/api/v1/credit_notes/estimate",
        json={"credit_note": {"invoice_id": str(january.lago_id), "items": [
            {"fee_id": str(base.lago_id), "amount_cents": 500},
            {"fee_id": str(usage.lago_id), "amount_cents": 200},
        ]}},
    )  # fmt: skip
    second = api_client.post(
        "/api/v1/credit_notes",
        json=body(january, [(base, 500), (usage, 200)], credit_amount_cents=933),
    )

    assert first.status_code == 200, first.get_json()
    note = first.get_json()["credit_note"]
    assert (note["taxes_amount_cents"], note["total_amount_cents"], note["taxes_rate"]) == (
        167, 667, 33.4,
    )  # fmt: skip
    assert estimate.get_json()["estimated_credit_note"]["taxes_amount_cents"] == 233
    assert second.status_code == 200, second.get_json()
    assert second.get_json()["credit_note"]["total_amount_cents"] == 933
    assert credit_notes.invoice_credit_state(january).creditable_cents == 0
