"""Add-ons in the console (list, create, edit, delete) and a customer's one-off invoice: a form
of add-on lines (added with htmx) with a live total, creating a finalized invoice. The forms
build the same Lago-shaped payloads as the API; the services validate."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import flash, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from billing.errors import InvariantBroken, NotFound, ValidationFailed
from billing.models import AddOn, Customer
from billing.money import currency_exponent, from_minor_units, parse_decimal, to_minor_units
from billing.services import add_ons as add_on_service
from billing.services.one_off_invoices import (
    MAX_AMOUNT_CENTS,
    MAX_UNITS,
    OneOffLine,
    create_one_off_invoice,
)
from blueprints.console import bp
from blueprints.console.catalog import (
    PER_PAGE,
    ConfirmDeleteForm,
    SearchQuery,
    _amount_cents,
    catalog_message,
)
from blueprints.console.forms import Select, TaxCodes, currency_choices, tax_choices
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_organization,
    customer_or_404,
    int_arg,
    owned_or_404,
    redirect_htmx,
    render_htmx,
    requires,
)
from extensions import db

#: add-ons offered in a line's select (an organization has tens, not thousands)
ADD_ON_CHOICES_LIMIT = 500
#: lines one one-off invoice may have in the console
MAX_LINES = 50

# --- add-ons -------------------------------------------------------------------------------


class AddOnForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=255)])
    code = StringField("Code", validators=[Length(max=255)])
    invoice_display_name = StringField("Name on invoices", validators=[Length(max=255)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    amount_currency = Select("Currency", currency_choices())
    amount = StringField("Price per unit", validators=[Length(max=40)])
    tax_codes = TaxCodes()


def add_on_or_404(lago_id: uuid.UUID) -> AddOn:
    return owned_or_404(AddOn, lago_id, live=True)


@bp.get("/add-ons")
def add_ons() -> ResponseReturnValue:
    """Add-ons, newest first; htmx requests (live search, paging) get the table only."""
    query = SearchQuery.from_args("console.add_ons", request.args)
    page = add_on_service.list_add_ons(
        current_organization(), query.page, PER_PAGE, search=query.q or None
    )
    return render_htmx("console/add_ons.html", "console/_add_on_table.html", query=query, page=page)


@bp.get("/add-ons/<uuid:lago_id>")
def add_on(lago_id: uuid.UUID) -> ResponseReturnValue:
    """One add-on."""
    return render_template("console/add_on.html", add_on=add_on_or_404(lago_id))


def _render_add_on_form(
    form: AddOnForm, add_on: AddOn | None, status: int, unplaced: list[str] | None = None
) -> ResponseReturnValue:
    form.tax_codes.choices = tax_choices(current_organization())
    return render_htmx(
        "console/add_on_form.html",
        "console/_add_on_form.html",
        status=status,
        form=form,
        add_on=add_on,
        unplaced=unplaced or [],
    )


@bp.route("/add-ons/new", methods=["GET", "POST"])
@requires("write")
def new_add_on() -> ResponseReturnValue:
    """Create an add-on."""
    form = AddOnForm()
    if request.method == "GET":
        form.amount_currency.data = current_organization().default_currency or ""
        form.amount.data = "0"
        return _render_add_on_form(form, None, 200)
    return _save_add_on(form, None)


@bp.route("/add-ons/<uuid:lago_id>/edit", methods=["GET", "POST"])
@requires("write")
def edit_add_on(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Edit an add-on (invoices already issued keep their amounts)."""
    add_on = add_on_or_404(lago_id)
    if request.method == "GET":
        form = AddOnForm(obj=add_on)
        form.amount.data = str(from_minor_units(add_on.amount_cents, add_on.amount_currency))
        form.tax_codes.data = add_on.tax_codes
        return _render_add_on_form(form, add_on, 200)
    return _save_add_on(AddOnForm(), add_on)


