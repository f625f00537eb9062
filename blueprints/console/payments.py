"""Payments in the console: "Record payment" on an invoice (amount prefilled with what is
due, date, method, reference; field errors next to the fields), the invoice's payments on its
page, and the Stripe webhook settings (signing secret, endpoint URL, the events received)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from flask import flash, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField

from billing.errors import NotAllowed, NotFound, ValidationFailed
from billing.models import Invoice, InvoiceStatus
from billing.money import (
    currency_exponent,
    format_money,
    from_minor_units,
    parse_decimal,
    to_minor_units,
)
from billing.periods import local_date, local_midnight
from billing.services import payments as payment_service
from billing.services import stripe_hooks
from billing.timeutil import now_utc
from blueprints.console import bp
from blueprints.console.forms import Select
from blueprints.console.helpers import (
    agent_actor,
    current_organization,
    redirect_htmx,
    render_htmx,
    requires,
)
from blueprints.console.invoices import invoice_or_404
from extensions import db

METHOD_LABELS = {
    "bank_transfer": "Bank transfer",
    "card": "Card",
    "cash": "Cash",
    "check": "Cheque",
    "direct_debit": "Direct debit",
    "other": "Other",
    "stripe": "Stripe",
}
TYPE_LABELS = {"manual": "Recorded", "provider": "Stripe"}
STATUS_LABELS = {"succeeded": "Received", "failed": "Failed", "refunded": "Refunded"}
#: service refusals that concern the whole invoice, as an agent reads them
REFUSALS = {
    "payment_on_draft_invoice": "A draft cannot be paid: finalize it first.",
    "payment_on_voided_invoice": "This invoice is voided: it takes no payment.",
    "payment_on_closed_invoice": "This zero-amount invoice has nothing to pay.",
    "invoice": "This invoice no longer exists.",
}


def payment_message(field: str, code: str, invoice: Invoice) -> str:
    due = format_money(invoice.total_due_amount_cents, invoice.currency)
    messages = {
        ("amount_cents", "greater_than"): f"More than is due on this invoice ({due}).",
        ("amount_cents", "invalid_amount"): (
            f"A wallet top-up is paid in one payment of its whole amount ({due})."
        ),
        ("amount_cents", "value_is_out_of_range"): "Enter an amount above zero.",
        ("amount_cents", "value_is_mandatory"): "Enter the amount received.",
        ("amount_cents", "value_is_invalid"): "Enter an amount such as 12.50.",
        ("reference", "value_is_mandatory"): (
            "Enter a reference (bank transfer id, cheque number…)."
        ),
        ("reference", "value_is_too_long"): (
            f"{payment_service.REFERENCE_MAX_LENGTH} characters at most."
        ),
        ("paid_at", "invalid_date"): "Enter the date as YYYY-MM-DD.",
        ("method", "value_is_invalid"): "Choose a method from the list.",
    }
    return messages.get((field, code), code.replace("_", " "))


@bp.context_processor
def payment_helpers() -> dict[str, Any]:
    return {
        "payment_method_labels": METHOD_LABELS,
        "payment_type_labels": TYPE_LABELS,
        "payment_status_labels": STATUS_LABELS,
    }


def invoice_context(invoice: Invoice) -> dict[str, Any]:
    """What the invoice page shows of payments: its payments, and whether one can be recorded."""
    return {
        "invoice_payments": payment_service.invoice_payments(invoice),
        "payable": invoice.status == InvoiceStatus.FINALIZED and invoice.total_due_amount_cents > 0,
    }


# --- record a payment ------------------------------------------------------------------------


class PaymentForm(FlaskForm):
    """Rendering and CSRF only: the service validates the amount and the reference."""

    amount = StringField("Amount")
    paid_on = StringField("Date received")
    method = Select("Method", [(k, v) for k, v in METHOD_LABELS.items() if k != "stripe"])
    reference = StringField("Reference")


def _form_values(invoice: Invoice, form: PaymentForm) -> tuple[dict[str, Any], dict[str, str]]:
    """The form as the service's input, and the errors found reading it (field → message)."""
    errors: dict[str, str] = {}
    currency = invoice.currency
    data: dict[str, Any] = {"reference": form.reference.data or "", "method": form.method.data}
    text = (form.amount.data or "").strip().replace(",", ".")
    amount = parse_decimal(text) if text else None
    if not text:
        errors["amount"] = payment_message("amount_cents", "value_is_mandatory", invoice)
    elif amount is None:
        errors["amount"] = payment_message("amount_cents", "value_is_invalid", invoice)
    elif amount != amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))):
        errors["amount"] = f"{currency} has {currency_exponent(currency)} decimals at most."
    else:
        data["amount_cents"] = to_minor_units(amount, currency)
    timezone = invoice.customer.applicable_timezone
    today = local_date(now_utc(), timezone)
    raw_day = (form.paid_on.data or "").strip()
    try:
        day = date.fromisoformat(raw_day) if raw_day else today
    except ValueError:
        errors["paid_on"] = payment_message("paid_at", "invalid_date", invoice)
    else:
        if day > today:
            errors["paid_on"] = "A payment cannot be dated in the future."
        elif day < today:
            # a past day: its start in the customer's zone (the day it shows as)
            data["paid_at"] = local_midnight(day, timezone).isoformat()
    return data, errors


