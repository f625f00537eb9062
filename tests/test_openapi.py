"""The OpenAPI description describes exactly the routes the app serves, and both it and its
reference page answer without an API key (tests/test_api_fuzz.py checks the answers)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from blueprints.api.openapi import OPERATIONS, build_spec

_RULE_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
_IGNORED_METHODS = {"HEAD", "OPTIONS"}


def served_operations(app: Any) -> set[tuple[str, str]]:
    """(METHOD, path) of every route under /api/v1 and /hooks, in OpenAPI's path syntax."""
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/v1/", "/hooks/")):
            path = _RULE_PARAM.sub(r"{\1}", rule.rule)
            served |= {(method, path) for method in rule.methods - _IGNORED_METHODS}
    return served


def described_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item}


def test_every_served_route_is_described_and_every_described_one_is_served(app):
    served = served_operations(app)
    described = described_operations(build_spec())

    assert sorted(served - described) == [], "routes missing from blueprints/api/openapi.py"
    assert sorted(described - served) == [], "described operations the app does not serve"


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def test_the_description_is_openapi_3_1_with_every_reference_defined():
    spec = build_spec()

    assert spec["openapi"] == "3.1.0"
    for target in _refs(spec):
        section, name = target.removeprefix("#/components/").split("/")
        assert name in spec["components"][section], target
    operation_ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    schemathesis = pytest.importorskip("schemathesis")
    loaded = schemathesis.openapi.from_dict(spec)
    assert len(list(loaded.get_all_operations())) == len(operation_ids)


def test_each_operation_documents_bearer_auth_and_lago_errors():
    spec = build_spec()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for op in OPERATIONS:
        responses = spec["paths"][f"/api/v1{op.path}"][op.method]["responses"]
        if op.public:
            assert "401" not in responses, op.path
        else:
            assert responses["401"] == {"$ref": "#/components/responses/Unauthorized"}, op.path
        if "{" in op.path:
            assert "404" in responses, op.path
        if op.body is not None:
            assert "422" in responses, op.path


def test_openapi_json_is_served_without_a_key(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"] == "3.1.0"
    assert spec["servers"] == [{"url": "http://localhost/"}]
    assert "/api/v1/customers" in spec["paths"]


def test_the_reference_page_lists_every_operation_without_a_key_or_a_script(client):
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<script" not in page  # the CSP allows no inline script, and none is needed
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    for op in OPERATIONS:
        assert f"/api/v1{op.path}</code>" in page, op.path
    # the request body of an upsert, its example, and Lago's error shapes
    assert 'id="schema-CustomerInput"' in page
    assert "&#34;external_id&#34;: &#34;acme&#34;" in page
    assert "validation_errors" in page


def test_other_routes_still_need_a_key(client):
    response = client.get("/api/v1/customers")

    assert response.status_code == 401
    assert response.get_json() == {"status": 401, "error": "Unauthorized"}