def _save_add_on(form: AddOnForm, add_on: AddOn | None) -> ResponseReturnValue:
    if not form.validate():
        return _render_add_on_form(form, add_on, 422)
    amount_cents = _amount_cents(form)
    if form.amount.errors:
        return _render_add_on_form(form, add_on, 422)
    data = form.data
    payload = {
        "name": (data["name"] or "").strip(),
        "code": (data["code"] or "").strip(),
        "invoice_display_name": (data["invoice_display_name"] or "").strip() or None,
        "description": (data["description"] or "").strip() or None,
        "amount_cents": amount_cents,
        "amount_currency": data["amount_currency"],
        "tax_codes": data["tax_codes"] or [],
    }
    organization = current_organization()
    try:
        if add_on is None:
            add_on = add_on_service.create_add_on(organization, payload, agent_actor())
            notice = f"Add-on “{add_on.name}” created."
        else:
            add_on_service.update_add_on(organization, add_on, payload, agent_actor())
            notice = "Add-on saved."
    except ValidationFailed as exc:
        db.session.rollback()
        details = dict(exc.details)
        if "amount_cents" in details:
            details["amount"] = details.pop("amount_cents")
        unplaced = apply_errors(form, details, catalog_message)
        return _render_add_on_form(form, add_on, 422, unplaced)
    except NotFound:  # a chosen tax deleted meanwhile
        db.session.rollback()
        form.tax_codes.errors = ["A chosen tax no longer exists: choose another one."]
        return _render_add_on_form(form, add_on, 422)
    db.session.commit()
    flash(notice, "success")
    return redirect_htmx(url_for("console.add_on", lago_id=add_on.lago_id))


