"""Taxes on invoices with a frozen clock: which taxes each fee pays (charge > plan > customer >
organization), exact amounts per currency (0, 2 and 3 decimals), several taxes, a 0 % tax, and
finalized invoices that never change when a tax does."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import event

from billing.services import invoicing
from billing.services import taxes as tax_service
from extensions import db
from tests import factories
from tests.factories import TEST_ACTOR, invoices_of
from tests.test_invoicing import at, close, subscribe

#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = at("2024-01-01T00:00:00")


def fee_taxes(invoice: Any) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """Per fee: its type, its taxes in minor units, and (code, amount) of each applied tax."""
    return [
        (
            fee.fee_type,
            fee.taxes_amount_cents,
            [(applied.tax_code, applied.amount_cents) for applied in fee.applied_taxes],
        )
        for fee in invoice.fees
    ]


def invoice_taxes(invoice: Any) -> list[tuple[str, int, int]]:
    return [(a.tax_code, a.fees_amount_cents, a.amount_cents) for a in invoice.applied_taxes]


def usage_plan_charge(org: Any, price: str, **charge: Any) -> list[dict[str, Any]]:
    metric = factories.make_billable_metric(org)
    return [
        {
            "billable_metric_id": str(metric.lago_id),
            "charge_model": "standard",
            "properties": {"amount": price},
            **charge,
        }
    ]


# (where taxes are set) → (base fee's taxes, usage fee's taxes), on a 1000 cent base fee and
# 300 cents of usage; the organization's default is 20 %, the customer's 10 %, the plan's 5 %,
# the charge's 2 %.
PRECEDENCE = [
    ("organization", [], [], [], ("org20", "org20")),
    ("customer", ["cus10"], [], [], ("cus10", "cus10")),
    ("plan", ["cus10"], ["plan5"], [], ("plan5", "plan5")),
    ("charge", ["cus10"], ["plan5"], ["chg2"], ("plan5", "chg2")),
    ("charge without plan", ["cus10"], [], ["chg2"], ("cus10", "chg2")),
]
AMOUNTS = {"org20": (200, 60), "cus10": (100, 30), "plan5": (50, 15), "chg2": (20, 6)}


@pytest.mark.parametrize(
    ("case", "customer_codes", "plan_codes", "charge_codes", "expected"),
    PRECEDENCE,
    ids=[case[0] for case in PRECEDENCE],
)
def test_which_taxes_a_fee_pays(
    clock, org, case, customer_codes, plan_codes, charge_codes, expected
):
    factories.make_tax(org, code="org20", rate="20", applied_to_organization=True)
    factories.make_tax(org, code="cus10", rate="10")
    factories.make_tax(org, code="plan5", rate="5")
    factories.make_tax(org, code="chg2", rate="2")
    customer = factories.make_customer(org, currency="EUR", tax_codes=customer_codes)
    charges = usage_plan_charge(org, "1", tax_codes=charge_codes)
    subscription = subscribe(
        org, clock, "2024-01-01T00:00:00", customer=customer, charges=charges, tax_codes=plan_codes
    )
    factories.send_event(org, subscription, at("2024-01-10T00:00:00"), value=3)

    close(clock, "2024-02-01T00:00:10", org)

    [invoice] = invoices_of(org)
    base_code, usage_code = expected
    assert fee_taxes(invoice) == [
        ("subscription", AMOUNTS[base_code][0], [(base_code, AMOUNTS[base_code][0])]),
        ("charge", AMOUNTS[usage_code][1], [(usage_code, AMOUNTS[usage_code][1])]),
    ]
    taxes = AMOUNTS[base_code][0] + AMOUNTS[usage_code][1]
    assert (invoice.fees_amount_cents, invoice.taxes_amount_cents) == (1300, taxes)
    assert invoice.total_amount_cents == 1300 + taxes


# currency, base fee, usage price per unit, tax rate → each fee's tax, the invoice's tax
ROUNDING = [
    # two halves: each fee rounds up (1 + 1), the invoice rounds their exact sum once (1)
    ("EUR", 5, "0.05", "10", [1, 1], 1),
    ("JPY", 5, "5", "10", [1, 1], 1),
    ("KWD", 5, "0.005", "10", [1, 1], 1),
    # 1999 × 20 % = 399.8 and 3 × 20 % = 0.6 → 400 + 1; the invoice: 400.4 → 400
    ("EUR", 1999, "0.03", "20", [400, 1], 400),
    # 999 yen × 8 % = 79.92 and 7 yen × 8 % = 0.56 → 80 + 1; the invoice: 80.48 → 80
    ("JPY", 999, "7", "8", [80, 1], 80),
    # 12.345 KWD × 5.5 % = 678.975 fils and 0.009 × 5.5 % = 0.495 fils → 679 + 0; 679.47 → 679
    ("KWD", 12345, "0.009", "5.5", [679, 0], 679),
]


@pytest.mark.parametrize(("currency", "base", "price", "rate", "fee_amounts", "total"), ROUNDING)
def test_rounding_per_fee_and_per_invoice_in_each_currency(
    clock, org, currency, base, price, rate, fee_amounts, total
):
    factories.make_tax(org, code="vat", rate=rate, applied_to_organization=True)
    customer = factories.make_customer(org, currency=currency)
    subscription = subscribe(
        org,
        clock,
        "2024-01-01T00:00:00",
        customer=customer,
        charges=usage_plan_charge(org, price),
        amount_cents=base,
        amount_currency=currency,
    )
    factories.send_event(org, subscription, at("2024-01-10T00:00:00"), value=1)

    close(clock, "2024-02-01T00:00:10", org)

    [invoice] = invoices_of(org)
    assert invoice.currency == currency
    assert [fee.taxes_amount_cents for fee in invoice.fees] == fee_amounts
    assert invoice_taxes(invoice) == [("vat", invoice.fees_amount_cents, total)]
    assert invoice.taxes_amount_cents == total
    assert invoice.sub_total_including_taxes_amount_cents == invoice.fees_amount_cents + total


def test_several_taxes_and_a_zero_rate_tax(clock, org):
    factories.make_tax(org, code="vat", name="VAT", rate="20")
    factories.make_tax(org, code="levy", name="Levy", rate="1.5")
    factories.make_tax(org, code="exempt", name="Exempt", rate="0")
    customer = factories.make_customer(org, currency="EUR", tax_codes=["vat", "levy", "exempt"])
    subscribe(org, clock, "2024-01-01T00:00:00", customer=customer, amount_cents=1010)

    close(clock, "2024-02-01T00:00:10", org)

    [invoice] = invoices_of(org)
    [fee] = invoice.fees
    # 1010 × 1.5 % = 15.15 → 15; × 20 % = 202; × 0 % = 0; together 217.15 → 217
    assert fee_taxes(invoice) == [
        ("subscription", 217, [("exempt", 0), ("levy", 15), ("vat", 202)])
    ]
    assert str(fee.taxes_rate) == "21.5"
    assert invoice_taxes(invoice) == [("exempt", 1010, 0), ("levy", 1010, 15), ("vat", 1010, 202)]
    assert (invoice.taxes_amount_cents, invoice.total_amount_cents) == (217, 1227)


def test_no_tax_anywhere_means_no_tax(clock, org):
    factories.make_tax(org, code="unused", rate="20")
    subscribe(org, clock, "2024-01-01T00:00:00")
    close(clock, "2024-02-01T00:00:10", org)
    [invoice] = invoices_of(org)
    assert (invoice.applied_taxes, invoice.taxes_amount_cents, invoice.total_amount_cents) == (
        [], 0, 1000
    )  # fmt: skip


def test_a_finalized_invoice_keeps_its_taxes_when_the_tax_changes_or_goes(clock, org, api_client):
    vat = factories.make_tax(org, code="vat", name="VAT", rate="20", applied_to_organization=True)
    subscribe(org, clock, "2024-01-01T00:00:00")
    close(clock, "2024-02-01T00:00:10", org)
    [invoice] = invoices_of(org)
    assert invoice.status == "finalized"
    url = f"/api/v1/invoices/{invoice.lago_id}"
    before = api_client.get(url).get_json()["invoice"]

    tax_service.update_tax(org, vat, {"rate": "25", "name": "VAT 25"}, TEST_ACTOR)
    db.session.commit()
    invoicing.refresh_invoice(invoice)  # a no-op on a finalized invoice
    db.session.commit()
    assert api_client.get(url).get_json()["invoice"] == before
    tax_service.delete_tax(org, vat, TEST_ACTOR)
    db.session.commit()
    after = api_client.get(url).get_json()["invoice"]
    assert after == before
    assert [
        (t["tax_code"], t["tax_name"], t["tax_rate"], t["amount_cents"], t["fees_amount_cents"])
        for t in after["applied_taxes"]
    ] == [("vat", "VAT", 20.0, 200, 1000)]
    assert (after["taxes_amount_cents"], after["total_amount_cents"]) == (200, 1200)
    [fee] = after["fees"]
    assert (fee["taxes_amount_cents"], fee["taxes_rate"], fee["total_amount_cents"]) == (
        200, 20.0, 1200
    )  # fmt: skip
    assert [(t["tax_code"], t["amount_cents"]) for t in fee["applied_taxes"]] == [("vat", 200)]
    assert fee["taxes_precise_amount"] == "2.0"


def test_a_draft_follows_the_tax_on_refresh_and_freezes_at_finalization(clock, org):
    vat = factories.make_tax(org, code="vat", name="VAT", rate="20", applied_to_organization=True)
    customer = factories.make_customer(
        org, currency="EUR", billing_configuration={"invoice_grace_period": 3}
    )
    subscribe(org, clock, "2024-01-01T00:00:00", customer=customer)
    close(clock, "2024-02-01T00:00:10", org)
    [draft] = invoices_of(org)
    assert (draft.status, draft.taxes_amount_cents) == ("draft", 200)

    tax_service.update_tax(org, vat, {"rate": "10"}, TEST_ACTOR)
    factories.make_tax(org, code="levy", rate="1", applied_to_organization=True)
    invoicing.refresh_invoice(draft)
    db.session.commit()
    [draft] = invoices_of(org)
    assert invoice_taxes(draft) == [("levy", 1000, 10), ("vat", 1000, 100)]
    assert (draft.taxes_amount_cents, draft.total_amount_cents) == (110, 1110)

    invoicing.finalize_invoice(draft)
    db.session.commit()
    tax_service.update_tax(org, vat, {"rate": "30"}, TEST_ACTOR)
    db.session.commit()
    [invoice] = invoices_of(org)
    assert invoice_taxes(invoice) == [("levy", 1000, 10), ("vat", 1000, 100)]
    assert invoice.total_amount_cents == 1110


def test_the_bulk_close_and_a_refresh_compute_the_same_taxes(clock, org):
    factories.make_tax(org, code="vat", rate="19.6", applied_to_organization=True)
    factories.make_tax(org, code="levy", rate="2.1")
    customer = factories.make_customer(
        org, currency="EUR", billing_configuration={"invoice_grace_period": 3}
    )
    subscription = subscribe(
        org,
        clock,
        "2024-01-01T00:00:00",
        customer=customer,
        charges=usage_plan_charge(org, "0.37", tax_codes=["levy"]),
        amount_cents=4999,
    )
    factories.send_event(org, subscription, at("2024-01-10T00:00:00"), value=7)
    close(clock, "2024-02-01T00:00:10", org)
    [draft] = invoices_of(org)
    created = (fee_taxes(draft), invoice_taxes(draft), draft.taxes_amount_cents)

    invoicing.refresh_invoice(draft)
    db.session.commit()
    [draft] = invoices_of(org)
    # 4999 × 19.6 % = 979.804 → 980; 259 × 2.1 % = 5.439 → 5
    assert created == (
        [("subscription", 980, [("vat", 980)]), ("charge", 5, [("levy", 5)])],
        [("levy", 259, 5), ("vat", 4999, 980)],
        985,
    )
    assert (fee_taxes(draft), invoice_taxes(draft), draft.taxes_amount_cents) == created


def test_the_invoice_page_lists_each_tax(clock, org, agent_client):
    factories.make_tax(org, name="VAT FR 20%", code="vat", rate="20", applied_to_organization=True)
    factories.make_tax(org, name="Levy", code="levy", rate="1.5", applied_to_organization=True)
    subscribe(org, clock, "2024-01-01T00:00:00")
    close(clock, "2024-02-01T00:00:10", org)
    [invoice] = invoices_of(org)

    page = agent_client.get(f"/invoices/{invoice.lago_id}").text
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())  # (no-break spaces too)

    assert "Levy 1.5 % of €10.00 €0.15" in text
    assert "VAT FR 20% 20 % of €10.00 €2.00" in text
    assert "Taxes €2.15" in text and "Total €12.15" in text


def test_the_close_reads_the_taxes_of_a_batch_in_one_query(clock, org):
    factories.make_tax(org, code="vat", rate="20", applied_to_organization=True)
    factories.make_tax(org, code="levy", rate="1")
    plan_taxed = {"tax_codes": ["levy"]}
    for n in range(4):
        subscribe(org, clock, "2024-01-01T00:00:00", **(plan_taxed if n % 2 else {}))
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        if "UNION ALL" in statement and "customer_taxes" in statement:  # the tax sources
            statements.append(statement)

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert close(clock, "2024-02-01T00:00:10", org) == 4
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert len(statements) == 1
    assert sorted(i.taxes_amount_cents for i in invoices_of(org)) == [10, 10, 200, 200]


def test_current_usage_shows_the_taxes_its_invoice_will_have(clock, org, api_client):
    factories.make_tax(org, code="vat", rate="20", applied_to_organization=True)
    factories.make_tax(org, code="levy", rate="2.5")
    subscription = subscribe(
        org,
        clock,
        "2024-01-01T00:00:00",
        charges=usage_plan_charge(org, "0.37", tax_codes=["levy"]),
    )
    factories.send_event(org, subscription, at("2024-01-10T00:00:00"), value=11)
    clock[0] = at("2024-01-20T00:00:00")
    url = (
        f"/api/v1/customers/{subscription.customer.external_id}/current_usage"
        f"?external_subscription_id={subscription.external_id}"
    )

    usage = api_client.get(url).get_json()["customer_usage"]
    untaxed = api_client.get(url + "&apply_taxes=false").get_json()["customer_usage"]

    # 11 × 0.37 = 4.07 at the charge's 2.5 %: 10.175 cents → 10
    assert (usage["amount_cents"], usage["taxes_amount_cents"], usage["total_amount_cents"]) == (
        407, 10, 417
    )  # fmt: skip
    assert (untaxed["taxes_amount_cents"], untaxed["total_amount_cents"]) == (0, 407)


def test_past_usage_shows_the_taxes_its_invoice_charged(clock, org, api_client):
    factories.make_tax(org, code="vat", rate="20", applied_to_organization=True)
    subscription = subscribe(org, clock, "2024-01-01T00:00:00", charges="usage")
    factories.send_event(org, subscription, at("2024-01-10T00:00:00"), value=7)
    close(clock, "2024-02-01T00:00:10", org)

    response = api_client.get(
        f"/api/v1/customers/{subscription.customer.external_id}/past_usage"
        f"?external_subscription_id={subscription.external_id}"
    )

    [period] = response.get_json()["usage_periods"]
    # 7 × 0.50 = 350 cents of usage, 20 %: 70 (the base fee is not usage)
    assert (period["amount_cents"], period["taxes_amount_cents"], period["total_amount_cents"]) == (
        350, 70, 420
    )  # fmt: skip
