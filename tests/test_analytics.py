"""Analytics (lago-api.md §13) through the API, with exact amounts: which invoices count, by
which month (issuing or due date), the months window in the organization's timezone, MRR of
each plan interval, and the filters; the period close's invoices land in their customer's
local month."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from billing.models import Fee, Invoice, Subscription
from billing.services import analytics
from extensions import db
from tests import factories, test_invoicing
from tests.test_invoicing import at, close, subscribe

#: the `clock` fixture starts where the invoicing tests' does
CLOCK_START = test_invoicing.CLOCK_START


def add_invoice(
    org: Any,
    customer: Any,
    issued: str,
    total: int,
    *,
    status: str = "finalized",
    payment_status: str = "pending",
    overdue: bool = False,
    due: str | None = None,
    currency: str = "EUR",
    usage: tuple[tuple[Any, int], ...] = (),
) -> Invoice:
    """A committed invoice of `total` minor units issued on `issued`, its usage fees (charge,
    amount) and a subscription fee for the rest."""
    day = date.fromisoformat(issued)
    invoice = Invoice(
        organization_id=org.id,
        customer_id=customer.id,
        number=f"{customer.slug}-T",
        status=status,
        payment_status=payment_status,
        payment_overdue=overdue,
        issuing_date=day,
        payment_due_date=date.fromisoformat(due) if due else day,
        currency=currency,
        fees_amount_cents=total,
        sub_total_excluding_taxes_amount_cents=total,
        sub_total_including_taxes_amount_cents=total,
        total_amount_cents=total,
        total_paid_amount_cents=total if payment_status == "succeeded" else 0,
    )
    fees = [(None, "subscription", total - sum(cents for _charge, cents in usage))]
    fees += [(charge, "charge", cents) for charge, cents in usage]
    invoice.fees = [
        Fee(
            charge_id=charge.id if charge else None,
            fee_type=fee_type,
            amount_cents=cents,
            currency=currency,
        )
        for charge, fee_type, cents in fees
    ]
    db.session.add(invoice)
    db.session.commit()
    return invoice


@pytest.fixture
def acme(org: Any) -> Any:
    return factories.make_customer(org, external_id="acme", currency="EUR")


@pytest.fixture
def globex(org: Any) -> Any:
    return factories.make_customer(org, external_id="globex", currency="USD")


def month(text: str) -> str:
    return f"{text}-01T00:00:00.000Z"


def test_gross_revenue_sums_finalized_invoices_by_issuing_month(api_client, org, acme, globex):
    add_invoice(org, acme, "2024-01-01", 1000)
    add_invoice(org, acme, "2024-01-31", 2550, payment_status="succeeded")
    add_invoice(org, acme, "2024-02-29", 700)
    add_invoice(org, acme, "2024-02-10", 9999, status="voided")
    add_invoice(org, acme, "2024-02-11", 5000, status="draft")
    add_invoice(org, acme, "2024-02-12", 0, status="closed", payment_status="succeeded")
    add_invoice(org, globex, "2024-03-01", 1234, currency="USD")

    response = api_client.get("/api/v1/analytics/gross_revenue")

    assert response.status_code == 200
    assert response.get_json() == {
        "gross_revenues": [
            {"month": month("2024-01"), "amount_cents": 3550, "currency": "EUR",
             "invoices_count": 2, "billing_entity_id": None},
            {"month": month("2024-02"), "amount_cents": 700, "currency": "EUR",
             "invoices_count": 1, "billing_entity_id": None},
            {"month": month("2024-03"), "amount_cents": 1234, "currency": "USD",
             "invoices_count": 1, "billing_entity_id": None},
        ]
    }  # fmt: skip
    for query, expected in [
        ("currency=usd", [1234]),
        ("external_customer_id=acme", [3550, 700]),
        ("external_customer_id=nobody", []),
        ("currency=EUR&external_customer_id=globex", []),
    ]:
        rows = api_client.get(f"/api/v1/analytics/gross_revenue?{query}").get_json()
        assert [row["amount_cents"] for row in rows["gross_revenues"]] == expected, query


def refund(api_client: Any, invoice: Invoice, refund_cents: int, credit_cents: int = 0) -> Any:
    """A credit note on the invoice's first fee refunding `refund_cents` (and crediting
    `credit_cents`), issued on the clock's day."""
    fee = invoice.fees[0]
    note = {"invoice_id": str(invoice.lago_id), "reason": "other",
            "items": [{"fee_id": str(fee.lago_id), "amount_cents": refund_cents + credit_cents}],
            "refund_amount_cents": refund_cents, "credit_amount_cents": credit_cents}  # fmt: skip
    response = api_client.post("/api/v1/credit_notes", json={"credit_note": note})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["credit_note"]


