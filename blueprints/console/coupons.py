"""Coupons in the console: the organization's coupons (list, create, edit, terminate) and,
on the customer's "Wallet & coupons" tab, applying a coupon and removing applied ones. Forms
build the same Lago-shaped payloads the API receives; the services validate."""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, flash, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, StringField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional

from billing.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from billing.models import AppliedCoupon, Coupon, CouponStatus, Customer
from billing.money import format_money, from_minor_units, parse_decimal, to_minor_units
from billing.services import coupons as coupon_service
from blueprints.console import bp
from blueprints.console.catalog import PER_PAGE, SearchQuery
from blueprints.console.forms import Select, currency_choices
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_organization,
    customer_or_404,
    owned_or_404,
    redirect_htmx,
    render_htmx,
    requires,
)
from blueprints.console.messages import field_message
from extensions import db

COUPON_TYPE_LABELS = {"fixed_amount": "Fixed amount", "percentage": "Percentage"}
FREQUENCY_LABELS = {"once": "Once", "recurring": "Recurring", "forever": "Forever"}
MESSAGES = {
    ("code", "value_already_exist"): "Another coupon already uses this code.",
    ("amount", "value_is_mandatory"): "Enter the amount taken off.",
    ("amount", "value_is_out_of_range"): "Enter an amount above 0.",
    ("amount_currency", "value_is_mandatory"): "Choose a currency.",
    ("percentage_rate", "value_is_mandatory"): "Enter the percentage taken off.",
    ("percentage_rate", "value_is_out_of_range"): "Enter a percentage above 0 and up to 100.",
    ("percentage_rate", "value_is_invalid"): "Enter a percentage such as 12.5.",
    ("frequency_duration", "value_is_mandatory"): "Enter how many invoices it applies to.",
    ("frequency_duration", "value_is_out_of_range"): "Enter a number of invoices above 0.",
    ("expiration_at", "value_is_mandatory"): "Choose the last day it can be applied.",
    ("expiration_at", "invalid_date"): "Choose a date in the future.",
    ("currency", "currencies_does_not_match"): (
        "This coupon is in another currency than the customer's."
    ),
    ("coupon", "coupon_is_not_reusable"): (
        "This coupon cannot be applied twice to the same customer."
    ),
    ("coupon_code", "value_is_mandatory"): "Choose a coupon.",
}
NOT_FOUND_MESSAGES = {
    "coupon": "This coupon can no longer be applied (terminated or expired).",
    "plan": "One of the plan codes does not exist.",
    "billable_metric": "One of the metric codes does not exist.",
}


def coupon_message(field_name: str, code: str) -> str:
    return MESSAGES.get((field_name, code)) or field_message(field_name, code)


@bp.context_processor
def coupon_labels() -> dict[str, Any]:
    return {"coupon_type_labels": COUPON_TYPE_LABELS, "frequency_labels": FREQUENCY_LABELS}


class CouponForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=255)])
    code = StringField("Code", validators=[Length(max=255)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=10_000)])
    coupon_type = Select("Type", list(COUPON_TYPE_LABELS.items()), default="fixed_amount")
    amount = StringField("Amount", validators=[Optional()])
    amount_currency = Select("Currency", currency_choices())
    percentage_rate = StringField("Percentage (%)", validators=[Optional()])
    frequency = Select("Applies", list(FREQUENCY_LABELS.items()), default="once")
    frequency_duration = IntegerField(
        "Number of invoices", validators=[Optional(), NumberRange(1, 10_000)]
    )
    reusable = BooleanField("Can be applied more than once to the same customer", default=True)
    expiration_at = DateField("Can be applied until", validators=[Optional()])
    plan_codes = StringField("Only for plans (codes, comma-separated)", validators=[Optional()])
    billable_metric_codes = StringField(
        "Only for metrics (codes, comma-separated)", validators=[Optional()]
    )


def _codes(raw: str | None) -> list[str]:
    return [code.strip() for code in (raw or "").split(",") if code.strip()]


def _amount_cents(raw: str | None, currency: str | None, form_field: Any) -> int | None:
    """A major-units amount ("10.50") typed in the form, as minor units; errors on the field."""
    if not raw or not raw.strip():
        return None
    amount = parse_decimal(raw)
    if amount is None or currency is None:
        form_field.errors = [*form_field.errors, "Enter an amount such as 10.50."]
        return None
    return to_minor_units(amount, currency)


