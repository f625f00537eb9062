"""E-mail in the console: Settings › E-mail (SMTP, invoice e-mails, dunning, a test message),
the E-mails page (the outbox: every message with its delivery result), an invoice's "Resend",
a customer's "Request payment" and invoice e-mail setting, and agent invitations."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import Length

from billing.errors import Conflict, NotAllowed, ValidationFailed
from billing.models import Agent, Customer, Email, EmailStatus
from billing.services import agent_links, mail
from blueprints.console import bp
from blueprints.console.forms import Select
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_agent,
    current_organization,
    customer_or_404,
    is_htmx,
    owned_or_404,
    redirect_htmx,
    render_htmx,
    requires,
)
from blueprints.console.invoices import _done, invoice_or_404
from blueprints.console.messages import field_message
from blueprints.console.settings import ROLES, settings_message
from extensions import db

MAIL_MESSAGES = {
    ("smtp_host", "value_is_invalid"): "Enter a host name such as smtp.example.com.",
    ("smtp_port", "value_is_invalid"): "Enter a port number between 1 and 65535.",
    ("smtp_security", "value_is_invalid"): "Choose a security mode from the list.",
    ("mail_from_address", "invalid_email_format"): "Enter a valid e-mail address.",
    ("mail_from_address", "value_is_mandatory"): "A mail server needs a sender address.",
    ("dunning_schedule", "value_is_invalid"): (
        f"Enter up to {mail.DUNNING_MAX_STEPS} whole numbers of days between 1 and "
        f"{mail.DUNNING_MAX_DAYS}, separated by commas, for example 3, 10, 30."
    ),
    ("to", "invalid_email_format"): "Enter a valid e-mail address.",
    ("email", "value_is_mandatory"): "The customer has no e-mail address: add one first.",
    ("to", "value_is_mandatory"): "The customer has no e-mail address: add one first.",
}
STATUS_LABELS = {
    EmailStatus.QUEUED: "queued",
    EmailStatus.RETRYING: "retrying",
    EmailStatus.SENT: "sent",
    EmailStatus.STORED: "stored, not sent",
    EmailStatus.FAILED: "failed",
    EmailStatus.CANCELED: "canceled",
}
CUSTOMER_SETTINGS = {
    "inherit": "As the organization (Settings › E-mail)",
    "on": "Always e-mail its invoices",
    "off": "Never e-mail its invoices",
}


def mail_message(field: str, code: str) -> str:
    return MAIL_MESSAGES.get((field, code)) or field_message(field, code)


# --- Settings › E-mail -------------------------------------------------------------------------


class MailSettingsForm(FlaskForm):
    """Rendering and CSRF only: the service validates every value."""

    smtp_host = StringField("SMTP server", validators=[Length(max=255)])
    smtp_port = StringField("Port")
    smtp_security = Select(
        "Security",
        [
            ("starttls", "STARTTLS (port 587)"),
            ("tls", "TLS from the start (port 465)"),
            ("none", "None (local servers only)"),
        ],
    )
    smtp_username = StringField("User name", validators=[Length(max=255)])
    smtp_password = PasswordField("Password", validators=[Length(max=1024)])
    clear_smtp_password = BooleanField("Remove the stored password")
    mail_from_address = StringField("Sender address", validators=[Length(max=255)])
    mail_from_name = StringField("Sender name", validators=[Length(max=255)])
    invoice_emails = BooleanField("E-mail each invoice to the customer when it is finalized")
    dunning_schedule = StringField("Payment reminders (days after the due date)")

    VALUES = ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "mail_from_address",
              "mail_from_name", "invoice_emails", "dunning_schedule")  # fmt: skip


class TestEmailForm(FlaskForm):
    to = StringField("Send a test e-mail to", validators=[Length(max=255)])


def _render_mail_settings(
    form: MailSettingsForm,
    status: int = 200,
    *,
    test_form: TestEmailForm | None = None,
    unplaced: list[str] | None = None,
    test_result: tuple[str, str] | None = None,
) -> Any:
    organization = current_organization()
    return render_htmx(
        "console/settings_mail.html",
        "console/_settings_mail_form.html",
        status=status,
        form=form,
        test_form=test_form or TestEmailForm(data={"to": current_agent().email}),
        organization=organization,
        has_password=bool(organization.smtp_password_encrypted),
        unplaced=unplaced or [],
        test_result=test_result,
        section="mail",
    )


@bp.route("/settings/email", methods=["GET", "POST"])
@requires("admin")
def settings_mail() -> ResponseReturnValue:
    """The organization's mail server, invoice e-mails and payment reminder schedule."""
    organization = current_organization()
    if request.method == "GET":
        data = {name: getattr(organization, name) for name in MailSettingsForm.VALUES}
        data["smtp_port"] = str(organization.smtp_port or "")
        data["dunning_schedule"] = ", ".join(str(d) for d in organization.dunning_schedule or [])
        return _render_mail_settings(MailSettingsForm(data=data))
    form = MailSettingsForm()
    if not form.validate():
        return _render_mail_settings(form, 422)
    values = {name: form[name].data for name in MailSettingsForm.VALUES}
    values["smtp_password"] = form.smtp_password.data or None
    values["clear_smtp_password"] = form.clear_smtp_password.data
    try:
        changes = mail.update_mail_settings(
            organization, values, current_app.config["SECRET_KEY"], agent_actor()
        )
    except ValidationFailed as exc:
        db.session.rollback()
        unplaced = apply_errors(form, exc.details, mail_message)
        return _render_mail_settings(form, 422, unplaced=unplaced)
    db.session.commit()
    if changes:
        names = ", ".join(name.replace("_", " ") for name in changes)
        flash(f"E-mail settings saved: {names}.", "success")
    else:
        flash("Nothing changed.", "success")
    return redirect_htmx(url_for("console.settings_mail"))


