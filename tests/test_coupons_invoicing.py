"""Coupons on invoices with a frozen clock: exact amounts taken off each invoice, what is left
on the applied coupon, limits by plan and metric, drafts that show the discount without
consuming it, and applications refused with nothing changed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from billing.errors import NotFound, ValidationFailed
from billing.models import AppliedCoupon, Customer, OutboxEvent
from billing.services import coupons as coupon_service
from billing.services import invoicing
from extensions import db
from tests import factories
from tests.factories import TEST_ACTOR, invoices_of
from tests.test_invoicing import at, close, subscribe

#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = at("2024-01-01T00:00:00")


def make_coupon(org: Any, **fields: Any) -> Any:
    payload = {"name": "Welcome", "code": f"c_{uuid.uuid4().hex[:8]}"} | fields
    coupon = coupon_service.create_coupon(org, payload, TEST_ACTOR)
    db.session.commit()
    return coupon


def apply(org: Any, customer: Any, coupon: Any, **overrides: Any) -> Any:
    payload = {"external_customer_id": customer.external_id, "coupon_code": coupon.code}
    applied = coupon_service.apply_coupon(org, payload | overrides, TEST_ACTOR)
    db.session.commit()
    return applied


FIXED = {"coupon_type": "fixed_amount", "amount_currency": "EUR"}
PERCENT = {"coupon_type": "percentage"}


@pytest.mark.parametrize(
    ("terms", "coupons", "remaining", "status"),
    [
        # a fixed amount once: off the first invoice only
        (FIXED | {"amount_cents": 300, "frequency": "once"}, [300, 0, 0], (0, None), "terminated"),
        # larger than the invoice: the rest carries over to the next invoices
        (
            FIXED | {"amount_cents": 2500, "frequency": "once"},
            [1000, 1000, 500],
            (0, None),
            "terminated",
        ),
        (
            FIXED | {"amount_cents": 300, "frequency": "recurring", "frequency_duration": 2},
            [300, 300, 0],
            (None, 0),
            "terminated",
        ),
        (
            FIXED | {"amount_cents": 300, "frequency": "forever"},
            [300, 300, 300],
            (None, None),
            "active",
        ),
        # 12.5 % of 10.00 = 1.25
        (
            PERCENT | {"percentage_rate": "12.5", "frequency": "once"},
            [125, 0, 0],
            (None, None),
            "terminated",
        ),
        (
            PERCENT | {"percentage_rate": "10", "frequency": "recurring", "frequency_duration": 2},
            [100, 100, 0],
            (None, 0),
            "terminated",
        ),
        (
            PERCENT | {"percentage_rate": "100", "frequency": "forever"},
            [1000, 1000, 1000],
            (None, None),
            "active",
        ),
    ],
)  # fmt: skip
def test_one_coupon_over_three_monthly_invoices(clock, org, terms, coupons, remaining, status):
    subscription = subscribe(org, clock, "2024-01-01T00:00:00")
    applied = apply(org, subscription.customer, make_coupon(org, **terms))

    assert close(clock, "2024-04-01T00:00:30", org) == 3

    invoices = invoices_of(org)
    assert [i.fees_amount_cents for i in invoices] == [1000, 1000, 1000]
    assert [i.coupons_amount_cents for i in invoices] == coupons
    assert [i.total_amount_cents for i in invoices] == [1000 - c for c in coupons]
    assert [i.payment_status for i in invoices] == [
        "succeeded" if c == 1000 else "pending" for c in coupons
    ]
    assert [[c.amount_cents for c in i.coupon_credits] for i in invoices] == [
        [c] if c else [] for c in coupons
    ]
    db.session.refresh(applied)
    assert (applied.amount_cents_remaining, applied.frequency_duration_remaining) == remaining
    assert applied.status == status


def usage_subscription(org, clock):
    """Base fee 10.00 plus 20 units at 0.50 = 10.00 of usage, billed on Feb 1."""
    subscription = subscribe(org, clock, "2024-01-01T00:00:00", charges="usage")
    factories.send_event(org, subscription, at("2024-01-10T00:00:00"), value=20)
    return subscription


@pytest.mark.parametrize(
    ("limit", "coupons", "precise"),
    [
        (None, 1000, [Decimal(500), Decimal(500)]),  # 50 % of both fees
        ("metric", 500, [Decimal(0), Decimal(500)]),  # the charge's fee only
        ("plan", 1000, [Decimal(500), Decimal(500)]),
        ("other plan", 0, [Decimal(0), Decimal(0)]),
    ],
)
def test_limits_by_plan_and_metric(clock, org, limit, coupons, precise):
    subscription = usage_subscription(org, clock)
    metric = subscription.plan.charges[0].billable_metric
    applies_to: dict[str, Any] = {
        None: {},
        "metric": {"billable_metric_codes": [metric.code]},
        "plan": {"plan_codes": [subscription.plan.code]},
        "other plan": {"plan_codes": [factories.make_plan(org, charges=[]).code]},
    }[limit]
    coupon = make_coupon(
        org, **PERCENT, percentage_rate="50", frequency="forever", applies_to=applies_to
    )
    apply(org, subscription.customer, coupon)

    close(clock, "2024-02-01T00:00:30", org)

    [invoice] = invoices_of(org)
    assert [(f.fee_type, f.amount_cents) for f in invoice.fees] == [
        ("subscription", 1000),
        ("charge", 1000),
    ]
    assert invoice.coupons_amount_cents == coupons
    assert invoice.sub_total_excluding_taxes_amount_cents == 2000 - coupons
    assert [f.precise_coupons_amount_cents for f in invoice.fees] == precise


def test_two_coupons_oldest_first_each_on_what_is_left(clock, org):
    subscription = usage_subscription(org, clock)
    customer = subscription.customer
    apply(org, customer, make_coupon(org, **FIXED, amount_cents=300, frequency="once"))
    clock[0] += timedelta(seconds=1)
    apply(org, customer, make_coupon(org, **PERCENT, percentage_rate="50", frequency="forever"))

    close(clock, "2024-02-01T00:00:30", org)

    [invoice] = invoices_of(org)
    # 3.00 off 20.00, then half of the 17.00 left
    assert [c.amount_cents for c in invoice.coupon_credits] == [300, 850]
    assert [(c.before_amount_cents, c.after_amount_cents) for c in invoice.coupon_credits] == [
        (2000, 1700),
        (1700, 850),
    ]
    assert invoice.coupons_amount_cents == 1150
    assert invoice.total_amount_cents == 850
    # each coupon spread over the two equal fees pro rata, exactly
    assert [f.precise_coupons_amount_cents for f in invoice.fees] == [Decimal(575)] * 2
    # the invoice.created webhook shows the same credits
    payload = db.session.scalar(
        select(OutboxEvent.payload).where(
            OutboxEvent.organization_id == org.id, OutboxEvent.event_type == "invoice.created"
        )
    )
    assert [(c["item"]["type"], c["amount_cents"]) for c in payload["credits"]] == [
        ("coupon", 300),
        ("coupon", 850),
    ]
    assert payload["coupons_amount_cents"] == 1150


def test_a_fixed_amount_in_another_currency_than_the_invoice_is_not_used(clock, org):
    subscription = subscribe(org, clock, "2024-01-01T00:00:00")
    coupon = make_coupon(org, **PERCENT, percentage_rate="10", frequency="forever")
    apply(org, subscription.customer, coupon, amount_cents=100)  # a percentage stays one
    close(clock, "2024-02-01T00:00:30", org)
    assert [i.coupons_amount_cents for i in invoices_of(org)] == [100]


def test_drafts_show_the_discount_and_consume_it_only_when_finalized(clock, org):
    customer = factories.make_customer(
        org, currency="EUR", billing_configuration={"invoice_grace_period": 3}
    )
    subscribe(org, clock, "2024-01-01T00:00:00", customer=customer)
    subscribe(org, clock, "2024-01-01T00:00:00", customer=customer)
    applied = apply(org, customer, make_coupon(org, **FIXED, amount_cents=1500, frequency="once"))

    close(clock, "2024-02-01T00:00:30", org)
    first, second = invoices_of(org)
    # both drafts show what the coupon could take now; nothing is consumed yet
    assert [(i.status, i.coupons_amount_cents) for i in (first, second)] == [
        ("draft", 1000),
        ("draft", 1000),
    ]
    db.session.refresh(applied)
    assert applied.amount_cents_remaining == 1500

    invoicing.finalize_invoice(first)
    invoicing.refresh_invoice(second)
    db.session.commit()
    assert first.coupons_amount_cents == 1000
    assert second.coupons_amount_cents == 500  # the refresh sees what is left
    assert applied.amount_cents_remaining == 500

    invoicing.finalize_invoice(second)
    db.session.commit()
    db.session.refresh(applied)
    assert [i.coupons_amount_cents for i in invoices_of(org)] == [1000, 500]
    assert (applied.amount_cents_remaining, applied.status) == (0, "terminated")
    # a finalized invoice keeps its coupons
    assert [c.amount_cents for c in first.coupon_credits] == [1000]


def test_removed_coupon_stops_applying(clock, org):
    subscription = subscribe(org, clock, "2024-01-01T00:00:00")
    coupon = make_coupon(org, **FIXED, amount_cents=300, frequency="forever")
    applied = apply(org, subscription.customer, coupon)
    close(clock, "2024-02-01T00:00:30", org)
    coupon_service.remove_applied_coupon(applied, TEST_ACTOR)
    db.session.commit()
    close(clock, "2024-03-01T00:00:30", org)
    assert [i.coupons_amount_cents for i in invoices_of(org)] == [300, 0]


def test_expired_coupon_cannot_be_applied_but_applied_ones_keep_running(clock, org):
    subscription = subscribe(org, clock, "2024-01-01T00:00:00")
    coupon = make_coupon(
        org,
        **FIXED,
        amount_cents=100,
        frequency="forever",
        expiration="time_limit",
        expiration_at="2024-01-15T00:00:00Z",
    )
    apply(org, subscription.customer, coupon)
    other = factories.make_customer(org, currency="EUR")
    clock[0] = at("2024-01-15T00:00:00")

    with pytest.raises(NotFound) as error:
        apply(org, other, coupon)
    assert error.value.code == "coupon_not_found"

    close(clock, "2024-02-01T00:00:30", org)
    assert [i.coupons_amount_cents for i in invoices_of(org)] == [100]


def applied_count(org):
    return db.session.scalar(
        select(func.count(AppliedCoupon.id)).where(AppliedCoupon.organization_id == org.id)
    )


@pytest.mark.parametrize(
    ("case", "details"),
    [
        ("other currency", {"currency": ["currencies_does_not_match"]}),
        ("applied twice", {"coupon": ["coupon_is_not_reusable"]}),
        ("bad override", {"amount_cents": ["value_is_out_of_range"]}),
        ("recurring without periods", {"frequency_duration": ["value_is_mandatory"]}),
    ],
)
def test_refused_applications_change_nothing(org, case, details):
    customer = factories.make_customer(org, currency="EUR")
    coupon = make_coupon(org, **FIXED, amount_cents=100, reusable=False)
    overrides: dict[str, Any] = {}
    if case == "other currency":
        coupon = make_coupon(
            org, coupon_type="fixed_amount", amount_cents=100, amount_currency="USD"
        )
    elif case == "applied twice":
        apply(org, customer, coupon)
    elif case == "bad override":
        overrides = {"amount_cents": -5}
    else:
        overrides = {"frequency": "recurring"}
    before = applied_count(org)

    with pytest.raises(ValidationFailed) as error:
        coupon_service.apply_coupon(
            org,
            {"external_customer_id": customer.external_id, "coupon_code": coupon.code} | overrides,
            TEST_ACTOR,
        )
    db.session.rollback()

    assert error.value.details == details
    assert applied_count(org) == before
    assert db.session.get(Customer, customer.id).currency == "EUR"


def test_a_fixed_coupon_gives_a_customer_without_currency_its_currency(org):
    customer = factories.make_customer(org)
    apply(org, customer, make_coupon(org, **FIXED, amount_cents=100))
    assert customer.currency == "EUR"


def test_deleting_the_customer_terminates_its_applied_coupons(org):
    from billing.services.customers import delete_customer  # noqa: PLC0415

    customer = factories.make_customer(org, currency="EUR")
    applied = apply(org, customer, make_coupon(org, **FIXED, amount_cents=100))
    delete_customer(org, customer, TEST_ACTOR)
    db.session.commit()
    assert (applied.status, applied.terminated_at is not None) == ("terminated", True)


def test_deleting_a_coupon_terminates_its_applications_and_frees_its_code(org):
    customer = factories.make_customer(org, currency="EUR")
    coupon = make_coupon(org, **FIXED, amount_cents=100)
    applied = apply(org, customer, coupon)
    coupon_service.delete_coupon(org, coupon, TEST_ACTOR)
    db.session.commit()
    assert applied.status == "terminated"
    assert make_coupon(org, **FIXED, amount_cents=200, code=coupon.code).code == coupon.code


def _allowance(kind: str, value: int, plan_id: int | None) -> Any:
    """An active applied coupon in memory: a fixed amount once / forever, or a percentage."""
    coupon = SimpleNamespace(
        limited_plans=plan_id is not None,
        limited_billable_metrics=False,
        targets=[SimpleNamespace(plan_id=plan_id, billable_metric_id=None)] if plan_id else [],
    )
    fixed = kind != "percentage"
    return SimpleNamespace(
        id=value, customer_id=1, status="active", coupon=coupon,
        amount_cents=value if fixed else None, amount_currency="EUR" if fixed else None,
        amount_cents_remaining=value if kind == "once" else None,
        percentage_rate=None if fixed else Decimal(value % 101) + Decimal("0.5"),
        frequency="forever" if kind != "once" else "once", frequency_duration_remaining=None,
    )  # fmt: skip


@given(
    fees=st.lists(
        st.tuples(st.integers(0, 10**7), st.sampled_from([1, 2])), min_size=0, max_size=6
    ),
    coupons=st.lists(
        st.tuples(
            st.sampled_from(["once", "forever", "percentage"]),
            st.integers(1, 10**7),
            st.sampled_from([None, 1, 2]),
        ),
        max_size=4,
    ),
)
@settings(max_examples=300, deadline=None)
def test_coupons_never_exceed_the_fees_and_are_spread_exactly(fees, coupons):
    """Whatever the fees and coupons: the invoice never goes negative, each fee's share is
    between 0 and its amount, the shares add up to the coupons, each credit is what its
    before and after say."""
    invoice = SimpleNamespace(
        customer_id=1, currency="EUR", updated_at=None,
        fees=[
            SimpleNamespace(
                amount_cents=amount, subscription=SimpleNamespace(plan_id=plan), charge=None
            )
            for amount, plan in fees
        ],
    )  # fmt: skip
    ledger = coupon_service.CouponLedger([_allowance(*c) for c in coupons])

    lines = ledger.discount(invoice, finalizing=True)

    total = sum(fee.amount_cents for fee in invoice.fees)
    assert 0 <= invoice.coupons_amount_cents <= total
    assert invoice.coupons_amount_cents == sum(line.amount_cents for line in lines)
    shares = [fee.precise_coupons_amount_cents for fee in invoice.fees]
    assert sum(shares, Decimal(0)) == invoice.coupons_amount_cents
    for fee, share in zip(invoice.fees, shares, strict=True):
        # within the shares' precision (money.SHARE_QUANTUM) per coupon
        assert 0 <= share <= fee.amount_cents + Decimal("1e-8")
    for line in lines:
        assert line.amount_cents > 0
        assert line.after_amount_cents == line.before_amount_cents - line.amount_cents >= 0
