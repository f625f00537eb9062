"""Property-based tests (hypothesis): per-currency rounding in billing/money.py, and Lago's amount
relations (lago-api.md §10.1) on invoices made by the real period close from generated plans,
usage, organization tax, coupon, wallet credits and credit note. Examples are bounded so the
file runs in seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from billing.models import CreditNote, Wallet
from billing.money import currency_exponent, from_minor_units, to_minor_units
from billing.services import coupons as coupon_service
from billing.services import credit_notes, invoicing
from billing.services import wallets as wallet_service
from billing.timeutil import set_clock
from extensions import db
from tests import factories
from tests.factories import invoices_of

#: no minor unit, two, three
CURRENCIES = ["JPY", "ISK", "EUR", "USD", "KWD", "BHD"]

cents = st.integers(min_value=-(10**15), max_value=10**15)
amounts = st.decimals(
    min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=6, allow_nan=False
)


@given(currency=st.sampled_from(CURRENCIES), value=cents)
def test_minor_units_round_trip(currency, value):
    major = from_minor_units(value, currency)
    assert major.as_tuple().exponent == -currency_exponent(currency)
    assert to_minor_units(major, currency) == value


@given(currency=st.sampled_from(CURRENCIES), amount=amounts)
def test_rounding_is_half_up_to_the_currencys_minor_unit(currency, amount):
    exact = Fraction(amount) * 10 ** currency_exponent(currency)
    rounded = to_minor_units(amount, currency)
    assert abs(exact - rounded) <= Fraction(1, 2)
    if abs(exact - rounded) == Fraction(1, 2):  # a tie goes away from zero
        assert abs(rounded) > abs(exact)
    # rounding commutes with the sign, as ROUND_HALF_UP does
    assert to_minor_units(-amount, currency) == -rounded


@given(currency=st.sampled_from(CURRENCIES), value=cents)
def test_a_whole_amount_of_minor_units_is_kept(currency, value):
    exponent = currency_exponent(currency)
    assert to_minor_units(Decimal(value).scaleb(-exponent), currency) == value


#: what one generated billing period is made of
plans = st.fixed_dictionaries(
    {
        "currency": st.sampled_from(["EUR", "JPY", "KWD"]),
        "interval": st.sampled_from(["weekly", "monthly", "quarterly", "yearly"]),
        "amount_cents": st.integers(min_value=0, max_value=10**7),
        "pay_in_advance": st.booleans(),
        # a unit price of 0 to 100 with up to four decimals
        "price": st.decimals(min_value=0, max_value=100, places=4).map(str),
        "usage": st.lists(st.decimals(min_value=0, max_value=1000, places=3).map(str), max_size=4),
        "start_day": st.integers(min_value=0, max_value=27),
    }
)


#: what changes the generated invoices' amounts: the organization's tax, an applied coupon,
#: granted wallet credits and a credit note on the first invoice (a share of its first fee)
deductions = st.fixed_dictionaries(
    {
        "tax_rate": st.decimals(min_value=0, max_value=30, places=2),
        "coupon": st.none()
        | st.fixed_dictionaries(
            {
                "coupon_type": st.just("fixed_amount"),
                "amount_cents": st.integers(min_value=1, max_value=10**6),
                "frequency": st.sampled_from(["once", "forever"]),
            }
        )
        | st.fixed_dictionaries(
            {
                "coupon_type": st.just("percentage"),
                "percentage_rate": st.decimals(min_value="0.01", max_value=100, places=2),
                "frequency": st.just("forever"),
            }
        ),
        # whole credits at 1 credit = one unit of the currency
        "granted_credits": st.integers(min_value=0, max_value=20_000),
        "credit_note_percent": st.integers(min_value=0, max_value=100),
    }
)

#: the first close (the credit note is made then), and the last
FIRST_CLOSE = timedelta(days=100)
LAST_CLOSE = datetime(2025, 2, 1, tzinfo=UTC)


def half_up(exact: Fraction) -> int:
    """A non-negative exact amount of minor units, rounded half up (what money.py must give)."""
    return int(exact + Fraction(1, 2))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(period=plans, taken_off=deductions)
def test_closed_invoices_keep_lagos_amount_relations(db_session, period, taken_off):
    """Whatever the plan, the usage, the proration, the organization's tax, the coupon, the
    wallet's credits and a credit note, every invoice's amounts add up as §10.1 says, in this
    order: coupons off the fees, taxes on what is left, then credit notes and prepaid credits
    off the total; each fee is its precise amount and the tax its exact amount, rounded half up
    in the currency; coupons, credit notes and wallets give what they have left, never more
    than an invoice owes; and a zero total is paid."""
    start = datetime(2024, 1, 1, 6, tzinfo=UTC) + timedelta(days=period["start_day"])
    set_clock(lambda: start)
    try:
        org = factories.make_organization()
        currency = period["currency"]
        exponent = currency_exponent(currency)
        rate = taken_off["tax_rate"]
        factories.make_tax(org, rate=str(rate), applied_to_organization=True)
        customer = factories.make_customer(org, currency=currency)
        metric = factories.make_billable_metric(org)
        charge = {
            "billable_metric_id": str(metric.lago_id),
            "charge_model": "standard",
            "properties": {"amount": period["price"]},
        }
        plan = factories.make_plan(
            org,
            charges=[charge],
            interval=period["interval"],
            amount_cents=period["amount_cents"],
            amount_currency=currency,
            pay_in_advance=period["pay_in_advance"],
        )
        coupon = taken_off["coupon"]
        if coupon is not None:
            terms = {key: str(value) for key, value in coupon.items()}
            coupon_service.create_coupon(
                org,
                {"name": "Coupon", "code": "coupon", "amount_currency": currency, **terms},
                factories.TEST_ACTOR,
            )
            coupon_service.apply_coupon(
                org,
                {"external_customer_id": customer.external_id, "coupon_code": "coupon"},
                factories.TEST_ACTOR,
            )
        granted = taken_off["granted_credits"]
        if granted:
            wallet_service.create_wallet(
                org,
                {"external_customer_id": customer.external_id, "rate_amount": "1",
                 "granted_credits": str(granted)},
                factories.TEST_ACTOR,
            )  # fmt: skip
        subscription = factories.make_subscription(
            org, customer, plan, subscription_at=start.isoformat()
        )
        for hours, value in enumerate(period["usage"], start=1):
            factories.send_event(org, subscription, start + timedelta(hours=hours), value=value)

        close_at = start + FIRST_CLOSE
        set_clock(lambda: close_at)
        assert invoicing.close_periods(close_at, organization_id=org.id).failed == []
        note = None
        first = invoices_of(org)
        if first and taken_off["credit_note_percent"]:
            note = _credit_part_of_the_first_fee(first[0], taken_off["credit_note_percent"])
        report = invoicing.close_periods(LAST_CLOSE, organization_id=org.id)
        assert report.failed == []

        invoices = invoices_of(org)  # checks the relations of each
        assert invoices
        coupon_left = (
            int(coupon["amount_cents"]) if coupon and coupon["frequency"] == "once" else None
        )
        credit_left = note.credit_amount_cents if note else 0
        wallet_left = granted * 10**exponent
        for invoice in invoices:
            assert invoice.currency == currency
            assert invoice.status == "finalized"
            for fee in invoice.fees:
                assert fee.amount_cents == to_minor_units(fee.precise_amount, currency)
            fees = invoice.fees_amount_cents
            # the coupon: its rate of the fees, or its amount (what is left of it), at most the fees
            if coupon is None:
                expected_coupons = 0
            elif coupon["coupon_type"] == "percentage":
                expected_coupons = half_up(
                    Fraction(fees) * Fraction(coupon["percentage_rate"]) / 100
                )
            elif coupon_left is None:
                expected_coupons = min(int(coupon["amount_cents"]), fees)
            else:
                expected_coupons = min(coupon_left, fees)
                coupon_left -= expected_coupons
            assert invoice.coupons_amount_cents == min(expected_coupons, fees)
            # the tax: its exact rate of what the coupons leave, rounded once in the currency
            excluding = invoice.sub_total_excluding_taxes_amount_cents
            assert excluding >= 0
            assert invoice.taxes_amount_cents == half_up(Fraction(excluding) * Fraction(rate) / 100)
            assert [t.tax_rate for t in invoice.applied_taxes] == ([rate] if invoice.fees else [])
            # the credit note's credit, then the wallet's credits, on what is left to pay
            including = invoice.sub_total_including_taxes_amount_cents
            if note is not None and invoice.id > first[-1].id:
                assert invoice.credit_notes_amount_cents == min(credit_left, including)
                credit_left -= invoice.credit_notes_amount_cents
            else:
                assert invoice.credit_notes_amount_cents == 0
            assert invoice.prepaid_credit_amount_cents == min(
                wallet_left, including - invoice.credit_notes_amount_cents
            )
            wallet_left -= invoice.prepaid_credit_amount_cents
            assert invoice.total_amount_cents >= 0
            assert invoice.total_due_amount_cents == (
                0 if invoice.payment_status == "succeeded" else invoice.total_amount_cents
            )
        if note is not None:
            db.session.refresh(note)
            assert note.balance_amount_cents == credit_left
        if granted:
            [wallet] = db.session.scalars(
                select(Wallet).where(Wallet.customer_id == customer.id)
            ).all()
            assert wallet.balance_cents == wallet_left
    finally:
        set_clock(None)


def _credit_part_of_the_first_fee(invoice: Any, percent: int) -> CreditNote | None:
    """A credit note of `percent` % of what is left of the invoice's first fee (its taxes
    added), less when the invoice has less left to credit (its coupons), or None (nothing)."""
    fee = invoice.fees[0]
    cents = credit_notes.creditable_by_fee(invoice)[fee.id] * percent // 100
    while cents > 0:
        items = [{"fee_id": str(fee.lago_id), "amount_cents": cents}]
        estimate = credit_notes.estimate_credit_note(invoice, {"items": items})
        total = estimate.draft.total_cents
        if total <= estimate.max_creditable_cents:
            return credit_notes.create_credit_note(
                invoice, {"items": items, "credit_amount_cents": total}, factories.TEST_ACTOR
            )
        cents = min(cents - 1, cents * estimate.max_creditable_cents // total)
    return None