def _render_form(invoice: Invoice, form: PaymentForm, status: int, unplaced: list[str]) -> Any:
    return render_htmx(
        "console/payment_form.html",
        "console/_payment_form.html",
        status,
        invoice=invoice,
        customer=invoice.customer,
        form=form,
        unplaced=unplaced,
    )


@bp.route("/invoices/<uuid:lago_id>/payments/new", methods=["GET", "POST"])
@requires("write")
def new_payment(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Record money received for a finalized invoice; a valid submit goes back to it."""
    invoice = invoice_or_404(lago_id)
    if request.method == "GET":
        due = from_minor_units(invoice.total_due_amount_cents, invoice.currency)
        today = local_date(now_utc(), invoice.customer.applicable_timezone)
        form = PaymentForm(
            data={"amount": str(due), "paid_on": today.isoformat(), "method": "bank_transfer"}
        )
        code = payment_service.NOT_PAYABLE.get(InvoiceStatus(invoice.status))
        return _render_form(invoice, form, 200, [REFUSALS[code]] if code else [])
    form = PaymentForm()
    if not form.validate():
        return _render_form(invoice, form, 422, [])
    data, errors = _form_values(invoice, form)
    unplaced: list[str] = []
    if not errors:
        try:
            payment = payment_service.create_manual_payment(invoice, data, agent_actor())
        except ValidationFailed as exc:
            db.session.rollback()
            fields = {"amount_cents": "amount", "paid_at": "paid_on"}
            for key, codes in exc.details.items():
                for code in codes:
                    errors[fields.get(key, key)] = payment_message(key, code, invoice)
        except (NotAllowed, NotFound) as exc:
            db.session.rollback()
            unplaced.append(REFUSALS.get(exc.code, exc.code.replace("_", " ")))
        else:
            db.session.commit()
            flash(
                f"Payment of {format_money(payment.amount_cents, payment.currency)} "
                f"recorded on {invoice.number}.",
                "success",
            )
            return redirect_htmx(url_for("console.invoice", lago_id=invoice.lago_id))
    for name, message in errors.items():
        target = getattr(form, name, None)
        if target is not None:
            target.errors = [*target.errors, message]
        else:
            unplaced.append(message)
    return _render_form(invoice, form, 422, unplaced)


# --- Stripe settings -------------------------------------------------------------------------


class StripeSettingsForm(FlaskForm):
    secret = StringField("Signing secret")
    remove = BooleanField("Remove the secret (stop accepting Stripe events)")


STRIPE_MESSAGES = {
    "value_is_invalid": "Paste the endpoint's signing secret from Stripe: it starts with whsec_.",
    "value_is_mandatory": "Paste the signing secret, or tick the box to remove it.",
}


def _render_stripe(form: StripeSettingsForm, status: int) -> Any:
    organization = current_organization()
    return render_template(
        "console/settings_payments.html",
        form=form,
        organization=organization,
        endpoint_url=url_for(
            "hooks.stripe", organization_id=str(organization.lago_id), _external=True
        ),
        shared_url=url_for("hooks.stripe", _external=True),
        events=stripe_hooks.recent_events(organization),
        section="payments",
    ), status


@bp.route("/settings/payments", methods=["GET", "POST"])
@requires("admin")
def settings_payments() -> ResponseReturnValue:
    """The Stripe webhook: its signing secret, the URL to give Stripe, the events received."""
    if request.method == "GET":
        return _render_stripe(StripeSettingsForm(), 200)
    form = StripeSettingsForm()
    if not form.validate():
        return _render_stripe(form, 422)
    secret = None if form.remove.data else (form.secret.data or "")
    try:
        changed = stripe_hooks.set_webhook_secret(current_organization(), secret, agent_actor())
    except ValidationFailed as exc:
        db.session.rollback()
        form.secret.errors = [STRIPE_MESSAGES[c] for c in exc.details.get("secret", [])]
        return _render_stripe(form, 422)
    db.session.commit()
    flash("Stripe signing secret saved." if changed else "Nothing changed.", "success")
    return redirect_htmx(url_for("console.settings_payments"))
