"""Taxes: the organization's taxes (lago-api.md §17), the `tax_codes` that apply them to
customers, plans, charges and add-ons, and the taxes of an invoice's fees.

Which taxes a fee pays (Lago's rule, its `Fees::ApplyTaxesService`), the first that applies:

1. an add-on fee of a one-off invoice: its line's own `tax_codes`, if the line has them (a
   list, even empty: an empty list means no taxes, as Lago; absent or null goes on to 2);
2. an add-on fee: the add-on's taxes, if it has any;
3. a charge's usage fee: the charge's own taxes, if it has any;
4. a charge's usage fee or a plan's base fee: the plan's taxes, if it has any;
5. the customer's taxes, if it has any;
6. the organization's default taxes (those `applied_to_organization`).

A credit fee (a purchase of prepaid credits, services.wallets) pays no tax at all: taxes are
paid on what the credits later buy.

Amounts: each fee's tax is exact, ``taxable × rate / 100`` in `Decimal` (the taxable amount is
`fee_taxable_amount`: the fee after its share of coupons). A fee shows each tax rounded half
up to a minor unit, and its `taxes_amount_cents` is the sum of its exact taxes rounded once.
The invoice has one applied tax per tax code: `fees_amount_cents` is the sum of the taxable
amounts of the fees that pay it, and `amount_cents` the sum of their exact taxes rounded once
to the currency's minor unit (money.to_minor_units: half up; 0 digits for JPY, 2 for EUR, 3 for
KWD). The invoice's `taxes_amount_cents` is the sum of its applied taxes; it may differ from
the sum of the fees' rounded taxes by at most half a minor unit per fee and per tax.

Applied taxes are snapshots (code, name, rate, description), computed while the invoice is a
draft (creation, refresh, finalization) and never after: editing or deleting a tax leaves
finalized invoices exactly as they were.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, Table, delete, insert, literal, select, union_all

from billing.errors import NotFound, ValidationFailed
from billing.ids import new_lago_id
from billing.models import (
    AddOn,
    Charge,
    Customer,
    FeeAppliedTax,
    FeeType,
    Invoice,
    InvoiceAppliedTax,
    Organization,
    Plan,
    Tax,
)
from billing.models.taxes import add_on_taxes, charge_taxes, customer_taxes, plan_taxes
from billing.money import currency_exponent, parse_decimal, to_minor_units
from billing.serializers_taxes import serialize_tax
from billing.services import audit
from billing.services.metrics import Input, name_or_code_matches, page_of
from billing.services.organizations import lock_organization
from billing.services.pagination import Page
from billing.timeutil import now_utc
from extensions import db

RATE_MIN = Decimal(0)
RATE_MAX = Decimal(100)
_NOT_AUDITED = {"lago_id", "created_at"}


# --- lookup ------------------------------------------------------------------------------


def find_tax(organization: Organization, code: str) -> Tax | None:
    return db.session.scalar(
        select(Tax).where(Tax.organization_id == organization.id, Tax.code == code)
    )


def get_tax(organization: Organization, code: str) -> Tax:
    """The organization's tax with this code; NotFound (`tax_not_found`) otherwise."""
    tax = find_tax(organization, code)
    if tax is None:
        raise NotFound("tax")
    return tax


def list_taxes(
    organization: Organization, page: int = 1, per_page: int = 100, search: str | None = None
) -> Page[Tax]:
    """The organization's taxes, newest first; `search` matches name or code."""
    query = select(Tax).where(Tax.organization_id == organization.id)
    query = name_or_code_matches(query, search, Tax.name, Tax.code)
    return page_of(query.order_by(Tax.created_at.desc(), Tax.id.asc()), page, per_page)


def all_taxes(organization: Organization) -> list[Tax]:
    """Every tax of the organization by code (for pickers)."""
    return list(
        db.session.scalars(
            select(Tax).where(Tax.organization_id == organization.id).order_by(Tax.code)
        )
    )


def taxes_by_codes(organization: Organization, codes: Sequence[str]) -> list[Tax]:
    """The organization's taxes with these codes (repeats count once), by code; NotFound
    (`tax_not_found`, as Lago) when any code is unknown."""
    wanted = set(codes)
    if not wanted:
        return []
    taxes = list(
        db.session.scalars(
            select(Tax)
            .where(Tax.organization_id == organization.id, Tax.code.in_(wanted))
            .order_by(Tax.code)
        )
    )
    if len(taxes) != len(wanted):
        raise NotFound("tax")
    return taxes


