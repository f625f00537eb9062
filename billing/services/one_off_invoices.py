"""One-off invoices: a customer billed for add-ons, finalized at once (lago-api.md §11).

`POST /invoices` and the console's "One-off invoice" action build the same payload:
`{"external_customer_id", "currency", "fees": [{"add_on_code", "units", "unit_amount_cents",
"description", "invoice_display_name", "tax_codes"}]}`. Each line becomes one `add_on` fee whose
amount is units × unit amount, rounded once to the currency's minor units (money.py). A line's
`tax_codes` (a list, even empty) are the taxes its fee pays instead of the add-on's, customer's
or organization's (services.taxes has the rule). The invoice is numbered through invoicing's
finalization (the customer's row lock and sequence), announced as `invoice.one_off_created`
(Lago's webhook for it) and recorded on the customer's timeline.

Lago's order of refusals: unknown customer (404 `customer_not_found`), no fees (404
`fees_not_found`), an unknown add-on (404 `add_on_not_found`), an unknown tax code of a line
(404 `tax_not_found`, as customers, plans and add-ons), then the field errors (422).
A customer without a currency takes the invoice's; another currency than the customer's is
422 `currencies_does_not_match`. Nothing is written on any error.

Deviation from Lago, which takes an add-on's amount_cents as is whatever the invoice currency:
a line without `unit_amount_cents` whose add-on is priced in another currency is refused
(`fees[i].add_on_code: currencies_does_not_match`) instead of billing 1,000 JPY for €10.00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, localcontext
from typing import Any

from billing.errors import NotFound, ValidationFailed
from billing.models import (
    AddOn,
    Customer,
    Fee,
    FeeType,
    Invoice,
    InvoiceStatus,
    Organization,
    PaymentStatus,
    Tax,
)
from billing.money import from_minor_units, parse_decimal, to_minor_units
from billing.periods import local_date
from billing.reference import currency_codes
from billing.services import audit
from billing.services.add_ons import find_add_on
from billing.services.customers import get_customer, upsert_customer
from billing.services.invoicing import _finalize, _net_payment_term, _totals
from billing.services.metrics import Input
from billing.services.taxes import line_taxes, taxes_by_codes
from billing.timeutil import now_utc
from extensions import db

#: the most units one line may bill, and the decimals a quantity may have
MAX_UNITS = Decimal(10) ** 12
UNITS_DECIMALS = 20
#: significant digits that hold any units × unit amount exactly (13 + 20 and 19 digits, and
#: the currency's decimals); Decimal's default 28 would round the product
EXACT_DIGITS = 60
#: the largest amount (minor units) an invoice may reach (fits a BIGINT with room to spare)
MAX_AMOUNT_CENTS = 2**62


@dataclass
class OneOffLine:
    """One validated fee line."""

    add_on: AddOn
    units: Decimal
    unit_amount_cents: int
    description: str | None
    invoice_display_name: str | None
    #: the line's own taxes (its `tax_codes`); None: the add-on's, customer's or organization's
    taxes: list[Tax] | None = None

    def precise_amount(self, currency: str) -> Decimal:
        """units × unit amount, exact, in major units."""
        with localcontext(prec=EXACT_DIGITS):
            return from_minor_units(self.unit_amount_cents, currency) * self.units

    def amount_cents(self, currency: str) -> int:
        with localcontext(prec=EXACT_DIGITS):
            return to_minor_units(self.precise_amount(currency), currency)


@dataclass
class OneOffInput:
    customer: Customer
    currency: str
    lines: list[OneOffLine]


def _units(raw: Any, data: Input) -> Decimal | None:
    """A line's quantity: 1 when absent; an error on the line when unreadable or negative."""
    if raw is None:
        return Decimal(1)
    units = parse_decimal(raw)
    exponent = units.normalize().as_tuple().exponent if units is not None else None
    if units is None or not isinstance(exponent, int) or exponent < -UNITS_DECIMALS:
        data.error("units", "value_is_invalid")
        return None
    if not Decimal(0) <= units <= MAX_UNITS:
        data.error("units", "value_is_out_of_range")
        return None
    return units.copy_abs()  # -0 is 0 (and abs() would round to 28 digits)


def _line_taxes(organization: Organization, item: dict[str, Any]) -> list[Tax] | None:
    """A line's own taxes: None without `tax_codes` (absent or null); NotFound
    (`tax_not_found`) for an unknown code. Codes that are not a list of strings are a field
    error, reported with the others."""
    codes = item.get("tax_codes")
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        return None
    return taxes_by_codes(organization, codes)


