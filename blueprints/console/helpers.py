"""Shared view helpers of the console: htmx rendering, permissions, loaders."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from flask import abort, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from billing.errors import NotAllowed, NotFound, ValidationFailed
from billing.models import Agent, Customer, Organization
from billing.services import audit
from extensions import db

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M")


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def redirect_htmx(location: str) -> ResponseReturnValue:
    """A redirect that htmx follows as a full navigation (headers and menus change too)."""
    if is_htmx():
        return "", 204, {"HX-Redirect": location}
    return redirect(location)


def render_htmx(
    page_template: str, partial_template: str, status: int = 200, **context: Any
) -> tuple[str, int]:
    """The whole page, or only its partial for htmx requests (the partial owns its root id)."""
    htmx_fragment = is_htmx() and not request.headers.get("HX-Boosted")
    return render_template(partial_template if htmx_fragment else page_template, **context), status


def current_agent() -> Agent:
    return current_user  # type: ignore[return-value]


def current_organization() -> Organization:
    return current_agent().organization


def agent_actor() -> audit.Actor:
    agent = current_agent()
    return audit.Actor(type="agent", source="console", id=str(agent.lago_id), label=agent.email)


def requires(permission: str) -> Callable[[F], F]:
    """Refuse the view with 403 unless the agent has `permission` (`write` or `admin`).

    The permission is also kept on the view function, so the route-inventory test can check
    that every state-changing route declares one.
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_agent().can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def owned_or_404(model: type[M], lago_id: uuid.UUID, *, live: bool = False) -> M:
    """The current organization's record of `model` with this id; 404 otherwise (another
    organization's records do not exist for this agent), and with `live`, when it is
    soft-deleted."""
    record = db.session.scalar(
        db.select(model).where(
            model.lago_id == lago_id,  # type: ignore[attr-defined]
            model.organization_id == current_organization().id,  # type: ignore[attr-defined]
        )
    )
    if record is None or (live and record.deleted_at is not None):  # type: ignore[attr-defined]
        abort(404)
    return record


def customer_or_404(lago_id: uuid.UUID, *, include_deleted: bool = True) -> Customer:
    """The current organization's customer with this id (deleted ones stay reachable)."""
    customer = owned_or_404(Customer, lago_id)
    if not include_deleted and customer.deleted_at is not None:
        abort(404)
    return customer


def date_arg(raw: str | None) -> date | None:
    """A `YYYY-MM-DD` query argument; anything else counts as absent (filters never error)."""
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def int_arg(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def apply_errors(
    form: Any, details: dict[str, Any], message: Callable[[str, str], str]
) -> list[str]:
    """Put the service's errors next to their form fields (as `message(field, code)`); return
    the messages of errors that have no field."""
    unplaced = []
    for key, codes in details.items():
        messages = [message(key, code) for code in codes]
        target = getattr(form, key, None)
        if target is not None and hasattr(target, "errors"):
            target.errors = list(target.errors) + messages
        else:
            unplaced += messages
    return unplaced


def act(
    change: Callable[[], object],
    success: Callable[[], str],
    done: Callable[[str, str], ResponseReturnValue],
    refusal: Callable[[Any], str],
) -> ResponseReturnValue:
    """Call a service and commit, then show `done("success", success())`; a refusal
    (NotAllowed, ValidationFailed, NotFound) is rolled back and shown as
    `done("error", refusal(exc))` instead: nothing changed."""
    try:
        change()
    except (NotAllowed, ValidationFailed, NotFound) as exc:
        db.session.rollback()
        return done("error", refusal(exc))
    db.session.commit()
    return done("success", success())
