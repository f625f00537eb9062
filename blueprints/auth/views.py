"""/login and /logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

from billing.services import rate_limits
from billing.services.logins import LoginRefused, LoginThrottled, log_in
from blueprints.auth import bp
from blueprints.auth.forms import LoginForm
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


def _login_rate_limited(email: str, address: str | None) -> int | None:
    """Count this attempt per e-mail and per client address (RATE_LIMIT_LOGIN each); the
    seconds to wait when either is spent, else None. Committed at once: a refusal counts."""
    if not current_app.config["RATE_LIMITS_ENABLED"]:
        return None
    limit = rate_limits.Limit.parse(current_app.config["RATE_LIMIT_LOGIN"])
    keys = [rate_limits.scoped_key("login", "email", email)]
    if address:
        keys.append(rate_limits.scoped_key("login", "ip", address))
    verdict = rate_limits.hit_all(keys, limit)
    db.session.commit()
    return None if verdict.allowed else verdict.reset_after


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out (a POST with the CSRF token, so no other site can sign an agent out)."""
    logout_user()
    return redirect(url_for("auth.login"))