def _coupon_payload(form: CouponForm) -> dict[str, Any]:
    data = form.data
    fixed = data["coupon_type"] == "fixed_amount"
    currency = data["amount_currency"] or None
    return {
        "name": (data["name"] or "").strip(),
        "code": (data["code"] or "").strip(),
        "description": (data["description"] or "").strip() or None,
        "coupon_type": data["coupon_type"],
        "amount_cents": _amount_cents(data["amount"], currency, form.amount) if fixed else None,
        "amount_currency": currency if fixed else None,
        "percentage_rate": None if fixed else (data["percentage_rate"] or "").strip() or None,
        "frequency": data["frequency"],
        "frequency_duration": data["frequency_duration"],
        "reusable": bool(data["reusable"]),
        "expiration": "time_limit" if data["expiration_at"] else "no_expiration",
        # until the end of the chosen day (UTC)
        "expiration_at": f"{data['expiration_at'].isoformat()}T23:59:59Z"
        if data["expiration_at"]
        else None,
        "applies_to": {
            "plan_codes": _codes(data["plan_codes"]),
            "billable_metric_codes": _codes(data["billable_metric_codes"]),
        },
    }


def _refusal(form: FlaskForm, exc: ValidationFailed | Conflict | NotFound) -> list[str]:
    """Roll back, put the service's errors next to the form's fields (the form's `amount` is
    the API's `amount_cents`) and return the messages that have no field."""
    db.session.rollback()
    if isinstance(exc, NotFound):
        return [NOT_FOUND_MESSAGES.get(exc.resource, str(exc))]
    details = dict(exc.details) if isinstance(exc, ValidationFailed) else {exc.field: [exc.code]}
    if "amount_cents" in details:
        details["amount"] = details.pop("amount_cents")
    return apply_errors(form, details, coupon_message)


def coupon_or_404(lago_id: uuid.UUID) -> Coupon:
    return owned_or_404(Coupon, lago_id, live=True)


@bp.get("/coupons")
def coupons() -> ResponseReturnValue:
    """The organization's coupons, newest first; htmx requests get the table only."""
    query = SearchQuery.from_args("console.coupons", request.args)
    page = coupon_service.list_coupons(
        current_organization(), query.page, PER_PAGE, search=query.q or None
    )
    return render_htmx("console/coupons.html", "console/_coupon_table.html", query=query, page=page)


def _render_form(
    form: CouponForm, coupon: Coupon | None, status: int, unplaced: list[str] | None = None
) -> ResponseReturnValue:
    applied = coupon is not None and coupon_service.coupon_applied(coupon)
    return render_htmx(
        "console/coupon_form.html",
        "console/_coupon_form.html",
        status=status,
        form=form,
        coupon=coupon,
        applied=applied,
        unplaced=unplaced or [],
    )


@bp.route("/coupons/new", methods=["GET", "POST"])
@requires("write")
def new_coupon() -> ResponseReturnValue:
    """Create a coupon."""
    form = CouponForm()
    if request.method == "GET":
        return _render_form(form, None, 200)
    return _save(form, None)


