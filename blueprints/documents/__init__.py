"""/documents/<token>: stored PDFs behind signed, expiring links (Lago's `file_url`), for
anyone holding the link: no session, no API key, so no CSRF either (GET only)."""

from flask import Blueprint

bp = Blueprint("documents", __name__, url_prefix="/documents")

from blueprints.documents import views  # noqa: E402,F401  (registers the routes)