def test_gross_revenue_subtracts_refunds_in_the_month_of_the_credit_note(
    api_client, org, acme, globex, clock
):
    january = add_invoice(org, acme, "2024-01-31", 2550, payment_status="succeeded")
    add_invoice(org, acme, "2024-02-29", 700, payment_status="succeeded")
    voided = add_invoice(org, acme, "2024-01-05", 1000, payment_status="succeeded")
    add_invoice(org, globex, "2024-03-01", 1234, currency="USD", payment_status="succeeded")
    clock[0] = at("2024-02-15T12:00:00")
    february_note = refund(api_client, january, 500, credit_cents=300)
    clock[0] = at("2024-03-10T12:00:00")
    refund(api_client, january, 50)
    # voiding the rest of a credit note's credit does not give back what it refunded
    voided_note = api_client.put(f"/api/v1/credit_notes/{february_note['lago_id']}/void")
    assert voided_note.get_json()["credit_note"]["credit_status"] == "voided"
    # a voided invoice does not count, nor does the refund of its voiding credit note
    response = api_client.post(
        f"/api/v1/invoices/{voided.lago_id}/void",
        json={"generate_credit_note": True, "refund_amount": 1000},
    )
    assert response.get_json()["invoice"]["status"] == "voided"

    rows = api_client.get("/api/v1/analytics/gross_revenue").get_json()["gross_revenues"]

    assert [(r["month"], r["currency"], r["amount_cents"], r["invoices_count"]) for r in rows] == [
        (month("2024-01"), "EUR", 2550, 1),
        (month("2024-02"), "EUR", 700 - 500, 1),
        # a month with refunds and no invoice
        (month("2024-03"), "EUR", -50, 0),
        (month("2024-03"), "USD", 1234, 1),
    ]
    for query, expected in [
        ("currency=usd", [1234]),
        ("external_customer_id=acme", [2550, 200, -50]),
        ("external_customer_id=globex", [1234]),
        ("months=1", [-50, 1234]),
        ("months=2&currency=EUR", [200, -50]),
    ]:
        rows = api_client.get(f"/api/v1/analytics/gross_revenue?{query}").get_json()
        assert [row["amount_cents"] for row in rows["gross_revenues"]] == expected, query
    # the customer page's header and the portal: every month, less every refund
    [eur] = analytics.customer_balances(acme)
    assert (eur.currency, eur.gross_revenue_cents) == ("EUR", 2550 + 700 - 500 - 50)
    [usd] = analytics.customer_balances(globex)
    assert usd.gross_revenue_cents == 1234


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        # 2024-03-31 12:00 UTC is still March in UTC and Los Angeles, already April in Kiritimati
        ("UTC", {1: [300], 2: [200, 300], 3: [100, 200, 300]}),
        ("America/Los_Angeles", {1: [300], 2: [200, 300], 3: [100, 200, 300]}),
        ("Pacific/Kiritimati", {1: [400], 2: [300, 400], 3: [200, 300, 400]}),
    ],
)
def test_months_counts_back_from_the_current_month_of_the_organization(
    api_client, org, acme, clock, timezone, expected
):
    org.timezone = timezone
    db.session.commit()
    for issued, total in [
        ("2024-01-15", 100), ("2024-02-15", 200), ("2024-03-31", 300), ("2024-04-01", 400),
    ]:  # fmt: skip
        add_invoice(org, acme, issued, total)
    clock[0] = at("2024-03-31T12:00:00")
    for months, amounts in expected.items():
        rows = api_client.get(f"/api/v1/analytics/gross_revenue?months={months}").get_json()
        assert [row["amount_cents"] for row in rows["gross_revenues"]] == amounts, months


@pytest.mark.parametrize("path", ["gross_revenue", "overdue_balance", "invoiced_usage", "mrr",
                                  "invoice_collection"])  # fmt: skip
# "²" is a digit to str.isdigit() that int() refuses; a 5000-digit number int() refuses too
@pytest.mark.parametrize("months", ["0", "-1", "abc", "1.5", "1201", "²", "9" * 5000])
def test_an_unreadable_months_is_422(api_client, path, months):
    response = api_client.get(f"/api/v1/analytics/{path}?months={months}")
    assert response.status_code == 422
    assert response.get_json()["error_details"] == {"months": ["value_is_invalid"]}