@bp.route("/add-ons/<uuid:lago_id>/delete", methods=["GET", "POST"])
@requires("write")
def delete_add_on(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Confirm, then delete an add-on (the no-JS confirmation page, or htmx's hx-confirm)."""
    add_on = add_on_or_404(lago_id)
    form = ConfirmDeleteForm()
    if request.method == "POST" and form.validate():
        add_on_service.delete_add_on(current_organization(), add_on, agent_actor())
        db.session.commit()
        flash(f"Add-on “{add_on.name}” deleted.", "success")
        return redirect_htmx(url_for("console.add_ons"))
    return render_template(
        "console/catalog_delete.html",
        record=add_on,
        kind="Add-on",
        form=form,
        back=url_for("console.add_on", lago_id=add_on.lago_id),
        consequences=[
            "Invoices that already bill it keep their lines.",
            f"The code “{add_on.code}” can be used again by a new add-on.",
        ],
    ), (422 if request.method == "POST" else 200)


# --- one-off invoices ----------------------------------------------------------------------

ONE_OFF_MESSAGES = {
    "currencies_does_not_match": "This customer is billed in another currency.",
    "value_is_mandatory": "Choose the invoice's currency.",
    "value_is_invalid": "Choose a currency from the list.",
}
LINE_MESSAGES = {
    ("units", "value_is_invalid"): "Enter a quantity such as 1 or 2.5.",
    ("units", "value_is_out_of_range"): "Enter a quantity of 0 or more (at most 10¹²).",
    ("unit_amount_cents", "value_is_out_of_range"): "Enter a price of 0 or more.",
    ("unit_amount_cents", "value_is_invalid"): "Enter a price such as 19.99.",
    ("description", "value_is_too_long"): "This is too long.",
    ("add_on_code", "currencies_does_not_match"): (
        "This add-on is priced in another currency: enter a unit price in the invoice's."
    ),
}
NOT_FOUND_MESSAGES = {
    "add_on": "An add-on of this invoice was deleted meanwhile: choose another one.",
    "customer": "This customer was deleted meanwhile.",
    "fees": "Add a line.",
}
_LINE_ERROR = re.compile(r"^fees\[(\d+)\]\.(\w+)$")


class OneOffForm(FlaskForm):
    """The invoice's currency (asked only of a customer without one); lines come as rows
    fees-N-add_on / -units / -unit_price / -description (see `OneOffRow`)."""

    currency = Select("Currency", currency_choices())


@dataclass
class OneOffRow:
    """One add-on line as typed: the add-on's lago id, units and an optional unit price in
    major units (strings), with its errors by field."""

    index: int
    add_on: str = ""
    units: str = "1"
    unit_price: str = ""
    description: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_form(cls, form: MultiDict[str, str], index: int) -> OneOffRow:
        def value(name: str) -> str:
            return (form.get(f"fees-{index}-{name}") or "").strip()

        return cls(
            index, value("add_on"), value("units"), value("unit_price"), value("description")
        )

    @property
    def is_blank(self) -> bool:
        return not self.add_on

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def one_off_rows(form: MultiDict[str, str]) -> list[OneOffRow]:
    """The posted lines in order (at most MAX_LINES)."""
    pattern = re.compile(r"^fees-(\d+)-")
    indexes = sorted({int(m.group(1)) for name in form if (m := pattern.match(name))})
    return [OneOffRow.from_form(form, index) for index in indexes[:MAX_LINES]]


def _unit_price_cents(text: str, currency: str) -> tuple[int | None, str | None]:
    """A typed unit price as exact minor units of `currency`, or why it cannot be (more
    decimals than the currency has, negative, too large)."""
    price = parse_decimal(text)
    if price is None or price < 0:
        return None, "Enter a price of 0 or more, such as 19.99."
    exponent = currency_exponent(currency)
    if price.scaleb(exponent) > MAX_AMOUNT_CENTS:
        return None, "This price is too large."
    if price != price.quantize(Decimal(1).scaleb(-exponent)):
        return None, f"{currency} prices have {exponent} decimal(s) at most."
    return to_minor_units(price, currency), None


def _invoice_currency(customer: Customer, form: OneOffForm) -> str:
    return customer.currency or (form.currency.data or "")


def _known_currency(currency: str) -> bool:
    try:
        currency_exponent(currency)
    except ValueError:
        return False
    return True


def _line_payloads(
    rows: list[OneOffRow], add_ons: dict[str, AddOn], currency: str
) -> list[tuple[OneOffRow, dict[str, Any]]]:
    """The API's fee objects of the filled rows (errors of unreadable prices on the rows)."""
    lines = []
    for row in rows:
        if row.is_blank:
            continue
        add_on = add_ons.get(row.add_on)
        if add_on is None:
            row.add_error("add_on", "Choose an add-on from the list.")
            continue
        line: dict[str, Any] = {"add_on_code": add_on.code, "units": row.units or None}
        if row.unit_price and _known_currency(currency):
            cents, error = _unit_price_cents(row.unit_price, currency)
            if error:
                row.add_error("unit_price", error)
            line["unit_amount_cents"] = cents
        if row.description:
            line["description"] = row.description
        lines.append((row, line))
    return lines


def _add_on_choices() -> dict[str, AddOn]:
    page = add_on_service.list_add_ons(current_organization(), 1, ADD_ON_CHOICES_LIMIT)
    return {str(add_on.lago_id): add_on for add_on in sorted(page.items, key=lambda a: a.name)}


def _render_one_off(
    customer: Customer,
    form: OneOffForm,
    rows: list[OneOffRow],
    status: int,
    unplaced: list[str] | None = None,
) -> ResponseReturnValue:
    add_ons = _add_on_choices()
    return render_htmx(
        "console/one_off_invoice.html",
        "console/_one_off_form.html",
        status=status,
        customer=customer,
        form=form,
        rows=rows,
        next_index=max((row.index for row in rows), default=-1) + 1,
        add_ons=add_ons,
        unplaced=unplaced or [],
        total=_total(customer, form, rows, add_ons),
    )


@bp.route("/customers/<uuid:lago_id>/one-off-invoice", methods=["GET", "POST"])
@requires("write")
def one_off_invoice(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Bill the customer for add-ons now: a finalized one-off invoice, then its page."""
    customer = customer_or_404(lago_id, include_deleted=False)
    form = OneOffForm()
    if request.method == "GET":
        form.currency.data = current_organization().default_currency or ""
        return _render_one_off(customer, form, [OneOffRow(0)], 200)
    rows = one_off_rows(request.form)
    currency = _invoice_currency(customer, form)
    lines = _line_payloads(rows, _add_on_choices(), currency)
    if not lines and not any(row.errors for row in rows):
        return _render_one_off(customer, form, rows or [OneOffRow(0)], 422, ["Add a line."])
    if any(row.errors for row in rows) or not form.validate():
        return _render_one_off(customer, form, rows, 422)
    payload = {
        "external_customer_id": customer.external_id,
        "currency": currency or None,
        "fees": [line for _row, line in lines],
    }
    try:
        invoice = create_one_off_invoice(current_organization(), payload, agent_actor())
    except (ValidationFailed, NotFound) as exc:
        db.session.rollback()
        unplaced = _place_one_off_errors(form, [row for row, _line in lines], exc)
        return _render_one_off(customer, form, rows, 422, unplaced)
    db.session.commit()
    flash(f"One-off invoice {invoice.number} created.", "success")
    return redirect_htmx(url_for("console.invoice", lago_id=invoice.lago_id))


def _place_one_off_errors(
    form: OneOffForm, rows: list[OneOffRow], exc: ValidationFailed | NotFound
) -> list[str]:
    """The service's errors next to their row's field (`fees[i].units` → row i's units)."""
    if isinstance(exc, NotFound):
        return [NOT_FOUND_MESSAGES.get(exc.resource, "Add a line.")]
    unplaced = []
    for key, codes in exc.details.items():
        if not isinstance(codes, list):
            raise InvariantBroken("expected isinstance(codes, list)")
        match = _LINE_ERROR.match(key)
        if match is None:
            messages = [ONE_OFF_MESSAGES.get(code, catalog_message(key, code)) for code in codes]
            if key == "currency" and form.currency.data:
                form.currency.errors = list(form.currency.errors) + messages
            else:
                unplaced += messages
            continue
        row, name = rows[int(match.group(1))], match.group(2)
        target = {"unit_amount_cents": "unit_price", "add_on_code": "add_on"}.get(name, name)
        for code in codes:
            row.add_error(target, LINE_MESSAGES.get((name, code), catalog_message(name, code)))
    return unplaced


@dataclass
class OneOffTotal:
    currency: str
    #: minor units of the lines that can be priced
    amount_cents: int
    lines: int
    #: lines left out (unreadable quantity or price, add-on in another currency)
    incomplete: int


def _total(
    customer: Customer, form: OneOffForm, rows: list[OneOffRow], add_ons: dict[str, AddOn]
) -> OneOffTotal | None:
    """What the lines come to, as the service will compute it (None without a currency)."""
    currency = _invoice_currency(customer, form)
    if not _known_currency(currency):
        return None
    amount, priced, incomplete = 0, 0, 0
    for row in rows:
        add_on = add_ons.get(row.add_on)
        if add_on is None:
            continue
        units = parse_decimal(row.units) if row.units else Decimal(1)
        if row.unit_price:
            unit_cents, _error = _unit_price_cents(row.unit_price, currency)
        else:
            same = add_on.amount_currency == currency
            unit_cents = add_on.amount_cents if same else None
        if units is None or not 0 <= units <= MAX_UNITS or unit_cents is None:
            incomplete += 1
            continue
        amount += OneOffLine(add_on, units, unit_cents, None, None).amount_cents(currency)
        priced += 1
    return OneOffTotal(currency, amount, priced, incomplete)


@bp.post("/customers/<uuid:lago_id>/one-off-invoice/total")
@requires("write")
def one_off_total(lago_id: uuid.UUID) -> ResponseReturnValue:
    """The live total of the one-off form (htmx posts the form on each change)."""
    customer = customer_or_404(lago_id, include_deleted=False)
    form = OneOffForm()
    rows = one_off_rows(request.form)
    return render_template(
        "console/_one_off_total.html",
        customer=customer,
        total=_total(customer, form, rows, _add_on_choices()),
    )


@bp.get("/customers/<uuid:lago_id>/one-off-invoice/line")
@requires("write")
def one_off_line(lago_id: uuid.UUID) -> ResponseReturnValue:
    """One new line for the one-off form (htmx appends it; the total follows the event)."""
    customer = customer_or_404(lago_id, include_deleted=False)
    index = min(max(0, int_arg(request.args.get("index"), 0)), 10_000)
    body = render_template(
        "console/_one_off_line_added.html",
        customer=customer,
        row=OneOffRow(index),
        index=index,
        add_ons=_add_on_choices(),
    )
    return body, 200, {"HX-Trigger": "one-off-changed"}
