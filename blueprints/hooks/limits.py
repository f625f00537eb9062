"""The rate limit of everything under /hooks/, per (organization, client address).

Registered with `before_app_request` on the path prefix rather than on one view, so that every
hook route, including ones added later in another module or blueprint (`/hooks/stripe`), is
counted before its view reads the body. The counter lives in the database (shared by every
worker) and is committed in its own short transaction, so a refused or failed request still
counts.
"""

from __future__ import annotations

from flask import Response, current_app, g, request
from flask.typing import ResponseReturnValue

from billing.services import rate_limits
from blueprints.api.errors import error_response
from blueprints.hooks import bp
from extensions import db, write_intent

PREFIX = "/hooks/"


def _sender_organization() -> str:
    """The organization the request says it is for (a header, or a route variable); the
    signature is only checked by the view, so this only separates the counters."""
    claimed = request.headers.get("X-Ledgerline-Organization", "").strip()
    if not claimed:
        for name, value in (request.view_args or {}).items():
            if "organization" in name:
                claimed = str(value)
    return claimed[:100] or "-"


@bp.before_app_request
def limit_hooks() -> ResponseReturnValue | None:
    if not request.path.startswith(PREFIX) or not current_app.config["RATE_LIMITS_ENABLED"]:
        return None
    limit = rate_limits.Limit.parse(current_app.config["RATE_LIMIT_HOOKS"])
    key = f"hooks:{_sender_organization()}:{request.remote_addr or '-'}"
    db.session.commit()  # nothing is pending yet; end any read so the write queues for its lock
    with write_intent():
        verdict = rate_limits.hit(key, limit)
        db.session.commit()
    g.hook_rate_limit = verdict
    if verdict.allowed:
        return None
    response = error_response(429, "Too Many Requests", code="too_many_requests")
    response.headers["Retry-After"] = str(verdict.reset_after)
    return response


@bp.after_app_request
def rate_limit_headers(response: Response) -> Response:
    """Every hook answer says how much of the window is left (Lago's cloud headers)."""
    verdict: rate_limits.Verdict | None = g.get("hook_rate_limit")
    if verdict is not None:
        response.headers["x-ratelimit-limit"] = str(verdict.limit)
        response.headers["x-ratelimit-remaining"] = str(verdict.remaining)
        response.headers["x-ratelimit-reset"] = str(verdict.reset_after)
    return response