def test_overdue_balance_groups_what_is_due_by_due_month(api_client, org, acme, globex):
    first = add_invoice(org, acme, "2024-01-20", 1000, due="2024-02-19", overdue=True)
    second = add_invoice(org, acme, "2024-02-01", 250, due="2024-02-01", overdue=True)
    add_invoice(org, acme, "2024-02-01", 900, due="2024-02-01", overdue=True, status="voided")
    add_invoice(org, acme, "2024-02-01", 800, due="2024-02-01")
    third = add_invoice(org, globex, "2024-02-20", 333, due="2024-03-05", overdue=True,
                        currency="USD")  # fmt: skip

    rows = api_client.get("/api/v1/analytics/overdue_balance").get_json()["overdue_balances"]

    assert rows == [
        {"month": month("2024-02"), "amount_cents": 1250, "currency": "EUR",
         "lago_invoice_ids": sorted([str(first.lago_id), str(second.lago_id)]),
         "billing_entity_id": None},
        {"month": month("2024-03"), "amount_cents": 333, "currency": "USD",
         "lago_invoice_ids": [str(third.lago_id)], "billing_entity_id": None},
    ]  # fmt: skip
    [balance] = analytics.customer_balances(acme)
    assert (balance.outstanding_cents, balance.overdue_cents) == (2050, 1250)


def test_invoiced_usage_sums_usage_fees_per_metric_and_month(api_client, org, acme):
    plan = factories.make_plan(org, charges=None)
    other = factories.make_plan(org, charges=None)
    calls, storage = plan.charges[0], other.charges[0]
    add_invoice(org, acme, "2024-01-31", 5000, usage=((calls, 1200), (storage, 300)))
    add_invoice(org, acme, "2024-01-02", 2000, usage=((calls, 45),))
    add_invoice(org, acme, "2024-02-01", 3000, usage=((storage, 999),))
    add_invoice(org, acme, "2024-02-01", 3000, usage=((storage, 1),), status="voided")
    add_invoice(org, acme, "2024-02-01", 3000, usage=((storage, 2),), status="draft")

    rows = api_client.get("/api/v1/analytics/invoiced_usage").get_json()["invoiced_usages"]

    code = calls.billable_metric.code
    stored = storage.billable_metric.code
    assert rows == [
        {"month": month("2024-01"), "code": code, "amount_cents": 1245, "currency": "EUR"},
        {"month": month("2024-01"), "code": stored, "amount_cents": 300, "currency": "EUR"},
        {"month": month("2024-02"), "code": stored, "amount_cents": 999, "currency": "EUR"},
    ]


def test_invoice_collection_counts_by_payment_status(api_client, org, acme):
    add_invoice(org, acme, "2024-01-03", 1000, payment_status="succeeded")
    add_invoice(org, acme, "2024-01-04", 2000, payment_status="succeeded")
    add_invoice(org, acme, "2024-01-05", 400, payment_status="failed")
    add_invoice(org, acme, "2024-02-05", 700)
    add_invoice(org, acme, "2024-02-05", 800, status="voided")

    rows = api_client.get("/api/v1/analytics/invoice_collection").get_json()

    assert rows == {
        "invoice_collections": [
            {"month": month("2024-01"), "payment_status": "failed", "invoices_count": 1,
             "amount_cents": 400, "currency": "EUR"},
            {"month": month("2024-01"), "payment_status": "succeeded", "invoices_count": 2,
             "amount_cents": 3000, "currency": "EUR"},
            {"month": month("2024-02"), "payment_status": "pending", "invoices_count": 1,
             "amount_cents": 700, "currency": "EUR"},
        ]
    }  # fmt: skip


def running(org, customer, interval, amount_cents, started, terminated=None, currency="EUR"):
    """A subscription to a plan of `interval` and `amount_cents`, started (and terminated) at
    the given UTC instants."""
    plan = factories.make_plan(
        org, charges=[], interval=interval, amount_cents=amount_cents, amount_currency=currency
    )
    subscription = factories.make_subscription(
        org, customer, plan, subscription_at="2030-01-01T00:00:00Z"
    )
    db.session.execute(
        update(Subscription)
        .where(Subscription.id == subscription.id)
        .values(
            status="terminated" if terminated else "active",
            started_at=at(started),
            terminated_at=at(terminated) if terminated else None,
        )
    )
    db.session.commit()