@bp.post("/settings/email/test")
@requires("admin")
def settings_mail_test() -> ResponseReturnValue:
    """Send a test message now with the saved settings and say what happened."""
    organization = current_organization()
    test_form = TestEmailForm()
    data = {name: getattr(organization, name) for name in MailSettingsForm.VALUES}
    data["smtp_port"] = str(organization.smtp_port or "")
    data["dunning_schedule"] = ", ".join(str(d) for d in organization.dunning_schedule or [])
    form = MailSettingsForm(formdata=None, data=data)
    if not test_form.validate():
        return _render_mail_settings(form, 422, test_form=test_form)
    try:
        outcome = mail.send_test_email(organization, test_form.to.data or "", agent_actor())
    except ValidationFailed as exc:
        db.session.rollback()
        apply_errors(test_form, exc.details, mail_message)
        return _render_mail_settings(form, 422, test_form=test_form)
    if outcome.status == EmailStatus.SENT:
        result = ("success", f"Test e-mail sent to {test_form.to.data}.")
    elif outcome.status == EmailStatus.STORED:
        result = (
            "warning",
            "No SMTP server is configured: the test e-mail is stored on the E-mails page, "
            "not sent.",
        )
    else:
        result = ("error", f"The test e-mail could not be sent: {outcome.error}")
    return _render_mail_settings(form, test_form=test_form, test_result=result)


# --- the outbox ------------------------------------------------------------------------------


@bp.get("/emails")
@requires("admin")
def emails() -> ResponseReturnValue:
    """Every message of the organization, newest first, with its delivery result."""
    status = request.args.get("status", "")
    if status not in EmailStatus.ALL:
        status = ""
    organization = current_organization()
    return render_template(
        "console/emails.html",
        emails=mail.list_emails(organization, status=status or None, limit=200),
        status=status,
        status_labels=STATUS_LABELS,
        smtp_configured=mail.smtp_configured(organization),
        org=organization,
    )


@bp.get("/emails/<uuid:lago_id>")
@requires("admin")
def email_detail(lago_id: uuid.UUID) -> ResponseReturnValue:
    """One message as it was (or will be) sent: recipients, subject, text, attachment."""
    email = owned_or_404(Email, lago_id)
    return render_template(
        "console/email.html",
        email=email,
        status_labels=STATUS_LABELS,
        org=current_organization(),
    )


# --- invoices and customers ------------------------------------------------------------------


@bp.post("/invoices/<uuid:lago_id>/resend-email")
@requires("write")
def resend_invoice_email(lago_id: uuid.UUID) -> ResponseReturnValue:
    """E-mail a finalized invoice to its customer again (sent by the jobs process)."""
    invoice = invoice_or_404(lago_id)
    try:
        email = mail.resend_invoice_email(invoice, agent_actor())
    except NotAllowed:
        db.session.rollback()
        return _done(invoice, "error", "Only a finalized invoice can be e-mailed.")
    except ValidationFailed as exc:
        db.session.rollback()
        message = " ".join(mail_message(k, c) for k, codes in exc.details.items() for c in codes)
        return _done(invoice, "error", message)
    db.session.commit()
    return _done(invoice, "success", f"Invoice {invoice.number} queued for {email.recipients}.")


