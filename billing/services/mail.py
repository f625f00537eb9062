"""E-mail: SMTP settings, the messages Ledgerline sends, and their delivery.

Every message is a row of `emails`, written in the transaction of what causes it (an invoice
finalized, an agent's action, the dunning job): a failure to send never blocks that change,
and nothing is lost if a process dies. The jobs process then delivers the due rows, like the
webhook deliveries: each batch is leased (its next attempt pushed past the SMTP timeout and
committed; rows another sender holds are skipped with FOR UPDATE SKIP LOCKED on PostgreSQL),
then every message is rendered in its recipient's language, sent with smtplib, and marked
sent, or retried with an exponential backoff until its retry window has passed, then failed.

Without an SMTP server (the development default), a message is rendered and *stored*: it is
listed in the console's E-mails page, marked as not sent, so `make run` needs no mail server.

Exactly once where it matters: an invoice's finalization e-mail and each dunning step of an
invoice carry a dedupe key unique per organization (`invoice:<id>`, `reminder:<id>:<days>`),
inserted with ON CONFLICT DO NOTHING, so two schedulers never queue one twice.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel.dates import format_date
from flask import current_app
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import selectinload

from billing.errors import InvariantBroken, NotAllowed, ValidationFailed
from billing.ids import new_lago_id
from billing.models import (
    Agent,
    Customer,
    Email,
    EmailKind,
    EmailStatus,
    Invoice,
    InvoiceStatus,
    Organization,
    PaymentStatus,
)
from billing.money import format_money
from billing.pdf import babel_locale, document_locale, translations
from billing.periods import local_date
from billing.secrets import SecretUnreadable, decrypt_secret, encrypt_secret
from billing.services import audit
from billing.timeutil import now_utc
from extensions import db

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
CUSTOMER_SETTINGS = ("inherit", "on", "off")
#: dunning: at most this many steps, each 1 to this many days after the due date
DUNNING_MAX_STEPS = 10
DUNNING_MAX_DAYS = 365
#: a sender's lease on a batch: every message's timeout and this margin
LEASE_MARGIN_SECONDS = 5
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def valid_address(address: str) -> bool:
    return len(address) <= 255 and bool(_EMAIL.match(address))


def addresses(value: str | None) -> list[str]:
    """The valid addresses of a customer's `email` (one address or a comma-separated list)."""
    return [part.strip() for part in (value or "").split(",") if valid_address(part.strip())]


# ---------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    from_address: str
    from_name: str


def smtp_configured(organization: Organization) -> bool:
    return bool(organization.smtp_host)


def smtp_settings(organization: Organization, secret_key: str) -> SmtpSettings | None:
    """The organization's mail server with its password decrypted; None when there is none
    (messages are stored, not sent). SecretUnreadable when SECRET_KEY changed since."""
    if not organization.smtp_host:
        return None
    password = None
    if organization.smtp_password_encrypted:
        password = decrypt_secret(secret_key, organization.smtp_password_encrypted)
    security = organization.smtp_security or "starttls"
    return SmtpSettings(
        host=organization.smtp_host,
        port=organization.smtp_port or DEFAULT_PORTS.get(security, 587),
        security=security,
        username=organization.smtp_username,
        password=password,
        from_address=from_address(organization),
        from_name=organization.mail_from_name or organization.name,
    )


def from_address(organization: Organization) -> str:
    """The sender's address: the configured one, else billing@ the public host."""
    if organization.mail_from_address:
        return organization.mail_from_address
    host = urlsplit(current_app.config.get("PUBLIC_URL") or "").hostname or "ledgerline.invalid"
    if "." not in host or host.replace(".", "").isdigit():  # localhost, an IP address
        host = "ledgerline.invalid"
    return f"billing@{host}"


