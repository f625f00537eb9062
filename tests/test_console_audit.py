"""The organization-wide audit log page, as an agent investigating a change uses it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from billing.services import audit
from billing.timeutil import set_clock
from extensions import db
from tests import factories

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
AGENT = audit.Actor(type="agent", source="console", id="a-1", label="ann@agents.test")
API_KEY = audit.Actor(type="api_key", source="api", id="k-1", label="ll_abcdefgh…")
PORTAL = audit.Actor(type="portal", source="portal", label="customer portal")


def activity_types(response):
    """The activity types listed, top to bottom."""
    return re.findall(r'<span class="activity-type">([^<]+)</span>', response.text)


def record(org, actor, activity_type, at, resource_type="organization", **extra):
    set_clock(lambda: at)
    entry = audit.record_activity(
        organization_id=org.id,
        actor=actor,
        activity_type=activity_type,
        resource_type=resource_type,
        resource_id=extra.pop("resource_id", "r-1"),
        **extra,
    )
    db.session.flush()  # created_at is taken when the row is written
    set_clock(None)
    return entry


@pytest.fixture
def history(agent_client, org):
    """Four days of changes by different actors; the agent_client's own creation comes first."""
    customer = factories.make_customer(org, external_id="acme", name="Acme")
    record(org, AGENT, "organization.updated", T0, changes={"timezone": ["UTC", "Europe/Paris"]})
    record(org, API_KEY, "customer.updated", T0 + timedelta(days=1), resource_type="customer",
           customer_id=customer.id, changes={"name": ["Acme", "Acme Inc"]})  # fmt: skip
    record(org, AGENT, "api_key.revoked", T0 + timedelta(days=2), resource_type="api_key")
    record(org, PORTAL, "customer.updated", T0 + timedelta(days=3), resource_type="customer",
           customer_id=customer.id)  # fmt: skip
    return customer


def test_every_kind_of_change_is_listed_newest_first(agent_client, history):
    response = agent_client.get("/audit")

    assert response.status_code == 200
    recorded = [t for t in activity_types(response) if not t.endswith(".created")]
    assert recorded == [
        "customer.updated", "api_key.revoked", "customer.updated", "organization.updated",
    ]  # fmt: skip
    assert {"customer.created", "agent.created", "organization.updated"} <= set(
        activity_types(response)
    )
    assert "Europe/Paris" in response.text  # the diff
    assert f'href="/customers/{history.id}/go"' in response.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("who=agent", ["api_key.revoked", "organization.updated"]),
        ("who=portal", ["customer.updated"]),
        ("what=customer.updated", ["customer.updated", "customer.updated"]),
        ("resource=api_key", ["api_key.revoked"]),
        ("from=2026-03-11&to=2026-03-12", ["api_key.revoked", "customer.updated"]),
        ("from=2026-03-13", ["customer.updated"]),
        ("to=2026-03-10", ["organization.updated"]),
        ("who=api_key&what=customer.updated", ["customer.updated"]),
        ("who=agent&resource=customer", []),
        ("who=nobody&from=garbage", None),  # unknown values are ignored, not errors
    ],
)
def test_filters_combine_and_the_url_reproduces_the_view(agent_client, history, query, expected):
    response = agent_client.get(f"/audit?{query}")

    assert response.status_code == 200
    listed = [t for t in activity_types(response) if t not in ("agent.created", "customer.created")]
    if expected is None:
        assert len(listed) == 4
        return
    assert listed == expected
    for pair in query.split("&"):
        name, value = pair.split("=")
        field = {"from": "from", "to": "to"}.get(name, name)
        if field in ("from", "to"):
            assert f'name="{field}" value="{value}"' in response.text
        else:
            assert re.search(rf'<option value="{re.escape(value)}" selected>', response.text)
    if not expected:
        assert "No entry matches these filters." in response.text


def test_dates_are_days_in_the_organizations_time_zone(agent_client, org):
    org.timezone = "Asia/Tokyo"  # UTC+9: 20:00 UTC on the 9th is the 10th in Tokyo
    record(org, AGENT, "organization.updated", datetime(2026, 3, 9, 20, 0, tzinfo=UTC))

    on_the_10th = agent_client.get("/audit?from=2026-03-10&to=2026-03-10&who=agent")
    on_the_9th = agent_client.get("/audit?from=2026-03-09&to=2026-03-09&who=agent")

    assert activity_types(on_the_10th) == ["organization.updated"]
    assert activity_types(on_the_9th) == []


def test_htmx_gets_the_table_only_and_the_filters_push_the_url(agent_client, history):
    page = agent_client.get("/audit")
    table = agent_client.get("/audit?who=portal", htmx=True)

    assert 'hx-get="/audit"' in page.text and 'hx-push-url="true"' in page.text
    assert table.text.lstrip().startswith('<section id="audit-table"')
    assert "<html" not in table.text
    assert activity_types(table) == ["customer.updated"]


def test_pages_of_fifty_keep_the_filters(agent_client, org):
    for i in range(120):
        record(org, AGENT, "organization.updated", T0 + timedelta(minutes=i),
               changes={"net_payment_term": [i, i + 1]})  # fmt: skip

    first = agent_client.get("/audit?who=agent")
    third = agent_client.get("/audit?who=agent&page=3")

    assert len(activity_types(first)) == 50
    assert "120 entries" in first.text and "Page 1 of 3" in first.text
    assert 'href="/audit?who=agent&amp;page=2"' in first.text
    assert len(activity_types(third)) == 20
    assert "[0, 1]" not in first.text  # the oldest change is on the last page
    assert re.search(r'<td class="diff-old">0</td>\s*<td class="diff-new">1</td>', third.text)
    assert 'rel="next"' not in third.text and 'href="/audit?who=agent&amp;page=2"' in third.text


def test_a_resources_history_link_shows_only_its_entries(agent_client, org):
    colleague = factories.make_agent(org, "support")
    agent_client.post(f"/settings/agents/{colleague.lago_id}/role", data={"role": "viewer"})

    agents_page = agent_client.get("/settings/agents")
    link = f"/audit?resource=agent&amp;resource_id={colleague.lago_id}"
    assert f'href="{link}"' in agents_page.text
    history = agent_client.get(link.replace("&amp;", "&"))

    assert activity_types(history) == ["agent.updated", "agent.created"]
    assert "about one agent" in history.text


def test_another_organizations_entries_never_appear(agent_client, org):
    other = factories.make_organization()
    record(other, AGENT, "organization.updated", T0, changes={"name": ["Secret", "Other"]})
    factories.make_customer(other, external_id="their-customer")

    response = agent_client.get("/audit")

    assert "Secret" not in response.text and "their-customer" not in response.text
    assert "organization.updated" not in activity_types(response)
    assert "organization.updated" not in response.text  # not even as a filter choice


def test_every_agent_may_read_the_audit_log(make_agent_client, org):
    viewer = make_agent_client("viewer")
    assert viewer.get("/audit").status_code == 200
