"""Organization settings (admins only): profile and billing defaults, API keys, agents."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from wtforms import BooleanField, PasswordField, StringField, TextAreaField
from wtforms.validators import Length

from billing.errors import Conflict, ValidationFailed
from billing.models import Agent, AgentRole, ApiKey
from billing.services import organizations as organization_service
from billing.services import settings as settings_service
from blueprints.console import bp
from blueprints.console.forms import (
    Select,
    currency_choices,
    locale_choices,
    timezone_choices,
)
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_agent,
    current_organization,
    is_htmx,
    owned_or_404,
    redirect_htmx,
    render_htmx,
    requires,
)
from blueprints.console.messages import field_message
from extensions import db

#: the served logo can never run script, even when opened on its own
LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'"
ROLES = {
    AgentRole.ADMIN.value: "Admin — everything, including settings, API keys and agents",
    AgentRole.SUPPORT.value: "Support — customers and billing work",
    AgentRole.VIEWER.value: "Viewer — read-only",
}
ONE_ADMIN = "The organization needs at least one active admin: make another agent admin first."
SETTINGS_MESSAGES = {
    ("name", "value_is_mandatory"): "The organization needs a name.",
    ("name", "value_already_exist"): "Another organization already uses this name.",
    ("default_currency", "currency_is_invalid"): "Choose a currency from the list.",
    ("invoice_grace_period", "value_is_invalid"): "Enter a whole number of days.",
    ("net_payment_term", "value_is_invalid"): "Enter a whole number of days.",
    ("portal_embed_origins", "invalid_origin"): (
        "Each line must be an origin such as https://app.example.com or "
        "http://localhost:3000 (https, or http on localhost only; no path)."
    ),
    ("portal_embed_origins", "invalid_count"): (
        f"At most {settings_service.ORIGINS_MAX} origins can embed the portal."
    ),
    ("brand_color", "value_is_invalid"): "Enter a color as #rrggbb, for example #2f5bd3.",
    ("logo", "file_too_large"): "The logo can be at most 512 KB.",
    ("logo", "unsupported_file_type"): "The logo must be a PNG, JPEG or SVG image.",
    ("logo", "value_is_invalid"): "The logo must be a PNG, JPEG or SVG image.",
    ("email", "invalid_email_format"): "Enter a valid e-mail address.",
    ("email", "value_already_exist"): "An agent already signs in with this e-mail address.",
    ("password", "value_is_too_short"): "The initial password needs at least 8 characters.",
    ("role", "value_is_invalid"): "Choose a role from the list.",
    ("role", "cannot_change_own_role"): "You cannot change your own role; ask another admin.",
    ("role", "last_admin"): ONE_ADMIN,
    ("is_active", "cannot_deactivate_yourself"): "You cannot deactivate yourself.",
    ("is_active", "last_admin"): ONE_ADMIN,
}


def settings_message(field: str, code: str) -> str:
    return SETTINGS_MESSAGES.get((field, code)) or field_message(field, code)


def error_messages(details: dict[str, Any]) -> list[str]:
    return [settings_message(key, code) for key, codes in details.items() for code in codes]


# --- organization profile and billing defaults -----------------------------------------------


class SettingsForm(FlaskForm):
    """Rendering and CSRF only: the service validates every value (one set of rules)."""

    name = StringField("Organization name")
    timezone = Select("Time zone", timezone_choices()[1:])
    default_currency = Select("Default currency", currency_choices("None"))
    document_locale = Select("Document language", locale_choices()[1:])
    invoice_grace_period = StringField("Invoice grace period (days)")
    net_payment_term = StringField("Net payment term (days)")
    finalize_zero_amount_invoice = Select(
        "Zero-amount invoices",
        [("finalize", "Finalize them"), ("skip", "Skip them (closed, not numbered)")],
    )
    portal_embed_origins = TextAreaField("Sites allowed to embed the portal")
    brand_color = StringField("Brand color")
    logo = FileField("Logo")
    remove_logo = BooleanField("Remove the current logo")

    VALUES = ("name", "timezone", "default_currency", "document_locale", "invoice_grace_period",
              "net_payment_term", "portal_embed_origins", "brand_color",
              "finalize_zero_amount_invoice")  # fmt: skip


def _settings_values(form: SettingsForm) -> dict[str, Any]:
    values: dict[str, Any] = {name: form[name].data for name in SettingsForm.VALUES}
    upload = form.logo.data
    if isinstance(upload, FileStorage) and upload.filename:
        # One byte more than allowed is enough to refuse a file that is too large.
        data = upload.stream.read(settings_service.LOGO_MAX_BYTES + 1)
        values["logo"] = settings_service.LogoUpload(data, upload.filename)
    elif form.remove_logo.data:
        values["logo"] = None
    return values


def _render_settings(form: SettingsForm, status: int, unplaced: list[str] | None = None) -> Any:
    organization = current_organization()
    logo_version = hashlib.sha256(organization.logo).hexdigest()[:12] if organization.logo else None
    return render_htmx(
        "console/settings.html",
        "console/_settings_form.html",
        status=status,
        form=form,
        organization=organization,
        logo_version=logo_version,
        unplaced=unplaced or [],
        section="organization",
    )


@bp.route("/settings", methods=["GET", "POST"])
@requires("admin")
def settings() -> ResponseReturnValue:
    """The organization's profile, billing defaults, portal embedding and branding."""
    organization = current_organization()
    if request.method == "GET":
        data = {name: getattr(organization, name) for name in SettingsForm.VALUES}
        data["portal_embed_origins"] = "\n".join(organization.portal_embed_origins or [])
        data["default_currency"] = organization.default_currency or ""
        data["finalize_zero_amount_invoice"] = (
            "finalize" if organization.finalize_zero_amount_invoice else "skip"
        )
        return _render_settings(SettingsForm(data=data), 200)
    form = SettingsForm()
    if not form.validate():
        return _render_settings(form, 422)
    values = _settings_values(form)
    try:
        changes = settings_service.update_organization_settings(organization, values, agent_actor())
    except ValidationFailed as exc:
        db.session.rollback()
        unplaced = apply_errors(form, exc.details, settings_message)
        if "portal_embed_origins" in exc.details:
            _origins, invalid = settings_service.parse_origins(
                str(values.get("portal_embed_origins") or "").splitlines()
            )
            if invalid:
                field = form.portal_embed_origins
                field.errors = [*field.errors, "Not an origin: " + ", ".join(invalid)]
        return _render_settings(form, 422, unplaced)
    db.session.commit()
    if changes:
        flash(
            f"Settings saved: {', '.join(name.replace('_', ' ') for name in changes)}.", "success"
        )
    else:
        flash("Nothing changed.", "success")
    return redirect_htmx(url_for("console.settings"))


