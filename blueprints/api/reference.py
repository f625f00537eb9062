"""The API's own description: `GET /api/v1/openapi.json` and the reference page
`GET /api/v1/docs`, rendered on the server from the same document (no script, no CDN)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from flask import current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup, escape

from blueprints.api import bp
from blueprints.api.openapi import TAGS, build_spec

#: the endpoints that answer without an API key
PUBLIC_ENDPOINTS = frozenset({"api.openapi_json", "api.api_docs"})
_METHOD_ORDER = ("get", "post", "put", "patch", "delete")
#: how deep nested objects are unfolded on the page
_MAX_DEPTH = 4


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    """The OpenAPI 3.1 description, with this server as its server URL."""
    return jsonify(build_spec(request.host_url))


@bp.get("/docs")
def api_docs() -> ResponseReturnValue:
    """The API reference: operations grouped by tag, with parameters, schemas and examples."""
    # the page is the same for every request of this app (about 600 kB): rendered once
    page = current_app.extensions.get("api_docs_page")
    if page is None:
        page = render_template("api/docs.html", code_spans=code_spans, **_reference())
        current_app.extensions["api_docs_page"] = page
    return page


def code_spans(text: str) -> Markup:
    """The description's `backquoted` parts as <code>, everything escaped."""
    parts = str(escape(text)).split("`")
    return Markup(  # noqa: S704  (every part was escaped above)
        "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))
    )


@dataclass(frozen=True)
class Field:
    depth: int
    name: str
    type: str
    required: bool
    description: str
    #: the component schema the field's type names, if any (linked on the page)
    link: str = ""


@dataclass(frozen=True)
class ResponseDoc:
    status: str
    description: str
    media: str
    fields: list[Field]
    example: str | None


@dataclass(frozen=True)
class OperationDoc:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    public: bool
    parameters: list[dict[str, Any]]
    body_fields: list[Field]
    body_required: bool
    body_example: str | None
    responses: list[ResponseDoc]


@cache
def _reference() -> dict[str, Any]:
    """The page's data, computed once: the description does not change while running."""
    spec = build_spec()
    components = spec["components"]
    groups: dict[str, list[OperationDoc]] = {name: [] for name, _ in TAGS}
    for path, methods in spec["paths"].items():
        for method in sorted(methods, key=_METHOD_ORDER.index):
            op = methods[method]
            groups[op["tags"][0]].append(_operation_doc(path, method, op, components))
    return {
        "info": spec["info"],
        "tags": [(name, text, groups[name]) for name, text in TAGS if groups[name]],
        "schemas": [
            (name, _fields(schema, components))
            for name, schema in components["schemas"].items()
            if not name.startswith("Error")
        ],
    }


def _operation_doc(
    path: str, method: str, op: dict[str, Any], components: dict[str, Any]
) -> OperationDoc:
    body = op.get("requestBody")
    body_schema = body["content"]["application/json"]["schema"] if body else None
    responses = []
    for status, response in op["responses"].items():
        if "$ref" in response:
            response = components["responses"][response["$ref"].rsplit("/", 1)[1]]
        media, content = next(iter(response.get("content", {"": {}}).items()))
        schema = content.get("schema")
        example = content.get("example")
        responses.append(
            ResponseDoc(
                status=status,
                description=response["description"],
                media=media,
                # error bodies are described once, at the top of the page
                fields=(
                    _fields(schema, components)
                    if media == "application/json" and status.startswith("2")
                    else []
                ),
                example=json.dumps(example, indent=2) if example is not None else None,
            )
        )
    return OperationDoc(
        anchor=op["operationId"],
        method=method.upper(),
        path=path,
        summary=op["summary"],
        description=op.get("description", ""),
        public=op.get("security") == [],
        parameters=[
            {
                "name": p["name"],
                "in": p["in"],
                "type": _type_text(p["schema"]),
                "required": p.get("required", False),
                "description": p.get("description", ""),
            }
            for p in op.get("parameters", [])
        ],
        body_fields=_fields(body_schema, components) if body_schema else [],
        body_required=bool(body and body.get("required")),
        body_example=(
            json.dumps(body_schema["example"], indent=2)
            if body_schema and "example" in body_schema
            else None
        ),
        responses=responses,
    )


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The schema behind a `$ref` (or a nullable `anyOf`), and the component's name if any."""
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return components["schemas"][name], name
    return schema, ""


def _type_text(schema: dict[str, Any]) -> str:
    nullable = False
    if "anyOf" in schema:
        nullable = any(s.get("type") == "null" for s in schema["anyOf"])
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    if "$ref" in schema:
        text = schema["$ref"].rsplit("/", 1)[1]
    else:
        kind = schema.get("type", "any")
        kinds = [k for k in kind if k != "null"] if isinstance(kind, list) else [kind]
        nullable = nullable or (isinstance(kind, list) and "null" in kind)
        if kinds == ["array"]:
            text = f"array of {_type_text(schema.get('items', {}))}"
        else:
            text = " | ".join(kinds)
            if "format" in schema:
                text += f" ({schema['format']})"
        if "enum" in schema:
            text += ": " + ", ".join(str(v) for v in schema["enum"] if v is not None)
    return f"{text} | null" if nullable else text


def _component_name(schema: dict[str, Any]) -> str:
    """The component a field's type names (itself, its non-null variant or its items)."""
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    if "items" in schema:
        schema = schema["items"]
    return schema["$ref"].rsplit("/", 1)[1] if "$ref" in schema else ""


def _fields(
    schema: dict[str, Any] | None, components: dict[str, Any], depth: int = 0
) -> list[Field]:
    """The schema's properties as rows; inline objects are unfolded below their field, named
    components are linked to their own table."""
    if schema is None or depth > _MAX_DEPTH:
        return []
    if depth == 0:
        schema, _ = _resolve(schema, components)
    if schema.get("type") == "array":
        return _fields(schema.get("items"), components, depth)
    rows: list[Field] = []
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    # a root-key wrapper (`{"customer": {...}}`) shows its object right below it
    wrapper = depth == 0 and len(properties) == 1
    for key, prop in properties.items():
        link = _component_name(prop)
        rows.append(
            Field(depth, key, _type_text(prop), key in required, prop.get("description", ""), link)
        )
        if link and wrapper:
            rows.extend(_fields(components["schemas"][link], components, depth + 1))
        if link:
            continue
        inner = prop.get("items", prop) if prop.get("type") == "array" else prop
        if "anyOf" in inner:
            inner = next(s for s in inner["anyOf"] if s.get("type") != "null")
        if inner.get("properties"):
            rows.extend(_fields(inner, components, depth + 1))
    return rows
