"""The customer portal: `/portal/<token>/…`, for end customers, often inside the seller's iframe.

Authentication is the signed token in the path, checked once per request here. Portal responses
set no cookie at all (the session is replaced by a null one, Flask-WTF's CSRF is off: writes
carry a signed form nonce instead), carry their own CSP whose `frame-ancestors` are the
organization's allowed origins, and are translated into the visit's language.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, render_template, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.typing import ResponseReturnValue
from flask_babel import refresh
from werkzeug.wrappers import Request

from billing.models import Organization
from billing.pdf import babel_locale
from billing.services import portal as portal_service
from extensions import db, write_intent

bp = Blueprint("portal", __name__, url_prefix="/portal/<token>")

#: the console's policy with the embedding origins in `frame-ancestors`
PORTAL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
)


@bp.record_once
def _install(state: Any) -> None:
    state.app.session_interface = NoPortalSessionInterface()


class NoPortalSessionInterface(SecureCookieSessionInterface):
    """The usual signed-cookie session, except that portal requests get a null session:
    nothing can be stored in it, so no cookie is ever set (not even the refresh of a
    signed-in agent's session cookie in the same browser). API requests too: they authenticate
    with their key, and reading and re-signing a cookie is work an event's ingestion is timed by.
    """

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith(("/portal/", "/api/")):
            return self.make_null_session(app)
        return super().open_session(app, request)


@bp.url_value_preprocessor
def _pull_token(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.portal_token = (values or {}).pop("token", "")


@bp.url_defaults
def _add_token(endpoint: str, values: dict[str, Any]) -> None:
    """Every portal URL carries the link's token, and the chosen language if one was chosen."""
    values.setdefault("token", g.get("portal_token", ""))
    if g.get("portal_lang_param") and "lang" not in values:
        values["lang"] = g.portal_lang_param


@bp.before_request
def _open_link() -> ResponseReturnValue | None:
    requested = request.args.get("lang")
    g.portal_organization = None
    try:
        access = portal_service.open_link(
            current_app.secret_key,  # type: ignore[arg-type]
            g.portal_token,
            current_app.config["PORTAL_TOKEN_MAX_AGE"],
        )
    except portal_service.PortalLinkInvalid as exc:
        # A genuine but dead link: the organization's framing and the customer's language.
        organization = exc.customer.organization if exc.customer else None
        g.portal_organization = organization
        if exc.customer is not None:
            use_locale(portal_service.portal_locale(exc.customer, requested), organization)
        else:
            use_locale(requested if requested in portal_service.LOCALES else None, None)
        return render_template("portal/expired.html"), 403
    g.portal = access
    g.portal_organization = access.organization
    if requested in portal_service.LOCALES:
        g.portal_lang_param = requested
    use_locale(portal_service.portal_locale(access.customer, requested), access.organization)
    _log_visit(access)
    return None


def use_locale(locale: str | None, organization: Organization | None) -> None:
    """Translate the rest of the request into `locale` (None: the organization's, English)."""
    if locale is None:
        locale = (organization.document_locale if organization else None) or "en"
        if locale not in portal_service.LOCALES:
            locale = "en"
    g.portal_locale = locale
    refresh()  # Flask-Babel asks visit_locale() again (the details form may change it)


def visit_locale() -> str | None:
    """Flask-Babel's locale selector: the portal visit's language once its link is checked
    (pt-BR → pt_BR), None (the default, English) on every other page."""
    locale = g.get("portal_locale")
    return babel_locale(locale) if locale else None


def _log_visit(access: portal_service.PortalAccess) -> None:
    """One timeline entry per link per 30 minutes, written in its own short transaction."""
    if request.endpoint in ("portal.theme", "portal.logo"):
        return
    if portal_service.visit_logged_recently(access):
        return
    db.session.rollback()  # end the read-only transaction; the write takes SQLite's lock first
    with write_intent():
        if portal_service.record_visit(
            access, request.remote_addr, request.headers.get("User-Agent")
        ):
            db.session.commit()
        else:
            db.session.rollback()


def frame_ancestors(organization: Organization | None) -> str:
    origins = list(organization.portal_embed_origins or []) if organization else []
    return " ".join(origins) if origins else "'none'"


@bp.after_request
def _portal_headers(response: Response) -> Response:
    """Set before the app-wide security headers, which keep what is already there."""
    organization = g.get("portal_organization")
    response.headers["Content-Security-Policy"] = PORTAL_CSP.format(
        ancestors=frame_ancestors(organization)
    )
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers.pop("Set-Cookie", None)
    return response


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> ResponseReturnValue:
    return render_template("portal/error.html", code=404), 404


@bp.errorhandler(400)
def _bad_request(_exc: Exception) -> ResponseReturnValue:
    return render_template("portal/error.html", code=400), 400


@bp.errorhandler(405)
def _not_allowed(_exc: Exception) -> ResponseReturnValue:
    return render_template("portal/error.html", code=405), 405


from blueprints.portal import views  # noqa: E402,F401
