"""The customer's wallet in the console (the "Wallet & coupons" tab): create a wallet, top it
up with paid or granted credits, see its balance, ongoing balance and transactions, terminate
it after confirmation. The wallets service decides what is allowed; its errors land next to
the form fields."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import abort, flash, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, DateField, StringField
from wtforms.validators import DataRequired, Length, Optional

from billing.errors import NotFound, ValidationFailed
from billing.models import Customer, Wallet
from billing.money import format_money
from billing.periods import local_midnight
from billing.serializers_usage import units_text
from billing.services import wallets as wallet_service
from blueprints.console import bp
from blueprints.console.forms import Select, currency_choices
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_organization,
    customer_or_404,
    is_htmx,
    redirect_htmx,
    requires,
)
from blueprints.console.messages import field_message
from extensions import db

#: transactions shown on the tab (newest first)
TRANSACTIONS_SHOWN = 50

MESSAGES = {
    ("currency", "currencies_does_not_match"): "A wallet uses the customer's currency.",
    ("currency", "value_is_mandatory"): "Choose the wallet's currency.",
    ("customer", "wallet_already_exists"): "This customer already has an active wallet.",
    ("rate_amount", "value_is_mandatory"): "Enter what one credit is worth.",
    ("rate_amount", "value_is_invalid"): "Enter a number such as 1 or 0.5.",
    ("rate_amount", "value_is_out_of_range"): "A credit must be worth more than 0.",
    ("paid_credits", "invalid_paid_credits"): "Enter a number of credits of 0 or more.",
    ("granted_credits", "invalid_granted_credits"): "Enter a number of credits of 0 or more.",
    ("expiration_at", "invalid_date"): "Choose a day after today.",
    ("wallet_id", "wallet_is_terminated"): "This wallet is terminated: it takes no more credits.",
}


def wallet_message(field_name: str, code: str) -> str:
    return MESSAGES.get((field_name, code)) or field_message(field_name, code)


class WalletForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=255)])
    currency = Select("Currency", currency_choices())
    rate_amount = StringField("Value of one credit", default="1")
    paid_credits = StringField("Paid credits")
    granted_credits = StringField("Granted credits")
    expiration_at = DateField("Expires on", validators=[Optional()])


class TopUpForm(FlaskForm):
    paid_credits = StringField("Paid credits")
    granted_credits = StringField("Granted credits")


class ConfirmTerminateWalletForm(FlaskForm):
    confirm = BooleanField(
        "I understand that the wallet's credits can no longer be used",
        validators=[DataRequired()],
    )


def wallet_tab_context(
    customer: Customer,
    *,
    wallet_form: WalletForm | None = None,
    top_up_form: TopUpForm | None = None,
    errors: list[str] | None = None,
) -> dict[str, Any]:
    """What the wallet section shows: the active wallet (else the latest), its ongoing
    balance and latest transactions, and the forms that change it."""
    wallets = wallet_service.customer_wallets(customer)
    wallet = wallets[0] if wallets else None
    context: dict[str, Any] = {
        "wallet": wallet,
        "past_wallets": wallets[1:],
        "wallet_form": wallet_form or WalletForm(formdata=None),
        "top_up_form": top_up_form or TopUpForm(formdata=None),
        "wallet_errors": errors or [],
    }
    if wallet is not None:
        context["ongoing"] = wallet_service.ongoing_balance(wallet)
        context["wallet_transactions"] = wallet_service.list_transactions(
            wallet, per_page=TRANSACTIONS_SHOWN
        ).items
    return context


def _section(customer: Customer, status: int = 200, **forms: Any) -> ResponseReturnValue:
    """The wallet section with the forms as posted: alone for htmx, else on a page of its own
    (a form posted without JavaScript)."""
    template = "console/_customer_wallet.html" if is_htmx() else "console/wallet_form.html"
    return render_template(
        template,
        customer=customer,
        timezone=customer.applicable_timezone,
        org_timezone=current_organization().timezone,
        **wallet_tab_context(customer, **forms),
    ), status


def _done(customer: Customer, message: str) -> ResponseReturnValue:
    if is_htmx():
        db.session.expire_all()
        return render_template(
            "console/_customer_wallet.html",
            customer=customer,
            notice=("success", message),
            timezone=customer.applicable_timezone,
            org_timezone=current_organization().timezone,
            **wallet_tab_context(customer),
        )
    flash(message, "success")
    return redirect_htmx(_tab_url(customer))


def _tab_url(customer: Customer) -> str:
    return url_for("console.customer", lago_id=customer.lago_id, tab="wallet")


def _wallet_or_404(customer: Customer, wallet_id: uuid.UUID) -> Wallet:
    wallet = db.session.scalar(
        select(Wallet).where(Wallet.lago_id == wallet_id, Wallet.customer_id == customer.id)
    )
    if wallet is None:
        abort(404)
    return wallet


def _credits(value: str | None) -> str | None:
    return (value or "").strip() or None


@bp.post("/customers/<uuid:lago_id>/wallet")
@requires("write")
def create_wallet(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Create the customer's wallet with its first credits."""
    customer = customer_or_404(lago_id, include_deleted=False)
    form = WalletForm()
    if not form.validate():
        return _section(customer, 422, wallet_form=form)
    expiration: date | None = form.expiration_at.data
    payload = {
        "external_customer_id": customer.external_id,
        "name": form.name.data or None,
        "currency": customer.currency or form.currency.data or None,
        "rate_amount": (form.rate_amount.data or "").strip(),
        "paid_credits": _credits(form.paid_credits.data),
        "granted_credits": _credits(form.granted_credits.data),
        "expiration_at": (
            local_midnight(expiration, customer.applicable_timezone).isoformat()
            if expiration
            else None
        ),
    }
    try:
        wallet_service.create_wallet(current_organization(), payload, agent_actor())
    except (ValidationFailed, NotFound) as exc:
        db.session.rollback()
        details = exc.details if isinstance(exc, ValidationFailed) else {"customer": [exc.code]}
        unplaced = apply_errors(form, details, wallet_message)
        return _section(customer, 422, wallet_form=form, errors=unplaced)
    db.session.commit()
    return _done(customer, "Wallet created.")