@bp.route("/coupons/<uuid:lago_id>/edit", methods=["GET", "POST"])
@requires("write")
def edit_coupon(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Edit a coupon (only its name, description and expiry once applied)."""
    coupon = coupon_or_404(lago_id)
    if request.method == "POST":
        return _save(CouponForm(), coupon)
    form = CouponForm(obj=coupon)
    if coupon.amount_cents is not None and coupon.amount_currency:
        form.amount.data = str(from_minor_units(coupon.amount_cents, coupon.amount_currency))
    form.percentage_rate.data = str(coupon.percentage_rate or "")
    form.expiration_at.data = coupon.expiration_at.date() if coupon.expiration_at else None
    form.plan_codes.data = ", ".join(plan.code for plan in coupon.plans)
    form.billable_metric_codes.data = ", ".join(m.code for m in coupon.billable_metrics)
    return _render_form(form, coupon, 200)


def _save(form: CouponForm, coupon: Coupon | None) -> ResponseReturnValue:
    organization = current_organization()
    if not form.validate():
        return _render_form(form, coupon, 422)
    payload = _coupon_payload(form)
    if coupon is not None and coupon_service.coupon_applied(coupon):
        # its terms are shown disabled (so not posted): only these can change
        editable = coupon_service.EDITABLE_WHEN_APPLIED
        payload = {key: value for key, value in payload.items() if key in editable}
    if form.errors or form.amount.errors:
        return _render_form(form, coupon, 422)
    try:
        if coupon is None:
            coupon = coupon_service.create_coupon(organization, payload, agent_actor())
            notice = f"Coupon “{coupon.name}” created."
        else:
            coupon_service.update_coupon(organization, coupon, payload, agent_actor())
            notice = "Coupon saved."
    except (ValidationFailed, Conflict, NotFound) as exc:
        return _render_form(form, coupon, 422, _refusal(form, exc))
    db.session.commit()
    flash(notice, "success")
    return redirect_htmx(url_for("console.coupons"))


@bp.post("/coupons/<uuid:lago_id>/terminate")
@requires("write")
def terminate_coupon(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Nobody can apply it any more; the customers who have it keep it until used up."""
    coupon = coupon_or_404(lago_id)
    try:
        coupon_service.terminate_coupon(coupon, agent_actor())
    except NotAllowed:
        db.session.rollback()
        flash(f"Coupon “{coupon.name}” is terminated already.", "error")
    else:
        db.session.commit()
        flash(f"Coupon “{coupon.name}” terminated: it can no longer be applied.", "success")
    return redirect_htmx(url_for("console.coupons"))


# --- the customer's tab ----------------------------------------------------------------------


class ApplyCouponForm(FlaskForm):
    coupon_code = Select("Coupon", [])
    amount = StringField("Amount instead of the coupon's", validators=[Optional()])
    percentage_rate = StringField("Percentage instead of the coupon's", validators=[Optional()])


def customer_tab_context(
    customer: Customer, form: ApplyCouponForm | None = None, unplaced: list[str] | None = None
) -> dict[str, Any]:
    """What the coupons part of the "Wallet & coupons" tab shows."""
    organization = current_organization()
    page = coupon_service.list_applied_coupons(
        organization, coupon_service.AppliedCouponFilters(customer_id=customer.id), 1, 200
    )
    available = coupon_service.list_coupons(organization, 1, 500, status=CouponStatus.ACTIVE).items
    form = form or ApplyCouponForm(formdata=None)
    form.coupon_code.choices = [("", "Choose a coupon…")] + [
        (c.code, f"{c.name} ({c.code})") for c in available
    ]
    return {
        "applied_coupons": page.items,
        "coupon_form": form,
        "coupon_errors": unplaced or [],
        "has_coupons": bool(available),
    }


def _render_tab(customer: Customer, status: int, **kwargs: Any) -> ResponseReturnValue:
    return render_template(
        "console/_customer_coupons.html",
        customer=customer,
        timezone=customer.applicable_timezone,
        org_timezone=current_organization().timezone,
        **customer_tab_context(customer, **kwargs),
    ), status


@bp.post("/customers/<uuid:lago_id>/coupons")
@requires("write")
def apply_coupon(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Apply a coupon to the customer; errors come back next to the form's fields."""
    customer = customer_or_404(lago_id, include_deleted=False)
    form = ApplyCouponForm()
    payload: dict[str, Any] = {
        "external_customer_id": customer.external_id,
        "coupon_code": form.coupon_code.data or "",
    }
    coupon = coupon_service.find_coupon(current_organization(), form.coupon_code.data or "")
    currency = (coupon.amount_currency if coupon else None) or customer.currency
    if form.amount.data and currency is not None:
        payload["amount_cents"] = _amount_cents(form.amount.data, currency, form.amount)
    if form.percentage_rate.data:
        payload["percentage_rate"] = form.percentage_rate.data.strip()
    if form.amount.errors:
        return _render_tab(customer, 422, form=form)
    try:
        applied = coupon_service.apply_coupon(current_organization(), payload, agent_actor())
    except (ValidationFailed, NotFound) as exc:
        return _render_tab(customer, 422, form=form, unplaced=_refusal(form, exc))
    db.session.commit()
    flash(f"Coupon {applied.coupon.code} applied.", "success")
    return redirect_htmx(url_for("console.customer", lago_id=customer.lago_id, tab="wallet"))


@bp.post("/customers/<uuid:lago_id>/coupons/<uuid:applied_id>/remove")
@requires("write")
def remove_applied_coupon(lago_id: uuid.UUID, applied_id: uuid.UUID) -> ResponseReturnValue:
    """Terminate one of the customer's applied coupons (later invoices no longer use it)."""
    customer = customer_or_404(lago_id)
    applied = owned_or_404(AppliedCoupon, applied_id)
    if applied.customer_id != customer.id:
        abort(404)
    try:
        coupon_service.remove_applied_coupon(applied, agent_actor())
    except NotAllowed:
        db.session.rollback()
        flash("This coupon was removed already.", "error")
    else:
        db.session.commit()
        flash(f"Coupon {applied.coupon.code} removed.", "success")
    return redirect_htmx(url_for("console.customer", lago_id=customer.lago_id, tab="wallet"))


@bp.app_template_filter("coupon_terms")
def coupon_terms(item: Coupon | AppliedCoupon) -> str:
    """'10.00 EUR' or '12.5 %', then how often ('once', '3 invoices', 'forever')."""
    if item.percentage_rate is not None:
        value = f"{item.percentage_rate.normalize():f} %"
    elif item.amount_cents is not None and item.amount_currency:
        value = format_money(item.amount_cents, item.amount_currency)
    else:
        value = "—"
    if item.frequency == "recurring":
        return f"{value}, {item.frequency_duration} invoices"
    return f"{value}, {FREQUENCY_LABELS.get(item.frequency, item.frequency).lower()}"


def deletion_consequences(customer: Customer) -> list[str]:
    """The delete preview's lines about the customer's active applied coupons."""
    return [
        f"Coupon {applied.coupon.code} ({coupon_terms(applied)}) is terminated."
        for applied in coupon_service.active_applied_coupons(customer)
    ]
