"""/login and /logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from billing.errors import ValidationFailed
from billing.services import agent_links, rate_limits
from billing.services.logins import LoginRefused, LoginThrottled, log_in
from blueprints.auth import bp
from blueprints.auth.forms import ForgotPasswordForm, LoginForm, NewPasswordForm
from extensions import db, login_manager


@login_manager.user_loader
def load_agent(agent_id: str):  # noqa: ANN201
    from billing.models import Agent

    agent = db.session.get(Agent, int(agent_id)) if agent_id.isdigit() else None
    return agent if agent is not None and agent.is_active else None


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect to another site after login."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("console.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Sign an agent in; repeated failures are slowed down per account and per address."""
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    error = None
    if form.validate_on_submit():
        email = form.email.data or ""
        retry_after = _login_rate_limited(email, request.remote_addr)
        if retry_after is not None:
            form.email.errors = [f"Too many sign-in attempts. Try again in {retry_after} seconds."]
            page = render_template("auth/login.html", form=form, error=None)
            return page, 429, {"Retry-After": str(retry_after)}
        try:
            agent = log_in(email, form.password.data or "", request.remote_addr)
        except LoginThrottled as exc:
            db.session.commit()
            error = f"Too many failed attempts. Try again in {exc.retry_after} seconds."
            status = 429
        except LoginRefused:
            db.session.commit()  # keep the failure count
            error = "Wrong e-mail or password."
            status = 401
        else:
            db.session.commit()
            login_user(agent)
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form, error=error), status


def _login_rate_limited(email: str, address: str | None, scope: str = "login") -> int | None:
    """Count this attempt per e-mail and per client address (RATE_LIMIT_LOGIN each); the
    seconds to wait when either is spent, else None. Committed at once: a refusal counts."""
    if not current_app.config["RATE_LIMITS_ENABLED"]:
        return None
    limit = rate_limits.Limit.parse(current_app.config["RATE_LIMIT_LOGIN"])
    keys = [rate_limits.scoped_key(scope, "email", email)]
    if address:
        keys.append(rate_limits.scoped_key(scope, "ip", address))
    verdict = rate_limits.hit_all(keys, limit)
    db.session.commit()
    return None if verdict.allowed else verdict.reset_after


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out (a POST with the CSRF token, so no other site can sign an agent out)."""
    logout_user()
    return redirect(url_for("auth.login"))


# --- agents by e-mail: password reset and invitations ------------------------------------------

#: the one answer to every reset request, so nobody learns whether an address is an agent's
RESET_SENT = (
    "If an active agent signs in with this address, we have sent it a link to choose a new "
    "password. The link works once, for one hour."
)


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password() -> ResponseReturnValue:
    """Ask for a reset link; the answer never says whether the address is an agent's."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        retry_after = _login_rate_limited(form.email.data or "", request.remote_addr, "reset")
        if retry_after is not None:
            form.email.errors = [f"Too many requests. Try again in {retry_after} seconds."]
            page = render_template("auth/forgot_password.html", form=form, sent=None)
            return page, 429, {"Retry-After": str(retry_after)}
        agent_links.request_password_reset(form.email.data or "")
        db.session.commit()
        return render_template("auth/forgot_password.html", form=form, sent=RESET_SENT)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/forgot_password.html", form=form, sent=None), status


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> ResponseReturnValue:
    """Choose a new password through a reset link (signed, one hour, single use)."""
    return _choose_password(token, "reset")


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> ResponseReturnValue:
    """An invited agent chooses a password (signed link, 7 days, single use)."""
    return _choose_password(token, "invitation")


def _choose_password(token: str, purpose: str) -> ResponseReturnValue:
    try:
        agent = agent_links.open_link(current_app.config["SECRET_KEY"], token, purpose)
    except agent_links.LinkInvalid as exc:
        db.session.rollback()
        return render_template(
            "auth/link_invalid.html", expired=exc.expired, purpose=purpose
        ), 410 if exc.expired else 404
    form = NewPasswordForm()
    error = None
    if form.validate_on_submit():
        if form.password.data != form.confirm.data:
            form.confirm.errors = ["The two passwords differ."]
        else:
            try:
                agent_links.set_password(agent, form.password.data or "", agent.email)
            except ValidationFailed:
                db.session.rollback()
                form.password.errors = ["Choose at least 8 characters."]
            else:
                db.session.commit()
                logout_user()
                flash("Your password is set. Sign in with it.", "success")
                return redirect(url_for("auth.login"))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "auth/choose_password.html", form=form, agent=agent, purpose=purpose, error=error
    ), status