def parse_one_off_input(organization: Organization, payload: dict[str, Any]) -> OneOffInput:
    """Validate a one-off invoice payload (Lago's order of refusals, see the module's doc);
    raises NotFound or ValidationFailed with every field error."""
    external_id = payload.get("external_customer_id")
    if not isinstance(external_id, str) or not external_id:
        raise NotFound("customer")
    customer = get_customer(organization, external_id)
    raw_fees = payload.get("fees")
    if not raw_fees:
        raise NotFound("fees")
    if not isinstance(raw_fees, list) or not all(isinstance(item, dict) for item in raw_fees):
        raise ValidationFailed({"fees": ["value_is_invalid"]})
    found: dict[str, AddOn | None] = {}
    add_ons = []
    for item in raw_fees:
        code = item.get("add_on_code")
        if isinstance(code, str) and code not in found:
            found[code] = find_add_on(organization, code)
        add_on = found.get(code) if isinstance(code, str) else None
        if add_on is None:
            raise NotFound("add_on")
        add_ons.append(add_on)
    line_taxes_given = [_line_taxes(organization, item) for item in raw_fees]

    errors: dict[str, list[str]] = {}
    given = payload.get("currency") or customer.currency
    currency = given.strip().upper() if isinstance(given, str) else ""
    if not given:
        errors["currency"] = ["value_is_mandatory"]
    elif currency not in currency_codes():
        errors["currency"] = ["value_is_invalid"]
    elif customer.currency is not None and customer.currency != currency:
        errors["currency"] = ["currencies_does_not_match"]

    lines = []
    for index, (item, add_on) in enumerate(zip(raw_fees, add_ons, strict=True)):
        data = Input(item, errors, prefix=f"fees[{index}].")
        data.integer("unit_amount_cents", nullable=True)
        data.text("description", 10_000)
        data.text("invoice_display_name")
        if item.get("tax_codes") is not None:
            data.string_list("tax_codes")
        units = _units(item.get("units"), data)
        unit_amount_cents = data.values.get("unit_amount_cents")
        if item.get("unit_amount_cents") is None:
            # the add-on's own price, in the add-on's currency
            if "currency" not in errors and add_on.amount_currency != currency:
                data.error("add_on_code", "currencies_does_not_match")
            unit_amount_cents = add_on.amount_cents
        if units is None or unit_amount_cents is None:
            continue
        lines.append(
            OneOffLine(
                add_on=add_on,
                units=units,
                unit_amount_cents=unit_amount_cents,
                description=data.values.get("description"),
                invoice_display_name=data.values.get("invoice_display_name"),
                taxes=line_taxes_given[index],
            )
        )
    if not errors:
        for index, line in enumerate(lines):
            if line.amount_cents(currency) > MAX_AMOUNT_CENTS:
                errors[f"fees[{index}].units"] = ["value_is_out_of_range"]
        if not errors and sum(line.amount_cents(currency) for line in lines) > MAX_AMOUNT_CENTS:
            errors["fees"] = ["value_is_out_of_range"]
    if errors:
        raise ValidationFailed(errors)
    return OneOffInput(customer, currency, lines)


def create_one_off_invoice(
    organization: Organization, payload: dict[str, Any], actor: audit.Actor
) -> Invoice:
    """Bill the customer for add-ons now: a finalized `one_off` invoice, one fee per line."""
    parsed = parse_one_off_input(organization, payload)
    customer, currency = parsed.customer, parsed.currency
    if customer.currency is None:
        upsert_customer(
            organization, {"external_id": customer.external_id, "currency": currency}, actor
        )
    now = now_utc()
    today = local_date(now, customer.applicable_timezone)
    term = _net_payment_term(customer)
    invoice = Invoice(
        organization_id=organization.id,
        customer=customer,
        number=f"{customer.slug}-DRAFT",
        invoice_type="one_off",
        status=InvoiceStatus.DRAFT,
        payment_status=PaymentStatus.PENDING,
        issuing_date=today,
        payment_due_date=today + timedelta(days=term),
        net_payment_term=term,
        currency=currency,
        created_at=now,
        updated_at=now,
    )
    own_taxes = []
    for line in parsed.lines:
        add_on = line.add_on
        fee = Fee(
            add_on=add_on,
            fee_type=FeeType.ADD_ON,
            amount_cents=line.amount_cents(currency),
            precise_amount=line.precise_amount(currency),
            currency=currency,
            units=line.units,
            total_aggregated_units=line.units,
            precise_unit_amount=from_minor_units(line.unit_amount_cents, currency),
            invoice_display_name=(
                line.invoice_display_name or add_on.invoice_display_name or add_on.name
            ),
            description=line.description or add_on.description,
            created_at=now,
        )
        invoice.fees.append(fee)
        if line.taxes is not None:
            own_taxes.append((fee, line.taxes))
    db.session.add(invoice)
    db.session.flush()  # the column defaults (coupons, taxes, credits: 0) for the totals
    with line_taxes(own_taxes):
        _totals(invoice)
    _finalize(
        invoice,
        actor,
        now,
        event="invoice.one_off_created",
        activity="invoice.one_off_created",
    )
    return invoice