@pytest.mark.parametrize(
    ("timezone", "january"),
    [
        # the weekly plan ends 2024-01-31 23:30 UTC: after the end of January in Paris
        # (23:00 UTC), before it in UTC
        ("UTC", 2333),
        ("Europe/Paris", 5367),
    ],
)
def test_mrr_normalises_each_interval_to_a_month(api_client, org, acme, clock, timezone, january):
    org.timezone = timezone
    db.session.commit()
    clock[0] = at("2024-03-15T12:00:00")
    yen = factories.make_customer(org, external_id="yen", currency="JPY")
    running(org, acme, "monthly", 1000, "2024-01-10T00:00:00")
    running(org, acme, "yearly", 12001, "2024-01-01T00:00:00")
    running(org, acme, "quarterly", 1000, "2023-12-01T00:00:00")
    running(org, acme, "weekly", 700, "2024-01-01T00:00:00", "2024-01-31T23:30:00")
    running(org, acme, "semiannual", 600, "2024-03-20T00:00:00")  # not started yet
    running(org, yen, "yearly", 18, "2023-06-01T00:00:00", currency="JPY")

    rows = api_client.get("/api/v1/analytics/mrr?months=3").get_json()["mrrs"]

    # EUR: 1000 + 12001/12 + 1000/3 = 28001/12 = 2333.42 → 2333; January adds 700 × 52/12 in
    # Paris: 64401/12 = 5366.75 → 5367. JPY (no minor unit): 18/12 = 1.5 → 2, half up.
    assert rows == [
        {"month": month("2024-01"), "amount_cents": january, "currency": "EUR"},
        {"month": month("2024-01"), "amount_cents": 2, "currency": "JPY"},
        {"month": month("2024-02"), "amount_cents": 2333, "currency": "EUR"},
        {"month": month("2024-02"), "amount_cents": 2, "currency": "JPY"},
        {"month": month("2024-03"), "amount_cents": 2333, "currency": "EUR"},
        {"month": month("2024-03"), "amount_cents": 2, "currency": "JPY"},
    ]
    only_yen = api_client.get("/api/v1/analytics/mrr?months=1&currency=JPY").get_json()
    assert only_yen == {"mrrs": [{"month": month("2024-03"), "amount_cents": 2, "currency": "JPY"}]}
    # 12 months: from April 2023; the yen subscription started on June 1st (not in May)
    yen_only = api_client.get("/api/v1/analytics/mrr?months=12&external_customer_id=yen")
    assert [row["amount_cents"] for row in yen_only.get_json()["mrrs"]] == [0, 0] + [2] * 10


def test_a_closed_period_counts_in_its_customers_local_month(api_client, org, clock):
    """Tokyo's February starts on 2024-01-31 at 15:00 UTC: the January invoice closed then is
    issued on February 1st, and counts in February."""
    subscribe(org, clock, "2024-01-01T00:00:00", timezone="Asia/Tokyo")
    assert close(clock, "2024-01-31T15:00:01", org) == 1
    rows = api_client.get("/api/v1/analytics/gross_revenue").get_json()["gross_revenues"]
    assert [(row["month"], row["amount_cents"], row["invoices_count"]) for row in rows] == [
        (month("2024-02"), 1000, 1)
    ]


def test_another_organizations_invoices_do_not_count(api_client, org, acme):
    other = factories.make_organization()
    stranger = factories.make_customer(other, external_id="acme", currency="EUR")
    add_invoice(other, stranger, "2024-01-01", 5000, due="2024-01-01", overdue=True)
    for path, key in [
        ("gross_revenue", "gross_revenues"),
        ("overdue_balance", "overdue_balances"),
        ("invoice_collection", "invoice_collections"),
    ]:
        assert api_client.get(f"/api/v1/analytics/{path}").get_json() == {key: []}


def test_month_range_ends_with_the_current_month(org, clock):
    clock[0] = datetime(2024, 1, 31, 23, 0, tzinfo=UTC)
    org.timezone = "Europe/Paris"
    assert analytics.month_range(org, 3) == [date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1)]


def plan_of(query, backend):
    """The database's plan of `query`, run with its bound parameters as the application runs
    it (PostgreSQL kept off sequential scans: with a few rows it would prefer one whatever
    the indexes)."""
    compiled = query.compile(db.session.connection())
    connection = db.session.connection()
    if backend == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled.string}", compiled.params)
        return "\n".join(row[0] for row in rows)
    params = tuple(compiled.params[name] for name in compiled.positiontup)
    rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", params)
    return "\n".join(row[-1] for row in rows)


def test_the_overdue_filter_and_badge_read_the_partial_index(org, acme, backend):
    """The customer list's overdue filter reads the customers from ix_invoices_overdue_customer
    and its badge probes it: their conditions match its predicate, constants inline (a bound
    parameter cannot prove a partial index's predicate)."""
    from billing.models import Customer  # noqa: PLC0415
    from billing.services.customers import CustomerFilters, customer_conditions  # noqa: PLC0415

    listed = select(Customer.id).where(*customer_conditions(org, CustomerFilters(overdue=True)))
    assert "ix_invoices_overdue_customer" in plan_of(listed, backend)
    badge = select(Customer.has_overdue_invoices).where(Customer.id == acme.id)
    assert "ix_invoices_overdue_customer" in plan_of(badge, backend)
