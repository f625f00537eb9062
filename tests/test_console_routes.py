"""Route inventory: every console route needs a login, every change needs CSRF and a role."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests import factories

ROOT = Path(__file__).resolve().parent.parent
#: POST routes any signed-in agent may use: personal preferences, not organization data
PERSONAL = {"console.save_view", "console.delete_view"}


def console_rules(app, method):
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.") and method in rule.methods
    ]


def build_url(app, rule):
    values = {}
    for argument in rule.arguments:
        converter = rule._converters[argument].__class__.__name__
        if converter == "UUIDConverter":
            values[argument] = uuid.uuid4()
        elif converter == "IntegerConverter":
            values[argument] = 1
        elif converter == "AnyConverter":
            values[argument] = sorted(rule._converters[argument].items)[0]
        else:
            values[argument] = "x"
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def test_every_console_page_requires_login(app, client):
    rules = console_rules(app, "GET")
    assert len(rules) > 10
    for rule in rules:
        url = build_url(app, rule)
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login"), url


def test_htmx_requests_without_login_are_sent_to_the_login_page(client):
    response = client.get("/customers", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_every_state_changing_route_rejects_a_missing_csrf_token(app, agent_client):
    rules = console_rules(app, "POST") + [
        r for r in app.url_map.iter_rules() if r.endpoint == "auth.logout"
    ]
    assert len(rules) > 5
    for rule in rules:
        url = build_url(app, rule)
        response = agent_client.post(url, data={}, csrf=False)
        assert response.status_code == 400, url
        assert b"This form has expired" in response.data


def test_every_state_changing_route_declares_who_may_use_it(app):
    for rule in console_rules(app, "POST"):
        if rule.endpoint in PERSONAL:
            continue
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "required_permission", None) in ("write", "admin"), rule.endpoint


@pytest.mark.parametrize(
    ("role", "refused"), [("viewer", ("write", "admin")), ("support", ("admin",))]
)
def test_role_boundaries_are_enforced_server_side(app, make_agent_client, org, role, refused):
    agent = make_agent_client(role)
    customer = factories.make_customer(org)
    plan = factories.make_plan(org)
    metric = plan.charges[0].billable_metric
    real_ids = {"customers": customer.lago_id, "plans": plan.lago_id,
                "billable-metrics": metric.lago_id}  # fmt: skip
    checked = 0
    for rule in console_rules(app, "POST") + console_rules(app, "GET"):
        view = app.view_functions[rule.endpoint]
        if getattr(view, "required_permission", None) not in refused:
            continue
        # Real customers, plans and metrics, so that refusals cannot hide behind a 404.
        url = re.sub(
            r"/(customers|plans|billable-metrics)/[0-9a-f-]{36}",
            lambda m: f"/{m[1]}/{real_ids[m[1]]}",
            build_url(app, rule),
        )
        method = "POST" if "POST" in rule.methods else "GET"
        response = agent.post(url, data={}) if method == "POST" else agent.get(url)
        assert response.status_code == 403, (role, method, url)
        checked += 1
    assert checked > 0


def test_templates_need_no_inline_script_or_style():
    """The pages' CSP forbids inline code; a template that relied on it would break. (PDF
    templates are rendered by WeasyPrint into documents, never served as pages.)"""
    for template in (ROOT / "templates").rglob("*.html"):
        if template.parent.name == "pdf":
            continue
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "hx-on" not in text, template
        assert not re.search(r"\sstyle\s*=", text), template


def test_subscription_routes_are_in_the_inventory(app):
    """The subscriptions tab's changes need `write`; its reads (the tab, the events debugger)
    are open to every agent."""
    writes = {"console.assign_plan", "console.change_plan", "console.terminate_subscription"}
    for endpoint in writes:
        assert app.view_functions[endpoint].required_permission == "write", endpoint
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    assert rules["console.customer_events"].methods >= {"GET"}
    assert "POST" not in rules["console.customer_events"].methods
    assert rules["console.assign_plan"].rule == "/customers/<uuid:lago_id>/subscriptions/new"


def test_invoice_routes_are_in_the_inventory(app):
    """Invoice actions need `write`; the list and the invoice page are open to every agent."""
    writes = {
        "console.refresh_invoice",
        "console.finalize_invoice",
        "console.update_payment_status",
        "console.void_invoice",
    }
    for endpoint in writes:
        assert app.view_functions[endpoint].required_permission == "write", endpoint
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    for endpoint in ("console.invoices", "console.invoice", "console.invoice_pdf"):
        assert "POST" not in rules[endpoint].methods, endpoint
        assert getattr(app.view_functions[endpoint], "required_permission", None) is None
    assert rules["console.invoice"].rule == "/invoices/<uuid:lago_id>"
    assert rules["console.void_invoice"].methods >= {"GET", "POST"}