# --- writes ------------------------------------------------------------------------------


def parse_tax_input(
    payload: dict[str, Any], current: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The columns a `tax` payload sets, and its errors (Lago's codes). `current` holds the
    stored values of an update: absent keys keep them."""
    errors: dict[str, list[str]] = {}
    data = Input(payload, errors)
    data.text("name")
    data.text("code", code=True)
    data.text("description", 10_000)
    data.boolean("applied_to_organization")
    if "rate" in payload:
        raw = payload["rate"]
        rate = None if raw is None or raw == "" else parse_decimal(raw)
        if raw is None or raw == "":
            data.error("rate", "value_is_mandatory")
        elif rate is None:
            data.error("rate", "value_is_invalid")
        elif not RATE_MIN <= rate <= RATE_MAX:
            data.error("rate", "value_is_out_of_range")
        else:
            data.values["rate"] = rate
    data.require("name", "code", "rate", current=current)
    return (data.values if not errors else {}), errors


def _stored(tax: Tax) -> dict[str, Any]:
    return {"name": tax.name, "code": tax.code, "rate": tax.rate}


def _audited(tax: Tax) -> dict[str, Any]:
    return {k: v for k, v in serialize_tax(tax).items() if k not in _NOT_AUDITED}


def _record(
    organization: Organization,
    tax: Tax,
    actor: audit.Actor,
    event: str,
    changes: dict[str, Any] | None = None,
) -> None:
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type=event,
        resource_type="tax",
        resource_id=str(tax.lago_id),
        resource_label=f"{tax.name} ({tax.code})",
        changes=changes,
    )


def create_tax(organization: Organization, data: dict[str, Any], actor: audit.Actor) -> Tax:
    """Create a tax from Lago's payload; ValidationFailed (nothing written) otherwise."""
    columns, errors = parse_tax_input(data)
    if errors:
        raise ValidationFailed(errors)
    lock_organization(organization)
    if find_tax(organization, columns["code"]) is not None:
        raise ValidationFailed({"code": ["value_already_exist"]})
    now = now_utc()
    tax = Tax(
        organization_id=organization.id,
        created_at=now,
        updated_at=now,
        **{"applied_to_organization": False, **columns},
    )
    db.session.add(tax)
    db.session.flush()
    _record(organization, tax, actor, "tax.created", audit.diff({}, _audited(tax)))
    return tax


def update_tax(
    organization: Organization, tax: Tax, data: dict[str, Any], actor: audit.Actor
) -> Tax:
    """Change the keys present in `data`. Draft invoices take the change when recomputed
    (refresh, finalization); finalized ones keep the tax as it was."""
    columns, errors = parse_tax_input(data, current=_stored(tax))
    if errors:
        raise ValidationFailed(errors)
    lock_organization(organization)
    new_code = columns.get("code", tax.code)
    if new_code != tax.code and find_tax(organization, new_code) is not None:
        raise ValidationFailed({"code": ["value_already_exist"]})
    before = _audited(tax)
    for name, value in columns.items():
        setattr(tax, name, value)
    changes = audit.diff(before, _audited(tax))
    if changes:
        tax.updated_at = now_utc()
        db.session.flush()
        _record(organization, tax, actor, "tax.updated", changes)
    return tax


def delete_tax(organization: Organization, tax: Tax, actor: audit.Actor) -> Tax:
    """Delete the tax, as Lago: it leaves the customers, plans, charges and add-ons it was
    applied to; taxes applied to invoices are snapshots and stay (drafts drop it when
    recomputed)."""
    lock_organization(organization)
    for link in (customer_taxes, plan_taxes, charge_taxes, add_on_taxes):
        db.session.execute(delete(link).where(link.c.tax_id == tax.id))
    _record(organization, tax, actor, "tax.deleted", audit.diff(_audited(tax), {}))
    db.session.delete(tax)
    db.session.flush()
    # Customers, plans, charges and add-ons loaded in this session may still list it.
    for loaded in list(db.session.identity_map.values()):
        if isinstance(loaded, (Customer, Plan, Charge, AddOn)):
            db.session.expire(loaded, ["taxes"])
    return tax


# --- the taxes of an invoice ---------------------------------------------------------------


@dataclass(frozen=True)
class _Rate:
    """A tax as read for a computation."""

    id: int
    lago_id: Any
    code: str
    name: str
    rate: Decimal
    description: str | None


#: the kinds of owners a tax is applied through, in the precedence order of the rule
_KINDS = ("add_on", "charge", "plan", "customer", "organization")


@dataclass
class _Sources:
    """Taxes by where they are applied: for each kind of owner (`_KINDS`; an organization's
    are its defaults), the rates by owner id, and which owner ids were read."""

    rates: dict[str, dict[int, list[_Rate]]] = field(
        default_factory=lambda: {kind: defaultdict(list) for kind in _KINDS}
    )
    read: dict[str, set[int]] = field(default_factory=lambda: {kind: set() for kind in _KINDS})

    def of(self, kind: str, owner_id: int) -> list[_Rate]:
        return self.rates[kind].get(owner_id, [])

    def covers(self, wanted: dict[str, set[int]]) -> bool:
        return all(ids <= self.read[kind] for kind, ids in wanted.items())


def _rates_of(kind: str, link: Table | None, owner: Any, ids: set[int]) -> Select[Any]:
    columns: tuple[Any, ...] = (Tax.id, Tax.lago_id, Tax.code, Tax.name, Tax.rate, Tax.description)
    if link is None:  # the organization's defaults
        return select(
            literal(kind).label("kind"), Tax.organization_id.label("owner"), *columns
        ).where(Tax.organization_id.in_(sorted(ids)), Tax.applied_to_organization.is_(True))
    return (
        select(literal(kind).label("kind"), owner.label("owner"), *columns)
        .join(link, link.c.tax_id == Tax.id)
        .where(owner.in_(sorted(ids)))
    )


def _load_sources(wanted: dict[str, set[int]]) -> _Sources:
    """The taxes applied through these owners (`{kind: ids}`), in one query."""
    query = union_all(
        _rates_of("add_on", add_on_taxes, add_on_taxes.c.add_on_id, wanted["add_on"]),
        _rates_of("charge", charge_taxes, charge_taxes.c.charge_id, wanted["charge"]),
        _rates_of("plan", plan_taxes, plan_taxes.c.plan_id, wanted["plan"]),
        _rates_of("customer", customer_taxes, customer_taxes.c.customer_id, wanted["customer"]),
        _rates_of("organization", None, None, wanted["organization"]),
    )
    sources = _Sources(read={kind: set(ids) for kind, ids in wanted.items()})
    for row in db.session.execute(query):
        rate = _Rate(row.id, row.lago_id, row.code, row.name, Decimal(row.rate), row.description)
        sources.rates[row.kind][row.owner].append(rate)
    return sources


#: taxes read beforehand for a batch of invoices (see `sources_read_once`)
_batch_sources: ContextVar[_Sources | None] = ContextVar("batch_tax_sources", default=None)


@contextmanager
def sources_read_once(subscriptions: Iterable[Any]) -> Iterator[None]:
    """Inside, the invoices of these subscriptions find their taxes in what one query read
    (the bulk close builds many invoices at once: one query, not one per invoice)."""
    subscriptions = list(subscriptions)
    wanted = {
        "add_on": set(),  # subscription invoices bill no add-ons
        "charge": {charge.id for s in subscriptions for charge in s.plan.charges},
        "plan": {s.plan_id for s in subscriptions},
        "customer": {s.customer_id for s in subscriptions},
        "organization": {s.organization_id for s in subscriptions},
    }
    token = _batch_sources.set(_load_sources(wanted) if subscriptions else None)
    try:
        yield
    finally:
        _batch_sources.reset(token)


def _sources(invoice: Any) -> _Sources:
    """The taxes the invoice's fees may pay: read for its batch already, else in one query."""
    wanted = {
        "add_on": {fee.add_on_id for fee in invoice.fees if getattr(fee, "add_on_id", None)},
        "charge": {fee.charge.id for fee in invoice.fees if fee.charge is not None},
        "plan": {fee.subscription.plan_id for fee in invoice.fees if fee.subscription is not None},
        "customer": {invoice.customer_id},
        "organization": {invoice.organization_id},
    }
    batch = _batch_sources.get()
    if batch is not None and batch.covers(wanted):
        return batch
    return _load_sources(wanted)


#: the taxes of one-off lines that have `tax_codes`, by fee (see `line_taxes`)
_line_taxes: ContextVar[dict[int, tuple[Any, list[_Rate]]] | None] = ContextVar(
    "one_off_line_taxes", default=None
)


@contextmanager
def line_taxes(taxes_by_fee: Iterable[tuple[Any, Sequence[Tax]]]) -> Iterator[None]:
    """Inside, these add-on fees pay exactly these taxes (a one-off line's own `tax_codes`,
    rule 1 of the module docstring): `(fee, taxes)` pairs."""
    token = _line_taxes.set(
        {id(fee): (fee, [_rate(tax) for tax in taxes]) for fee, taxes in taxes_by_fee}
    )
    try:
        yield
    finally:
        _line_taxes.reset(token)


def _rate(tax: Tax) -> _Rate:
    return _Rate(tax.id, tax.lago_id, tax.code, tax.name, Decimal(tax.rate), tax.description)


def _applicable(fee: Any, sources: _Sources, invoice: Any) -> list[_Rate]:
    """The taxes the fee pays (the rule in the module docstring), by code."""
    if fee.fee_type == FeeType.CREDIT:
        return []  # prepaid credits: taxed when they pay for something, never when bought
    taxes: list[_Rate] = []
    if fee.fee_type == FeeType.ADD_ON:
        line = (_line_taxes.get() or {}).get(id(fee))
        if line is not None:
            return sorted(line[1], key=lambda tax: tax.code)
        taxes = sources.of("add_on", fee.add_on_id)
    if fee.fee_type == FeeType.CHARGE and fee.charge is not None:
        taxes = sources.of("charge", fee.charge.id)
    in_plan = fee.fee_type in (FeeType.CHARGE, FeeType.SUBSCRIPTION)
    if not taxes and in_plan and fee.subscription is not None:
        taxes = sources.of("plan", fee.subscription.plan_id)
    taxes = (
        taxes
        or sources.of("customer", invoice.customer_id)
        or sources.of("organization", invoice.organization_id)
    )
    return sorted(taxes, key=lambda tax: tax.code)


def fee_taxable_amount(fee: Any) -> Decimal:
    """What a fee's taxes are computed on, in minor units: its amount after its share of the
    invoice's coupons (`precise_coupons_amount_cents`, once coupons set it; 0 until then),
    never below 0."""
    coupons = getattr(fee, "precise_coupons_amount_cents", None) or Decimal(0)
    return max(Decimal(0), Decimal(fee.amount_cents) - Decimal(coupons))


def _exact_tax(taxable_cents: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The exact tax in major units of `currency` (no rounding)."""
    return Decimal(taxable_cents).scaleb(-currency_exponent(currency)) * rate.scaleb(-2)


def _snapshot(tax: _Rate) -> dict[str, Any]:
    return {
        "lago_tax_id": tax.lago_id,
        "tax_code": tax.code,
        "tax_name": tax.name,
        "tax_rate": tax.rate,
        "tax_description": tax.description,
    }


def apply_invoice_taxes(invoice: Any) -> None:
    """Compute the taxes of a draft invoice's fees and the invoice's applied taxes, and set
    `taxes_amount_cents` on both (see the module docstring for the rule and the rounding).

    `invoice` is an `Invoice` in the session (refresh, finalization: its applied taxes are
    replaced) or an invoice being created in memory by the bulk close (plain objects, whose
    applied taxes `insert_applied_taxes` writes once the fees have ids).
    """
    # No autoflush (queries, lazy loads): the caller is midway through setting its totals.
    with db.session.no_autoflush:
        _apply_invoice_taxes(invoice)


def _apply_invoice_taxes(invoice: Any) -> None:
    in_session = isinstance(invoice, Invoice)
    currency = invoice.currency
    now = now_utc()
    sources = _sources(invoice) if invoice.fees else _Sources()
    # per tax code: the tax, the taxable amounts of its fees, their exact taxes
    totals: dict[str, tuple[_Rate, Decimal, Decimal]] = {}
    for fee in invoice.fees:
        taxable = fee_taxable_amount(fee)
        applied = []
        exact_sum = Decimal(0)
        for tax in _applicable(fee, sources, invoice):
            exact = _exact_tax(taxable, tax.rate, currency)
            exact_sum += exact
            values = _snapshot(tax) | {
                "base_amount_cents": taxable,
                "precise_amount_cents": exact.scaleb(currency_exponent(currency)),
                "amount_cents": to_minor_units(exact, currency),
                "currency": currency,
                "created_at": now,
            }
            applied.append(_new_row(FeeAppliedTax, values, in_session))
            _, base, total = totals.get(tax.code, (tax, Decimal(0), Decimal(0)))
            totals[tax.code] = (tax, base + taxable, total + exact)
        fee.applied_taxes = applied
        fee.taxes_amount_cents = to_minor_units(exact_sum, currency)
        fee.taxes_rate = sum((tax.tax_rate for tax in applied), Decimal(0))
    exponent = currency_exponent(currency)
    invoice_taxes = []
    # A recomputed draft keeps its row of each code still applied: (invoice, code) is unique,
    # and the unit of work would insert a new row before deleting the old one.
    kept = {tax.tax_code: tax for tax in invoice.applied_taxes} if in_session else {}
    for code in sorted(totals):
        tax, base, exact = totals[code]
        values = _snapshot(tax) | {
            "fees_amount_cents": to_minor_units(base.scaleb(-exponent), currency),
            "amount_cents": to_minor_units(exact, currency),
            "currency": currency,
            "created_at": now,
        }
        if code in kept:
            invoice_taxes.append(_updated(kept.pop(code), values))
        else:
            invoice_taxes.append(_new_row(InvoiceAppliedTax, values, in_session))
    invoice.applied_taxes = invoice_taxes  # the rows not kept are deleted (delete-orphan)
    invoice.taxes_amount_cents = sum(tax.amount_cents for tax in invoice_taxes)


def _new_row(model: type[Any], values: dict[str, Any], in_session: bool) -> Any:
    """A new applied tax: a model object in the session, or a plain one for the bulk close."""
    return model(**values) if in_session else SimpleNamespace(lago_id=new_lago_id(), **values)


def _updated(applied: InvoiceAppliedTax, values: dict[str, Any]) -> InvoiceAppliedTax:
    for name, value in values.items():
        setattr(applied, name, value)
    return applied


def usage_taxes_amount_cents(subscription: Any, charges: Sequence[Any], currency: str) -> int:
    """The taxes of a period's usage so far (current usage: `charges` are its ChargeUsage
    items), by the same rule and rounding as the invoice that will bill it."""
    invoice = SimpleNamespace(
        currency=currency,
        customer_id=subscription.customer_id,
        organization_id=subscription.organization_id,
        applied_taxes=[],
        fees=[
            SimpleNamespace(
                fee_type=FeeType.CHARGE,
                charge=usage.charge,
                subscription=subscription,
                amount_cents=usage.amount_cents,
            )
            for usage in charges
        ],
    )
    apply_invoice_taxes(invoice)
    return int(invoice.taxes_amount_cents)


_FEE_TAXES: Table = FeeAppliedTax.__table__  # type: ignore[assignment]
_INVOICE_TAXES: Table = InvoiceAppliedTax.__table__  # type: ignore[assignment]


def _row(item: Any, table: Table, **values: Any) -> dict[str, Any]:
    row = {column.key: getattr(item, column.key, None) for column in table.columns}
    row.pop("id")
    return row | values


def insert_applied_taxes(invoices: Sequence[Any]) -> None:
    """Write the applied taxes `apply_invoice_taxes` computed for invoices created in memory
    (the bulk close), once they and their fees have ids: one insert per table."""
    fee_rows = [
        _row(applied, _FEE_TAXES, fee_id=fee.id)
        for invoice in invoices
        for fee in invoice.fees
        for applied in fee.applied_taxes
    ]
    invoice_rows = [
        _row(applied, _INVOICE_TAXES, invoice_id=invoice.id)
        for invoice in invoices
        for applied in invoice.applied_taxes
    ]
    connection = db.session.connection()
    if fee_rows:
        connection.execute(insert(_FEE_TAXES), fee_rows)
    if invoice_rows:
        connection.execute(insert(_INVOICE_TAXES), invoice_rows)