def parse_schedule(raw: Any) -> list[int]:
    """Dunning days from "3, 10, 30" or a list; ValueError when one is not a whole number of
    days between 1 and DUNNING_MAX_DAYS or there are too many. Sorted, duplicates dropped."""
    if raw is None:
        return []
    parts = raw if isinstance(raw, list) else re.split(r"[\s,;]+", str(raw).strip())
    days = set()
    for part in parts:
        if part in ("", None):
            continue
        text = str(part).strip()
        if not text.isdigit() or not 1 <= int(text) <= DUNNING_MAX_DAYS:
            raise ValueError(text)
        days.add(int(text))
    if len(days) > DUNNING_MAX_STEPS:
        raise ValueError("too many steps")
    return sorted(days)


def update_mail_settings(
    organization: Organization, values: dict[str, Any], secret_key: str, actor: audit.Actor
) -> list[str]:
    """Validate and store the organization's e-mail settings; returns the changed names.

    `smtp_password`: None or absent keeps the stored one, "" with `clear_smtp_password` removes
    it, any other text replaces it (stored encrypted). An empty host means "no server": messages
    are stored in the outbox, not sent."""
    errors: dict[str, list[str]] = {}
    new: dict[str, Any] = {}
    host = str(values.get("smtp_host") or "").strip()
    if len(host) > 255 or any(ch.isspace() or ch in "/@" for ch in host):
        errors["smtp_host"] = ["value_is_invalid"]
    new["smtp_host"] = host or None
    security = str(values.get("smtp_security") or "starttls")
    if security not in SECURITY_MODES:
        errors["smtp_security"] = ["value_is_invalid"]
    new["smtp_security"] = security
    port_text = str(values.get("smtp_port") or "").strip()
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            errors["smtp_port"] = ["value_is_invalid"]
        else:
            new["smtp_port"] = int(port_text)
    else:
        new["smtp_port"] = None
    username = str(values.get("smtp_username") or "").strip()
    if len(username) > 255:
        errors["smtp_username"] = ["value_is_too_long"]
    new["smtp_username"] = username or None
    sender = str(values.get("mail_from_address") or "").strip()
    if sender and not valid_address(sender):
        errors["mail_from_address"] = ["invalid_email_format"]
    elif host and not sender:
        errors["mail_from_address"] = ["value_is_mandatory"]
    new["mail_from_address"] = sender or None
    name = str(values.get("mail_from_name") or "").strip()
    if len(name) > 255:
        errors["mail_from_name"] = ["value_is_too_long"]
    new["mail_from_name"] = name or None
    new["invoice_emails"] = bool(values.get("invoice_emails"))
    try:
        new["dunning_schedule"] = parse_schedule(values.get("dunning_schedule"))
    except ValueError:
        errors["dunning_schedule"] = ["value_is_invalid"]
    password = values.get("smtp_password")
    if password and len(str(password)) > 1024:
        errors["smtp_password"] = ["value_is_too_long"]
    if errors:
        raise ValidationFailed(errors)
    changes: dict[str, list[Any]] = {}
    for key, value in new.items():
        if getattr(organization, key) != value:
            changes[key] = [getattr(organization, key), value]
            setattr(organization, key, value)
    if password:
        organization.smtp_password_encrypted = encrypt_secret(secret_key, str(password))
        changes["smtp_password"] = ["[hidden]", "[changed]"]
    elif values.get("clear_smtp_password") and organization.smtp_password_encrypted:
        organization.smtp_password_encrypted = None
        changes["smtp_password"] = ["[hidden]", None]
    db.session.flush()
    if changes:
        audit.record_activity(
            organization_id=organization.id,
            actor=actor,
            activity_type="organization.mail_settings_updated",
            resource_type="organization",
            resource_id=str(organization.lago_id),
            resource_label=organization.name,
            changes=changes,
        )
    return list(changes)


def update_customer_setting(customer: Customer, value: str, actor: audit.Actor) -> bool:
    """The customer's invoice e-mails: inherit (the organization's), on or off."""
    if value not in CUSTOMER_SETTINGS:
        raise ValidationFailed({"invoice_emails": ["value_is_invalid"]})
    if customer.invoice_emails == value:
        return False
    audit.record_activity(
        organization_id=customer.organization_id,
        actor=actor,
        activity_type="customer.updated",
        resource_type="customer",
        resource_id=str(customer.lago_id),
        resource_label=customer.display_name,
        changes={"invoice_emails": [customer.invoice_emails, value]},
        customer_id=customer.id,
    )
    customer.invoice_emails = value
    db.session.flush()
    return True


