"""The support console: server-rendered pages and htmx fragments for agents."""

from flask import Blueprint, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

bp = Blueprint("console", __name__)


@bp.before_request
def require_login() -> ResponseReturnValue | None:
    """Every console route needs a signed-in agent; htmx requests are sent to login whole."""
    if current_user.is_authenticated:
        return None
    login_url = url_for("auth.login", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        return "", 401, {"HX-Redirect": login_url}
    return redirect(login_url)


from blueprints.console import (  # noqa: E402,F401
    add_ons,
    audit,
    catalog,
    coupons,
    credit_notes,
    customers,
    dashboard,
    finance,
    imports,
    invoices,
    mail,
    payments,
    portal_links,
    settings,
    subscriptions,
    taxes,
    wallets,
    webhooks,
)
