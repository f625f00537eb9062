"""Parsing of API request bodies and query strings into plain values for the services."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import NotFound as werkzeug_NotFound

from billing.errors import NotFound, ValidationFailed
from billing.services.customer_input import ACCOUNT_TYPES, CUSTOMER_TYPES
from billing.services.customers import CustomerFilters

_METADATA_PARAM = re.compile(r"^metadata\[(.+)\]$")


def json_body() -> Any:
    """The request's JSON document; 400 for an empty or malformed body, or one with a NUL
    character (PostgreSQL cannot store one in text: it was a 500 there)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("request body is empty")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON") from None
    # A NUL in a decoded string comes from a `\u0000` escape (JSON forbids a raw one in a
    # string), or from a body in UTF-16 or UTF-32: only then are the strings walked (a batch of
    # events has a thousand of them).
    if (b"\\u0000" in raw or b"\x00" in raw) and _has_nul(body):
        raise BadRequest("request body contains a NUL character")
    return body


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def refuse_nul_characters() -> None:
    """A NUL character in a path or query parameter: 404 or 422 before any lookup, as
    PostgreSQL cannot compare text with one (a 500 there). Runs after authentication."""
    if any("\x00" in str(value) for value in (request.view_args or {}).values()):
        raise werkzeug_NotFound()
    bad = sorted({name for name, value in request.args.items(multi=True) if "\x00" in value})
    if bad:
        raise ValidationFailed({name: ["value_is_invalid"] for name in bad})


def root_object(root: str) -> dict[str, Any]:
    """`body[root]` as an object, or Lago's 400 for a missing root key."""
    body = json_body()
    value = body.get(root) if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise BadRequest(f"param is missing or the value is empty or invalid: {root}")
    return value


#: the last page a request may ask for: beyond it the offset would not fit a database integer
#: (a page past the end is simply empty, so no caller loses anything)
MAX_PAGE = 2**31 - 1


def pagination() -> tuple[int, int]:
    """`page` (1-based) and `per_page` (default 100), forgiving like Lago's."""
    return (
        min(_positive_int(request.args.get("page"), 1), MAX_PAGE),
        min(
            _positive_int(request.args.get("per_page"), 100), current_app.config["API_PER_PAGE_MAX"]
        ),
    )


def _positive_int(raw: str | None, default: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    return value if value > 0 else default


def _bool_param(name: str, errors: dict[str, list[str]]) -> bool | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    errors[name] = ["value_is_invalid"]
    return None


def list_param(name: str) -> list[str]:
    """`name[]=a&name[]=b`; a plain `name=a,b` is accepted too."""
    values = request.args.getlist(f"{name}[]") or request.args.getlist(name)
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def metadata_filters() -> dict[str, str]:
    """`metadata[<key>]=<value>` query parameters as {key: value} (an empty value: absent)."""
    return {
        match.group(1): value
        for name, value in request.args.items()
        if (match := _METADATA_PARAM.match(name))
    }


def customer_filters() -> CustomerFilters:
    """The filters of `GET /customers` (lago-api.md §3.4)."""
    errors: dict[str, list[str]] = {}
    customer_type = request.args.get("customer_type") or None
    if customer_type is not None and customer_type not in CUSTOMER_TYPES:
        errors["customer_type"] = ["value_is_invalid"]
    account_types = list_param("account_type")
    if any(a not in ACCOUNT_TYPES for a in account_types):
        errors["account_type"] = ["value_is_invalid"]
    filters = CustomerFilters(
        search_term=request.args.get("search_term") or None,
        external_id=request.args.get("external_id") or None,
        customer_type=customer_type,
        has_customer_type=_bool_param("has_customer_type", errors),
        account_types=account_types,
        currencies=[c.upper() for c in list_param("currencies")],
        countries=[c.upper() for c in list_param("countries")],
        states=list_param("states"),
        zipcodes=list_param("zipcodes"),
        has_tax_identification_number=_bool_param("has_tax_identification_number", errors),
        metadata=metadata_filters(),
    )
    if errors:
        raise ValidationFailed(errors)
    if list_param("billing_entity_codes"):
        # Billing entities are not built; any code names one that does not exist.
        raise NotFound("billing_entity")
    return filters