@bp.post("/customers/<uuid:lago_id>/wallet/<uuid:wallet_id>/top-up")
@requires("write")
def top_up_wallet(lago_id: uuid.UUID, wallet_id: uuid.UUID) -> ResponseReturnValue:
    """Add paid credits (a credit invoice; credited once paid) or granted credits (now)."""
    customer = customer_or_404(lago_id, include_deleted=False)
    wallet = _wallet_or_404(customer, wallet_id)
    form = TopUpForm()
    paid, granted = _credits(form.paid_credits.data), _credits(form.granted_credits.data)
    if not form.validate() or not (paid or granted):
        if form.validate():
            form.granted_credits.errors = ["Enter paid or granted credits."]
        return _section(customer, 422, top_up_form=form)
    try:
        made = wallet_service.top_up(
            wallet, {"paid_credits": paid, "granted_credits": granted}, agent_actor()
        )
    except ValidationFailed as exc:
        db.session.rollback()
        unplaced = apply_errors(form, exc.details, wallet_message)
        return _section(customer, 422, top_up_form=form, errors=unplaced)
    db.session.commit()
    pending = any(t.status == "pending" for t in made)
    return _done(
        customer,
        "Credits added."
        + (" Paid credits join the balance once their invoice is paid." if pending else ""),
    )


@bp.route("/customers/<uuid:lago_id>/wallet/<uuid:wallet_id>/terminate", methods=["GET", "POST"])
@requires("write")
def terminate_wallet(lago_id: uuid.UUID, wallet_id: uuid.UUID) -> ResponseReturnValue:
    """Confirm, then terminate the wallet; htmx's hx-confirm posts `confirm=y` directly,
    without JavaScript the confirmation page asks."""
    customer = customer_or_404(lago_id, include_deleted=False)
    wallet = _wallet_or_404(customer, wallet_id)
    if not wallet.is_active:
        flash("This wallet is already terminated.", "error")
        return redirect_htmx(_tab_url(customer))
    form = ConfirmTerminateWalletForm()
    if request.method == "POST" and form.validate():
        wallet_service.terminate_wallet(wallet, agent_actor())
        db.session.commit()
        flash("Wallet terminated.", "success")
        return redirect_htmx(_tab_url(customer))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "console/wallet_terminate.html", customer=customer, wallet=wallet, form=form
    ), status


def deletion_consequence(wallet: Wallet) -> str:
    """The line of the customer deletion preview about its wallet."""
    if wallet.credits_balance > 0:
        return (
            "The wallet is terminated: finalized drafts use its credits first, then what is "
            f"left of its {units_text(wallet.credits_balance)} credit(s) "
            f"({format_money(wallet.balance_cents, wallet.currency)}) is voided."
        )
    return "The wallet is terminated (it has no credits left)."