def wants_invoice_emails(customer: Customer) -> bool:
    if customer.invoice_emails == "inherit":
        return bool(customer.organization.invoice_emails)
    return customer.invoice_emails == "on"


def customer_locale(customer: Customer) -> str:
    """The customer's document language: its own, else the organization's, else English."""
    for candidate in (customer.document_locale, customer.organization.document_locale):
        if candidate:
            return document_locale(candidate)
    return "en"


# ---------------------------------------------------------------------------------------------
# Queueing


def _insert_unless_present() -> Any:
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(Email).on_conflict_do_nothing()
    return sqlite_insert(Email).on_conflict_do_nothing()


def _row(
    organization_id: int,
    kind: str,
    recipients: Sequence[str],
    *,
    locale: str = "en",
    customer_id: int | None = None,
    invoice_id: int | None = None,
    agent_id: int | None = None,
    dedupe_key: str | None = None,
    context: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    now = at or now_utc()
    return {
        "lago_id": new_lago_id(),
        "organization_id": organization_id,
        "customer_id": customer_id,
        "invoice_id": invoice_id,
        "agent_id": agent_id,
        "kind": kind,
        "dedupe_key": dedupe_key,
        "recipients": ", ".join(recipients)[:1024],
        "locale": locale,
        "context": context or {},
        "status": EmailStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _queue(rows: list[dict[str, Any]]) -> int:
    """Insert the rows; those whose dedupe key exists already are skipped. Returns how many
    were queued."""
    if not rows:
        return 0
    result = db.session.execute(_insert_unless_present().returning(Email.id), rows)
    return len(result.all())


def _queue_one(row: dict[str, Any]) -> Email:
    email = Email(**row)
    db.session.add(email)
    db.session.flush()
    return email


def queue_invoice_emails(invoices: Iterable[Any]) -> int:
    """At finalization (same transaction): an e-mail for each invoice whose customer wants
    them and has an address. Takes models or the period close's in-memory invoices; one
    statement for the lot. Returns how many were queued."""
    rows = []
    for invoice in invoices:
        if invoice.status != InvoiceStatus.FINALIZED:
            continue
        customer = invoice.customer
        if not customer.email or not wants_invoice_emails(customer):
            continue
        recipients = addresses(customer.email)
        if not recipients:
            continue
        rows.append(
            _row(
                invoice.organization_id,
                EmailKind.INVOICE,
                recipients,
                locale=customer_locale(customer),
                customer_id=customer.id,
                invoice_id=invoice.id,
                dedupe_key=f"invoice:{invoice.id}",
            )
        )
    return _queue(rows)


def _address_list(value: Any, name: str, errors: dict[str, list[str]]) -> list[str]:
    """A list of addresses given to the API (null or absent: none)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors[name] = ["value_is_invalid"]
        return []
    cleaned = [item.strip() for item in value if item.strip()]
    if not all(valid_address(item) for item in cleaned) or len(", ".join(cleaned)) > 1024:
        errors[name] = ["invalid_email_format"]
    return cleaned


def resend_invoice_email(
    invoice: Invoice,
    actor: audit.Actor,
    recipients: Any = None,
    *,
    cc: Any = None,
    bcc: Any = None,
) -> Email:
    """Queue the invoice's e-mail again (to the customer, or to `recipients`, with optional
    `cc` and `bcc` lists). NotAllowed (`invalid_status`) for a draft or voided invoice;
    ValidationFailed for a bad address or without any."""
    if invoice.status != InvoiceStatus.FINALIZED:
        raise NotAllowed("invalid_status")
    customer = invoice.customer
    errors: dict[str, list[str]] = {}
    to = _address_list(recipients, "to", errors) or addresses(customer.email)
    copies = {"cc": _address_list(cc, "cc", errors), "bcc": _address_list(bcc, "bcc", errors)}
    if not to and not errors:
        errors["to"] = ["value_is_mandatory"]
    if errors:
        raise ValidationFailed(errors)
    email = _queue_one(
        _row(
            invoice.organization_id,
            EmailKind.INVOICE_RESENT,
            to,
            locale=customer_locale(customer),
            customer_id=customer.id,
            invoice_id=invoice.id,
            context={key: value for key, value in copies.items() if value},
        )
    )
    audit.record_activity(
        organization_id=invoice.organization_id,
        actor=actor,
        activity_type="invoice.email_resent",
        resource_type="invoice",
        resource_id=str(invoice.lago_id),
        resource_label=invoice.number,
        changes={"recipients": [None, email.recipients]},
        customer_id=customer.id,
    )
    return email


def overdue_invoices(customer: Customer, at: datetime | None = None) -> list[Invoice]:
    """The customer's finalized, unpaid invoices past their due date (its own calendar)."""
    today = local_date(at or now_utc(), customer.applicable_timezone)
    return list(
        db.session.scalars(
            select(Invoice)
            .where(
                Invoice.customer_id == customer.id,
                Invoice.status == InvoiceStatus.FINALIZED,
                Invoice.payment_status != PaymentStatus.SUCCEEDED,
                Invoice.payment_due_date < today,
            )
            .order_by(Invoice.payment_due_date, Invoice.id)
        )
    )


def request_payment(customer: Customer, actor: audit.Actor) -> Email:
    """Queue one e-mail to the customer listing every overdue invoice. NotAllowed
    (`no_overdue_invoices`) when none is overdue; ValidationFailed without an address."""
    invoices = overdue_invoices(customer)
    if not invoices:
        raise NotAllowed("no_overdue_invoices")
    recipients = addresses(customer.email)
    if not recipients:
        raise ValidationFailed({"email": ["value_is_mandatory"]})
    email = _queue_one(
        _row(
            customer.organization_id,
            EmailKind.PAYMENT_REQUEST,
            recipients,
            locale=customer_locale(customer),
            customer_id=customer.id,
            context={"invoice_ids": [invoice.id for invoice in invoices]},
        )
    )
    audit.record_activity(
        organization_id=customer.organization_id,
        actor=actor,
        activity_type="customer.payment_requested",
        resource_type="customer",
        resource_id=str(customer.lago_id),
        resource_label=customer.display_name,
        changes={"invoices": [None, ", ".join(invoice.number for invoice in invoices)]},
        customer_id=customer.id,
    )
    return email


def queue_due_reminders(at: datetime | None = None) -> int:
    """The dunning job: for every unpaid, finalized invoice of an organization with a
    schedule, the latest step it has reached (days after its due date, in its customer's
    calendar) is queued once (unique key per invoice and step). A step passed while the job
    was not running is not sent late once a later step is reached. Returns how many."""
    at = at or now_utc()
    rows = []
    schedules = db.session.execute(select(Organization.id, Organization.dunning_schedule)).all()
    for organization_id, schedule in schedules:
        if not schedule:
            continue
        # Dates east of UTC run up to 14 hours ahead: read candidates by tomorrow's UTC date.
        horizon = local_date(at, "UTC") + timedelta(days=1) - timedelta(days=min(schedule))
        invoices = db.session.execute(
            select(Invoice, Customer)
            .join(Customer, Customer.id == Invoice.customer_id)
            .where(
                Invoice.organization_id == organization_id,
                Invoice.status == InvoiceStatus.FINALIZED,
                Invoice.payment_status != PaymentStatus.SUCCEEDED,
                Invoice.payment_due_date <= horizon,
                Customer.deleted_at.is_(None),
                Customer.email.is_not(None),
            )
            .order_by(Invoice.id)
        ).all()
        for invoice, customer in invoices:
            days = (local_date(at, customer.applicable_timezone) - invoice.payment_due_date).days
            reached = [step for step in schedule if step <= days]
            recipients = addresses(customer.email)
            if not reached or not recipients:
                continue
            step = max(reached)
            rows.append(
                _row(
                    organization_id,
                    EmailKind.REMINDER,
                    recipients,
                    locale=customer_locale(customer),
                    customer_id=customer.id,
                    invoice_id=invoice.id,
                    dedupe_key=f"reminder:{invoice.id}:{step}",
                    context={"days": step},
                    at=at,
                )
            )
    return _queue(rows)


def queue_agent_email(agent: Agent, kind: str) -> Email:
    """An invitation or password-reset message to the agent; its link is made when it is sent
    (billing/services/agent_links.py)."""
    return _queue_one(_row(agent.organization_id, kind, [agent.email], agent_id=agent.id))


# ---------------------------------------------------------------------------------------------
# Rendering


@dataclass
class Rendered:
    subject: str
    text: str
    attachments: list[tuple[str, bytes]] = field(default_factory=list)
    #: the message no longer applies (the invoice was paid or voided meanwhile)
    canceled: bool = False


@cache
def _environment(locale: str) -> Environment:
    """Mail templates with the document locale's gettext catalog (as billing.pdf's)."""
    env = Environment(
        loader=FileSystemLoader(ROOT / "templates" / "mail"),
        autoescape=select_autoescape([]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


def _render(template: str, locale: str, **context: Any) -> tuple[str, str]:
    """(subject, body) of a mail template: its `subject` variable and its text."""
    module = _environment(locale).get_template(template).make_module(context)
    return str(getattr(module, "subject", "")).strip(), str(module).strip() + "\n"


def _portal_link(customer: Customer) -> str:
    from billing.services import documents, portal  # noqa: PLC0415  (portal imports services)

    return portal.portal_url(
        documents.public_base_url(), current_app.config["SECRET_KEY"], customer
    )


def _invoice_line(invoice: Invoice, locale: str) -> dict[str, str]:
    code = babel_locale(locale)
    return {
        "number": invoice.number,
        "amount": format_money(invoice.total_due_amount_cents, invoice.currency, locale),
        "total": format_money(invoice.total_amount_cents, invoice.currency, locale),
        "issuing_date": format_date(invoice.issuing_date, format="long", locale=code),
        "due_date": format_date(invoice.payment_due_date, format="long", locale=code),
    }


def _unpaid(invoice: Invoice | None) -> bool:
    return (
        invoice is not None
        and invoice.status == InvoiceStatus.FINALIZED
        and invoice.payment_status != PaymentStatus.SUCCEEDED
    )


def render(email: Email) -> Rendered:
    """The message in its language, with its links and attachment (may store the invoice's
    PDF when the documents job has not yet)."""
    if email.kind in EmailKind.SENSITIVE or email.kind == EmailKind.TEST:
        return _render_agent_message(email)
    from billing.services import documents  # noqa: PLC0415

    customer = email.customer
    if customer is None:
        raise InvariantBroken("a customer e-mail without its customer")
    organization = customer.organization
    locale = document_locale(email.locale)
    common = {
        "organization": organization.name,
        "customer": customer.display_name,
        "portal_url": _portal_link(customer),
    }
    invoice = email.invoice
    if email.kind in (EmailKind.INVOICE, EmailKind.INVOICE_RESENT):
        if invoice is None:
            raise InvariantBroken("an invoice e-mail without its invoice")
        if invoice.status != InvoiceStatus.FINALIZED:
            return Rendered("", "", canceled=True)
        subject, text = _render(
            "invoice.txt", locale, invoice=_invoice_line(invoice, locale), **common
        )
        document = documents.generate_invoice_pdf(invoice)
        return Rendered(subject, text, [(document.filename, document.content)])
    if email.kind == EmailKind.REMINDER:
        if invoice is None or not _unpaid(invoice):
            return Rendered("", "", canceled=True)
        subject, text = _render(
            "payment_reminder.txt",
            locale,
            invoice=_invoice_line(invoice, locale),
            days=int(email.context.get("days") or 0),
            **common,
        )
        document = documents.generate_invoice_pdf(invoice)
        return Rendered(subject, text, [(document.filename, document.content)])
    if email.kind == EmailKind.PAYMENT_REQUEST:
        ids = list(email.context.get("invoice_ids") or [])
        invoices = [
            i
            for i in db.session.scalars(
                select(Invoice).where(Invoice.id.in_(ids)).order_by(Invoice.payment_due_date)
            )
            if _unpaid(i)
        ]
        if not invoices:
            return Rendered("", "", canceled=True)
        totals: dict[str, int] = {}
        for item in invoices:
            totals[item.currency] = totals.get(item.currency, 0) + item.total_due_amount_cents
        subject, text = _render(
            "payment_request.txt",
            locale,
            invoices=[_invoice_line(item, locale) for item in invoices],
            totals=[format_money(cents, currency, locale) for currency, cents in totals.items()],
            **common,
        )
        return Rendered(subject, text)
    raise ValueError(f"unknown e-mail kind {email.kind!r}")


def _render_agent_message(email: Email) -> Rendered:
    """Agents' messages, in English like the console."""
    from billing.services import agent_links  # noqa: PLC0415

    organization = db.session.get_one(Organization, email.organization_id)
    if email.kind == EmailKind.TEST:
        subject, text = _render("agents/test.txt", "en", organization=organization.name)
        return Rendered(subject, text)
    agent = db.session.get(Agent, email.agent_id) if email.agent_id else None
    if agent is None or not agent.is_active:
        return Rendered("", "", canceled=True)
    secret = current_app.config["SECRET_KEY"]
    if email.kind == EmailKind.INVITATION:
        if agent.invited_at is None:  # accepted meanwhile
            return Rendered("", "", canceled=True)
        link = agent_links.invitation_url(secret, agent)
        hours = agent_links.INVITATION_MAX_AGE // 3600
        template = "agents/invitation.txt"
    else:
        link = agent_links.reset_url(secret, agent)
        hours = agent_links.RESET_MAX_AGE // 3600
        template = "agents/password_reset.txt"
    subject, text = _render(
        template, "en", organization=organization.name, link=link, hours=hours, email=agent.email
    )
    return Rendered(subject, text)


def build_message(email: Email, rendered: Rendered, organization: Organization) -> EmailMessage:
    """The MIME message: text body and attachments, From the organization's sender."""
    message = EmailMessage()
    sender = from_address(organization)
    message["Subject"] = rendered.subject
    message["From"] = formataddr((organization.mail_from_name or organization.name, sender))
    message["To"] = email.recipients
    if email.context.get("cc"):
        message["Cc"] = ", ".join(email.context["cc"])
    message["Date"] = format_datetime(now_utc())
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    message["Content-Language"] = email.locale
    message.set_content(rendered.text)
    message.add_alternative(html_version(rendered.text, organization), subtype="html")
    for filename, content in rendered.attachments:
        message.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
    return message


_URL = re.compile(r"(https?://[^\s<>]+)")


def html_version(text: str, organization: Organization) -> str:
    """The HTML alternative of a text message (the same words, no other strings to translate):
    paragraphs, "- " lines as a list, links clickable, the organization's brand color."""
    blocks = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in paragraph.splitlines() if line.strip()]
        if lines and all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{_linked(line[2:])}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        else:
            blocks.append("<p>" + "<br>".join(_linked(line) for line in lines) + "</p>")
    color = escape(organization.brand_color or "#2f5bd3")
    return (
        '<!doctype html><html><body style="font-family: sans-serif; line-height: 1.5; '
        f'color: #1f2933;"><div style="border-top: 4px solid {color}; max-width: 36rem; '
        f'padding-top: 0.5rem;">{"".join(blocks)}</div></body></html>'
    )


def _linked(line: str) -> str:
    parts = _URL.split(line)
    return "".join(
        f'<a href="{escape(part)}">{escape(part)}</a>' if index % 2 else str(escape(part))
        for index, part in enumerate(parts)
    )


# ---------------------------------------------------------------------------------------------
# Delivery


class PermanentFailure(Exception):
    """The server refused the message for good (5xx): no retry would help."""


def timeout_seconds() -> float:
    return float(current_app.config.get("MAIL_TIMEOUT_SECONDS", 10))


def retry_window() -> timedelta:
    return timedelta(hours=float(current_app.config.get("MAIL_RETRY_HOURS", 24)))


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 30 s, 1 min, 2 min, … capped at 1 hour."""
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def smtp_send(
    settings: SmtpSettings,
    message: EmailMessage,
    timeout: float,
    envelope_recipients: list[str] | None = None,
) -> None:
    """Hand the message to the server (smtplib): to its To and Cc, or `envelope_recipients`
    (which also carry the Bcc addresses, never written in the message). PermanentFailure on
    a 5xx refusal; any other error (connection, 4xx, authentication) raises as is and is
    retried."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.security == "tls":
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    try:
        if settings.security == "starttls":
            smtp.starttls(context=context)
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        try:
            smtp.send_message(message, to_addrs=envelope_recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _text in exc.recipients.values()]
            if codes and all(code >= 500 for code in codes):
                raise PermanentFailure(f"recipients refused: {exc.recipients!r}") from exc
            raise
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPAuthenticationError):
                raise PermanentFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def has_due(at: datetime | None = None) -> bool:
    now = at or now_utc()
    query = (
        select(Email.id)
        .where(Email.status.in_(EmailStatus.OPEN), Email.next_attempt_at <= now)
        .limit(1)
    )
    return db.session.scalar(query) is not None


def claim_due(limit: int = 10, at: datetime | None = None) -> list[int]:
    """Lease up to `limit` due messages and commit (see the module docstring); their ids."""
    now = at or now_utc()
    query = (
        select(Email)
        .where(Email.status.in_(EmailStatus.OPEN), Email.next_attempt_at <= now)
        .order_by(Email.next_attempt_at, Email.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    emails = list(db.session.scalars(query))
    lease = now + timedelta(seconds=len(emails) * timeout_seconds() + LEASE_MARGIN_SECONDS)
    for email in emails:
        email.next_attempt_at = lease
    ids = [email.id for email in emails]
    db.session.commit()
    return ids


@dataclass
class Outcome:
    status: str
    error: str | None = None


def deliver(email_id: int, at: datetime | None = None) -> Outcome:
    """Render, then send (or store, without a server) one leased message, and record the
    outcome; commits. Never raises for a delivery problem: it is recorded and retried.

    Everything read from the database is read before the commit that precedes the SMTP
    conversation, so no transaction (on SQLite: no write lock) stays open while it lasts."""
    email = db.session.get_one(Email, email_id)
    organization = db.session.get_one(Organization, email.organization_id)
    try:
        rendered = render(email)
        settings = message = envelope = None
        if not rendered.canceled:
            email.subject = rendered.subject[:255]
            email.body_text = rendered.text
            email.attachment_name = ", ".join(name for name, _ in rendered.attachments) or None
            settings = smtp_settings(organization, current_app.config["SECRET_KEY"])
            if settings is not None:
                message = build_message(email, rendered, organization)
                envelope = _envelope(email)
        db.session.commit()  # the rendered text, and a PDF stored just now
        if rendered.canceled:
            return _record(email_id, Outcome(EmailStatus.CANCELED), at)
        if settings is None or message is None:
            return _record(email_id, Outcome(EmailStatus.STORED), at)
        smtp_send(settings, message, timeout_seconds(), envelope_recipients=envelope)
    except PermanentFailure as exc:
        db.session.rollback()
        log.warning("mail: message %r refused for good: %s", email_id, exc)
        return _record(email_id, Outcome(EmailStatus.FAILED, str(exc)), at)
    except (smtplib.SMTPException, OSError, SecretUnreadable) as exc:
        db.session.rollback()
        log.warning("mail: sending message %r failed: %r", email_id, exc)
        return _record(email_id, Outcome(EmailStatus.RETRYING, _describe(exc)), at)
    except Exception as exc:  # a bug or bad data in one message must not stop the others
        db.session.rollback()
        log.exception("mail: preparing message %r failed", email_id)
        return _record(email_id, Outcome(EmailStatus.RETRYING, _describe(exc)), at)
    return _record(email_id, Outcome(EmailStatus.SENT), at)


def _envelope(email: Email) -> list[str]:
    """Every address the message goes to: To, Cc and Bcc."""
    to = [part.strip() for part in email.recipients.split(",") if part.strip()]
    return to + list(email.context.get("cc") or []) + list(email.context.get("bcc") or [])


def _describe(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}"[:500]) or type(exc).__name__


def _record(email_id: int, outcome: Outcome, at: datetime | None = None) -> Outcome:
    """Store an attempt's outcome (retrying becomes failed once the retry window has passed);
    a final outcome goes on the customer's timeline. Commits."""
    now = at or now_utc()
    email = db.session.get_one(Email, email_id)
    email.attempts += 1
    email.last_attempt_at = now
    email.last_error = outcome.error
    status = outcome.status
    if status == EmailStatus.RETRYING:
        retry_at = now + backoff(email.attempts)
        if retry_at > email.created_at + retry_window():
            status = EmailStatus.FAILED
        else:
            email.next_attempt_at = retry_at
    email.status = status
    if status != EmailStatus.RETRYING:
        email.next_attempt_at = None
    if status == EmailStatus.SENT:
        email.sent_at = now
        if email.kind in EmailKind.SENSITIVE:
            email.body_text = None  # its sign-in link is the recipient's alone
    if status != EmailStatus.RETRYING:
        _on_timeline(email, status)
    db.session.commit()
    return Outcome(status, outcome.error)


def _on_timeline(email: Email, status: str) -> None:
    if email.customer_id is None:
        return
    invoice = email.invoice
    audit.record_activity(
        organization_id=email.organization_id,
        actor=audit.SYSTEM,
        activity_type=f"email.{status}",
        resource_type="email",
        resource_id=str(email.lago_id),
        resource_label=f"{email.kind.replace('_', ' ')}"
        + (f" {invoice.number}" if invoice is not None else ""),
        changes={
            "recipients": [None, email.recipients],
            "subject": [None, email.subject],
            **({"error": [None, email.last_error]} if email.last_error else {}),
        },
        customer_id=email.customer_id,
    )


def deliver_due(limit: int = 10) -> int:
    """Send the due messages, one leased batch; returns how many were attempted."""
    ids = claim_due(limit)
    for email_id in ids:
        deliver(email_id)
    return len(ids)


def send_test_email(organization: Organization, to: str, actor: audit.Actor) -> Outcome:
    """Send a test message now with the current settings (the console's button); recorded
    in the outbox. Commits."""
    if not valid_address(to.strip()):
        raise ValidationFailed({"to": ["invalid_email_format"]})
    email = _queue_one(_row(organization.id, EmailKind.TEST, [to.strip()]))
    email.next_attempt_at = now_utc() + timedelta(seconds=timeout_seconds() + 5)  # leased
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type="organization.test_email_sent",
        resource_type="organization",
        resource_id=str(organization.lago_id),
        resource_label=organization.name,
        changes={"recipients": [None, to.strip()]},
    )
    db.session.commit()
    return deliver(email.id)


# ---------------------------------------------------------------------------------------------
# Reading


def list_emails(
    organization: Organization,
    *,
    customer: Customer | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[Email]:
    """The latest messages of the organization or of one customer, newest first."""
    query = select(Email).where(Email.organization_id == organization.id)
    if customer is not None:
        query = query.where(Email.customer_id == customer.id)
    if status:
        query = query.where(Email.status == status)
    query = query.options(selectinload(Email.customer), selectinload(Email.invoice))
    return list(
        db.session.scalars(query.order_by(Email.created_at.desc(), Email.id.desc()).limit(limit))
    )