def _customer_done(customer: Customer, category: str, message: str) -> ResponseReturnValue:
    flash(message, category)
    return redirect_htmx(url_for("console.customer", lago_id=customer.lago_id, tab="activity"))


@bp.route("/customers/<uuid:lago_id>/request-payment", methods=["GET", "POST"])
@requires("write")
def request_payment(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Confirm, then e-mail the customer one message listing every overdue invoice."""
    customer = customer_or_404(lago_id, include_deleted=False)
    if request.method == "POST":
        form = FlaskForm()
        if not form.validate():
            return redirect(url_for("console.request_payment", lago_id=lago_id))
        try:
            email = mail.request_payment(customer, agent_actor())
        except NotAllowed:
            db.session.rollback()
            return _customer_done(customer, "error", "The customer has no overdue invoice.")
        except ValidationFailed as exc:
            db.session.rollback()
            message = " ".join(
                mail_message(k, c) for k, codes in exc.details.items() for c in codes
            )
            return _customer_done(customer, "error", message)
        db.session.commit()
        return _customer_done(
            customer, "success", f"Payment request queued for {email.recipients}."
        )
    return render_template(
        "console/request_payment.html",
        customer=customer,
        overdue=mail.overdue_invoices(customer),
        recipients=mail.addresses(customer.email),
        timezone=customer.applicable_timezone,
    )


@bp.post("/customers/<uuid:lago_id>/invoice-emails")
@requires("write")
def customer_invoice_emails(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Whether the customer's invoices are e-mailed: as the organization, always or never."""
    customer = customer_or_404(lago_id, include_deleted=False)
    form = FlaskForm()
    value = request.form.get("invoice_emails", "")
    if not form.validate() or value not in CUSTOMER_SETTINGS:
        flash("Choose one of the options.", "error")
        return redirect_htmx(url_for("console.customer", lago_id=lago_id, tab="settings"))
    mail.update_customer_setting(customer, value, agent_actor())
    db.session.commit()
    flash(f"Invoice e-mails: {CUSTOMER_SETTINGS[value].lower()}.", "success")
    return redirect_htmx(url_for("console.customer", lago_id=lago_id, tab="settings"))


# --- agent invitations -----------------------------------------------------------------------


class InviteForm(FlaskForm):
    email = StringField("E-mail", validators=[Length(max=255)])
    name = StringField("Name", validators=[Length(max=255)])
    role = Select("Role", [("", "—"), *ROLES.items()])


@bp.route("/settings/agents/invite", methods=["GET", "POST"])
@requires("admin")
def settings_invite_agent() -> ResponseReturnValue:
    """Invite an agent by e-mail: they choose their password through a signed link."""
    form = InviteForm() if request.method == "POST" else InviteForm(data={"role": "support"})
    errors: list[str] = []
    if request.method == "POST" and form.validate():
        try:
            agent = agent_links.invite_agent(
                current_organization(),
                form.email.data or "",
                form.role.data or "",
                agent_actor(),
                name=(form.name.data or "").strip() or None,
            )
        except ValidationFailed as exc:
            db.session.rollback()
            errors = apply_errors(form, exc.details, settings_message)
        except Conflict as exc:
            db.session.rollback()
            errors = apply_errors(form, {exc.field: [exc.code]}, settings_message)
        else:
            db.session.commit()
            flash(
                f"Invitation for {agent.email} ({agent.role.value}) queued: it works for "
                f"{agent_links.INVITATION_MAX_AGE // 86400} days.",
                "success",
            )
            return redirect_htmx(url_for("console.settings_agents"))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "console/settings_invite.html",
        form=form,
        form_errors=errors,
        roles=ROLES,
        section="agents",
    ), status


@bp.post("/settings/agents/<uuid:lago_id>/resend-invitation")
@requires("admin")
def settings_resend_invitation(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Send a pending invitation again (a fresh link; the older ones keep working)."""
    agent = owned_or_404(Agent, lago_id)
    try:
        agent_links.resend_invitation(agent, agent_actor())
    except ValidationFailed:
        db.session.rollback()
        flash(f"{agent.email} has accepted the invitation already.", "error")
    else:
        db.session.commit()
        flash(f"Invitation for {agent.email} sent again.", "success")
    if is_htmx():
        return redirect_htmx(url_for("console.settings_agents"))
    return redirect(url_for("console.settings_agents"))
