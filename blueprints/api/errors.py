"""Lago's error JSON for every /api/v1 response: no HTML, no stack trace, ever."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import psycopg
from flask import Response, jsonify
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from billing.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from blueprints.api import bp
from extensions import db

log = logging.getLogger(__name__)


def error_response(status: int, error: str, **extra: Any) -> Response:
    response = jsonify({"status": status, "error": error, **extra})
    response.status_code = status
    return response


def validation_error(details: dict[str, Any]) -> Response:
    return error_response(
        422, "Unprocessable Entity", code="validation_errors", error_details=details
    )


def http_error(exc: HTTPException) -> Response:
    """Lago's shape for an HTTP error raised anywhere under /api/v1 (routing included)."""
    status = exc.code or 500
    if status == 401:
        response = error_response(401, "Unauthorized")
    elif status == 400:
        response = error_response(400, f"BadRequest: {exc.description}")
    elif status == 404:
        response = error_response(404, "Not Found", code="resource_not_found")
    elif status == 405:
        response = error_response(405, "Method Not Allowed", code="method_not_allowed")
    else:
        response = error_response(status, exc.name)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


#: SQLite errors that say the database cannot be used right now, not that a statement is wrong
SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open",
                      "disk i/o error", "database or disk is full")  # fmt: skip


def is_database_unavailable(exc: BaseException) -> bool:
    """The database is down, restarting, unreachable or busy beyond the wait: the request may
    succeed if retried, so the answer is a 503 rather than a 500. Raised by SQLAlchemy (wrapped)
    or by the driver itself (statements run on the DBAPI cursor, billing/services/driver.py)."""
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc).lower() for text in SQLITE_UNAVAILABLE)
    return False


def rollback_quietly() -> None:
    """Roll the failed request's transaction back; on a lost connection the rollback itself can
    fail, and the session is then discarded (its connection goes back to the pool, which
    replaces it: pool_pre_ping)."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the answer must still be the JSON error
        log.warning("rollback after a failed request failed; discarding the session")
        db.session.remove()


def database_unavailable(exc: BaseException) -> Response:
    """503 in Lago's error shape, while the database cannot answer; no stack trace."""
    rollback_quietly()
    log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
    response = error_response(503, "Service Unavailable", code="database_unavailable")
    response.headers["Retry-After"] = "1"
    return response


def unexpected_error(exc: Exception) -> Response:
    if is_database_unavailable(exc):
        return database_unavailable(exc)
    rollback_quietly()
    log.exception("unhandled error in the API")
    return error_response(500, "Internal Server Error")


@bp.errorhandler(ValidationFailed)
def on_validation_failed(exc: ValidationFailed) -> Response:
    db.session.rollback()
    return validation_error(exc.details)


@bp.errorhandler(Conflict)
def on_conflict(exc: Conflict) -> Response:
    db.session.rollback()
    return validation_error({exc.field: [exc.code]})


@bp.errorhandler(NotFound)
def on_not_found(exc: NotFound) -> Response:
    db.session.rollback()
    return error_response(404, "Not Found", code=exc.code)


@bp.errorhandler(NotAllowed)
def on_not_allowed(exc: NotAllowed) -> Response:
    db.session.rollback()
    return error_response(405, "Method Not Allowed", code=exc.code)
