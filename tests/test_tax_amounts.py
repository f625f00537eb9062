"""The tax arithmetic alone (no database), over many generated invoices: each fee's tax and
each invoice tax are the exact amounts rounded half up once, in any currency's minor units.

Generated with a seeded random generator (the same cases on every run) rather than a
property-testing library, which the project does not depend on."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from math import floor
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from billing.services import taxes as tax_service

CURRENCIES = ("JPY", "EUR", "KWD")


def half_up(value: Fraction) -> int:
    """Round half up (values are never negative): the reference, independent of Decimal."""
    return floor(value + Fraction(1, 2))


def random_invoice(rng: random.Random) -> tuple[Any, list[list[Decimal]]]:
    """An in-memory invoice of 1 to 6 fees; each fee pays 0 to 3 of five taxes."""
    rates = [Decimal(rng.randint(0, 10_000)).scaleb(-rng.choice((0, 1, 2))) / 100 for _ in "abcde"]
    rates = [min(rate, Decimal(100)) for rate in rates]
    fees = []
    fee_taxes = []
    for n in range(rng.randint(1, 6)):
        amount = rng.choice((0, 1, 5, 15, 105, 999, rng.randint(0, 10**9)))
        fees.append(
            SimpleNamespace(fee_type="charge", charge=SimpleNamespace(id=n), subscription=None,
                            amount_cents=amount)
        )  # fmt: skip
        fee_taxes.append(sorted(rng.sample(range(5), rng.randint(0, 3))))
    sources = tax_service._Sources()
    for n, picked in enumerate(fee_taxes):
        sources.rates["charge"][n] = [
            tax_service._Rate(i, f"uuid-{i}", f"t{i}", f"Tax {i}", rates[i], None) for i in picked
        ]
    invoice = SimpleNamespace(
        fees=fees, currency="EUR", customer_id=1, organization_id=1, applied_taxes=[]
    )
    return (invoice, sources), [[rates[i] for i in picked] for picked in fee_taxes]


@pytest.mark.parametrize("seed", range(20))
def test_taxes_are_the_exact_amounts_rounded_once_in_every_currency(seed):
    rng = random.Random(seed)
    for _ in range(25):
        (invoice, sources), rates_per_fee = random_invoice(rng)
        results = []
        for currency in CURRENCIES:
            invoice.currency = currency
            with mock.patch.object(tax_service, "_sources", return_value=sources):
                tax_service._apply_invoice_taxes(invoice)
            results.append(
                (
                    [fee.taxes_amount_cents for fee in invoice.fees],
                    [
                        (a.tax_code, a.fees_amount_cents, a.amount_cents)
                        for a in invoice.applied_taxes
                    ],
                    invoice.taxes_amount_cents,
                )
            )
            # each fee: its exact taxes summed, then rounded once
            for fee, rates in zip(invoice.fees, rates_per_fee, strict=True):
                exact = sum(
                    (Fraction(fee.amount_cents) * Fraction(r) / 100 for r in rates), Fraction(0)
                )
                assert fee.taxes_amount_cents == half_up(exact)
                assert fee.taxes_rate == sum(rates, Decimal(0))
                for applied, rate in zip(fee.applied_taxes, rates, strict=True):
                    assert applied.amount_cents == half_up(
                        Fraction(fee.amount_cents) * Fraction(rate) / 100
                    )
            # each invoice tax: on the sum of its fees, rounded once
            for applied in invoice.applied_taxes:
                base = sum(
                    fee.amount_cents
                    for fee in invoice.fees
                    if any(a.tax_code == applied.tax_code for a in fee.applied_taxes)
                )
                assert applied.fees_amount_cents == base
                assert applied.amount_cents == half_up(
                    Fraction(base) * Fraction(applied.tax_rate) / 100
                )
            assert invoice.taxes_amount_cents == sum(a.amount_cents for a in invoice.applied_taxes)
            # the fees' rounded taxes and the invoice's differ by at most half a unit per fee
            # and per tax (each rounds once)
            fee_total = sum(fee.taxes_amount_cents for fee in invoice.fees)
            bound = Fraction(len(invoice.fees) + len(invoice.applied_taxes), 2)
            assert abs(invoice.taxes_amount_cents - fee_total) <= bound
        # in minor units the result does not depend on the currency's number of decimals
        assert results[0] == results[1] == results[2]


def test_a_fee_reduced_below_zero_by_coupons_is_taxed_on_zero():
    fee = SimpleNamespace(amount_cents=100, precise_coupons_amount_cents=Decimal("150.5"))
    assert tax_service.fee_taxable_amount(fee) == 0
    fee.precise_coupons_amount_cents = Decimal("0.5")
    assert tax_service.fee_taxable_amount(fee) == Decimal("99.5")
