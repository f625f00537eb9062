"""Lago's error JSON for every /api/v1 response: no HTML, no stack trace, ever."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify
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


def unexpected_error(exc: Exception) -> Response:
    db.session.rollback()
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