@bp.get("/settings/logo")
@requires("admin")
def settings_logo() -> ResponseReturnValue:
    """The organization's logo with its own type; an SVG can never run script from here."""
    organization = current_organization()
    if not organization.logo or not organization.logo_content_type:
        abort(404)
    content_type = organization.logo_content_type
    extension = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}[content_type]
    # content_type, not mimetype: an SVG declares its own encoding; no charset is added.
    response = Response(organization.logo, content_type=content_type)
    response.headers["Content-Security-Policy"] = LOGO_CSP
    # An SVG opened on its own is downloaded, not rendered as a document; <img> still shows it.
    disposition = "attachment" if content_type == "image/svg+xml" else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="logo.{extension}"'
    response.headers["Cache-Control"] = "private, no-cache"
    response.set_etag(hashlib.sha256(organization.logo).hexdigest())
    return response.make_conditional(request)


# --- API keys --------------------------------------------------------------------------------


class ApiKeyForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=255)])


def api_key_or_404(lago_id: uuid.UUID) -> ApiKey:
    return owned_or_404(ApiKey, lago_id)


def _api_keys() -> list[ApiKey]:
    """Live keys first, newest first."""
    return list(
        db.session.scalars(
            select(ApiKey)
            .where(ApiKey.organization_id == current_organization().id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )


def _render_api_keys(form: ApiKeyForm, status: int = 200, notice: str | None = None) -> Any:
    return render_htmx(
        "console/settings_api_keys.html",
        "console/_settings_api_keys_table.html",
        status=status,
        form=form,
        api_keys=_api_keys(),
        notice=notice,
        section="api_keys",
    )


@bp.get("/settings/api-keys")
@requires("admin")
def settings_api_keys() -> ResponseReturnValue:
    """The organization's API keys: name, prefix, when created, last used and revoked."""
    return _render_api_keys(ApiKeyForm())


@bp.post("/settings/api-keys")
@requires("admin")
def settings_create_api_key() -> ResponseReturnValue:
    """Create a key and show it once; only its prefix and hash are kept."""
    form = ApiKeyForm()
    if not form.validate():
        return _render_api_keys(form, 422)
    name = (form.name.data or "").strip() or "API key"
    api_key, raw_key = organization_service.create_api_key(
        current_organization(), agent_actor(), name=name
    )
    db.session.commit()
    body = render_template(
        "console/settings_api_key_created.html",
        api_key=api_key,
        raw_key=raw_key,
        section="api_keys",
    )
    # Never cached: going back or reloading must not show the key again.
    return body, 201, {"Cache-Control": "no-store"}


@bp.post("/settings/api-keys/<uuid:lago_id>/revoke")
@requires("admin")
def settings_revoke_api_key(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Revoke a key at once: every request with it gets 401 from now on."""
    api_key = api_key_or_404(lago_id)
    if api_key.revoked_at is None:
        organization_service.revoke_api_key(api_key, agent_actor())
        db.session.commit()
    notice = f"Key “{api_key.name}” ({api_key.prefix}…) is revoked."
    if is_htmx():
        return _render_api_keys(ApiKeyForm(), notice=notice)
    flash(notice, "success")
    return redirect(url_for("console.settings_api_keys"))


# --- agents ----------------------------------------------------------------------------------


class AgentForm(FlaskForm):
    email = StringField("E-mail", validators=[Length(max=255)])
    name = StringField("Name", validators=[Length(max=255)])
    role = Select("Role", [("", "—"), *ROLES.items()])
    password = PasswordField("Initial password", validators=[Length(max=200)])


def agent_or_404(lago_id: uuid.UUID) -> Agent:
    return owned_or_404(Agent, lago_id)


def _agents() -> list[Agent]:
    """Active agents first, then by e-mail."""
    return list(
        db.session.scalars(
            select(Agent)
            .where(Agent.organization_id == current_organization().id)
            .order_by(Agent.is_active.desc(), Agent.email)
        )
    )


def _render_agents(
    form: AgentForm,
    status: int = 200,
    *,
    partial: str = "console/_settings_agents_table.html",
    notice: str | None = None,
    table_errors: list[str] | None = None,
    form_errors: list[str] | None = None,
) -> Any:
    return render_htmx(
        "console/settings_agents.html",
        partial,
        status=status,
        form=form,
        agents=_agents(),
        roles=ROLES,
        notice=notice,
        table_errors=table_errors or [],
        form_errors=form_errors or [],
        section="agents",
    )


@bp.get("/settings/agents")
@requires("admin")
def settings_agents() -> ResponseReturnValue:
    """The organization's agents with their role and access; add, change role, deactivate."""
    return _render_agents(AgentForm(data={"role": AgentRole.SUPPORT.value}))


@bp.post("/settings/agents")
@requires("admin")
def settings_create_agent() -> ResponseReturnValue:
    """Add an agent who signs in with their e-mail and the initial password."""
    form = AgentForm()
    partial = "console/_settings_agent_form.html"
    if not form.validate():
        return _render_agents(form, 422, partial=partial)
    try:
        agent = organization_service.create_agent(
            current_organization(),
            form.email.data or "",
            form.role.data or "",
            form.password.data or "",
            agent_actor(),
            name=(form.name.data or "").strip() or None,
        )
    except ValidationFailed as exc:
        db.session.rollback()
        return _render_agents(
            form,
            422,
            partial=partial,
            form_errors=apply_errors(form, exc.details, settings_message),
        )
    except Conflict as exc:
        db.session.rollback()
        details = {exc.field: [exc.code]}
        return _render_agents(
            form, 422, partial=partial, form_errors=apply_errors(form, details, settings_message)
        )
    db.session.commit()
    flash(f"Agent {agent.email} added as {agent.role.value}.", "success")
    return redirect_htmx(url_for("console.settings_agents"))


def _update_agent(lago_id: uuid.UUID, **change: Any) -> ResponseReturnValue:
    """Apply a role or access change; answer with the table (htmx) or a redirect."""
    agent = agent_or_404(lago_id)
    try:
        changes = settings_service.update_agent(
            current_organization(), agent, agent_actor(), acting_agent=current_agent(), **change
        )
    except ValidationFailed as exc:
        db.session.rollback()
        errors = error_messages(exc.details)
        if is_htmx():
            return _render_agents(AgentForm(), 422, table_errors=errors)
        for message in errors:
            flash(message, "error")
        return redirect(url_for("console.settings_agents"))
    db.session.commit()
    if "is_active" in changes:
        notice = f"{agent.email} is {'reactivated' if agent.is_active else 'deactivated'}."
    elif changes:
        notice = f"{agent.email} is now {agent.role.value}."
    else:
        notice = f"{agent.email} is unchanged."
    if is_htmx():
        return _render_agents(AgentForm(), notice=notice)
    flash(notice, "success")
    return redirect(url_for("console.settings_agents"))


@bp.post("/settings/agents/<uuid:lago_id>/role")
@requires("admin")
def settings_agent_role(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Change an agent's role (never your own; an active admin always remains)."""
    return _update_agent(lago_id, role=request.form.get("role", ""))


@bp.post("/settings/agents/<uuid:lago_id>/<any(deactivate, reactivate):action>")
@requires("admin")
def settings_agent_access(lago_id: uuid.UUID, action: str) -> ResponseReturnValue:
    """Deactivate (signed out at once, cannot sign in) or reactivate an agent."""
    return _update_agent(lago_id, is_active=action == "reactivate")
