"""Property-based tests (hypothesis): per-currency rounding in billing/money.py, and Lago's amount
relations (lago-api.md §10.1) on invoices made by the real period close from generated plans and
usage. Examples are bounded so the file runs in seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.money import currency_exponent, from_minor_units, to_minor_units
from billing.services import invoicing
from billing.timeutil import set_clock
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


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(period=plans)
def test_closed_invoices_keep_lagos_amount_relations(db_session, period):
    """Whatever the plan, the usage and the proration, every invoice's amounts add up as §10.1
    says (coupons, taxes, credit notes and prepaid credits are 0 for now), each fee is its
    precise amount rounded in its currency, and a zero total is paid."""
    start = datetime(2024, 1, 1, 6, tzinfo=UTC) + timedelta(days=period["start_day"])
    set_clock(lambda: start)
    try:
        org = factories.make_organization()
        currency = period["currency"]
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
        subscription = factories.make_subscription(
            org, customer, plan, subscription_at=start.isoformat()
        )
        for hours, value in enumerate(period["usage"], start=1):
            factories.send_event(org, subscription, start + timedelta(hours=hours), value=value)
        report = invoicing.close_periods(datetime(2025, 2, 1, tzinfo=UTC), organization_id=org.id)
        assert report.failed == []
        invoices = invoices_of(org)  # checks the relations of each
        assert invoices
        for invoice in invoices:
            assert invoice.currency == currency
            assert invoice.total_amount_cents == invoice.fees_amount_cents >= 0
            for fee in invoice.fees:
                assert fee.amount_cents == to_minor_units(fee.precise_amount, currency)
    finally:
        set_clock(None)
