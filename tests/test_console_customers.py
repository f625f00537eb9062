"""The console's customer pages, as a support agent uses them."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from billing.models import ActivityLog, Customer, SavedView
from billing.services import customers as customer_service
from billing.timeutil import set_clock
from extensions import db
from tests import factories


def customer_names(response):
    """The names in the customer table, in order."""
    return re.findall(r'<td><a href="/customers/[0-9a-f-]{36}">([^<]+)</a></td>', response.text)


@pytest.fixture
def three_customers(org):
    t0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    made = []
    for i, (name, country, currency, tier) in enumerate(
        [
            ("Acme", "FR", "EUR", "gold"),
            ("Globex", "DE", "EUR", "silver"),
            ("Hooli", "US", "USD", ""),
        ]
    ):
        set_clock(lambda i=i: t0 + timedelta(days=i))
        metadata = [{"key": "tier", "value": tier}] if tier else []
        made.append(
            factories.make_customer(
                org, external_id=name.lower(), name=name, country=country, currency=currency,
                customer_type="company" if name != "Hooli" else "individual", metadata=metadata,
            )
        )  # fmt: skip
    set_clock(None)
    return made


# --- list ------------------------------------------------------------------------------------


def test_list_shows_newest_first_with_the_support_columns(agent_client, three_customers):
    response = agent_client.get("/customers")

    assert response.status_code == 200
    assert customer_names(response) == ["Hooli", "Globex", "Acme"]
    assert "3 customers" in response.text
    for header in ("Name", "External id", "E-mail", "Country", "Currency", "Status", "Created"):
        assert f">{header}" in response.text


def test_search_finds_metadata_values_and_htmx_gets_the_table_only(agent_client, three_customers):
    response = agent_client.get("/customers?q=silver", htmx=True)

    assert response.status_code == 200
    assert customer_names(response) == ["Globex"]
    assert "<html" not in response.text
    assert 'id="customer-table"' in response.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("country=FR", ["Acme"]),
        ("currency=EUR", ["Globex", "Acme"]),
        ("customer_type=individual", ["Hooli"]),
        ("meta_key=tier&meta_value=gold", ["Acme"]),
        ("created_from=2026-05-02&created_to=2026-05-02", ["Globex"]),
        ("status=inactive", ["Hooli", "Globex", "Acme"]),
        ("status=active", []),
        ("currency=EUR&country=DE", ["Globex"]),
        ("sort=name", ["Acme", "Globex", "Hooli"]),
        ("sort=-name", ["Hooli", "Globex", "Acme"]),
        ("q=g&sort=name", ["Acme", "Globex"]),  # "g": word prefix of Globex and gold
    ],
)
def test_filters_and_sorting_combine_and_the_url_reproduces_the_view(
    agent_client, three_customers, query, expected
):
    assert customer_names(agent_client.get(f"/customers?{query}")) == expected


def test_the_list_shows_active_plans_and_filters_on_having_an_active_subscription(
    agent_client, org, three_customers
):
    metric = factories.make_billable_metric(org, code="api_calls")
    charges = [{"billable_metric_id": str(metric.lago_id), "charge_model": "standard",
                "properties": {"amount": "1"}}]  # fmt: skip
    growth = factories.make_plan(org, code="growth", name="Growth", charges=charges)
    starter = factories.make_plan(org, code="starter", name="Starter", charges=charges)
    acme, globex, _hooli = three_customers
    factories.make_subscription(org, acme, growth, external_id="acme-1")
    factories.make_subscription(org, acme, starter, external_id="acme-2")
    ended = factories.make_subscription(org, globex, growth, external_id="globex-1")
    agent_client.post(
        f"/customers/{globex.lago_id}/subscriptions/{ended.lago_id}/terminate",
        data={"confirm": "y"},
    )

    everyone = agent_client.get("/customers?sort=name").text
    active = agent_client.get("/customers?status=active", htmx=True)
    inactive = agent_client.get("/customers?status=inactive&sort=name", htmx=True)

    assert re.search(r">Acme</a></td>(?:(?!</tr>).)*>Growth, Starter</td>", everyone, re.S)
    assert re.search(
        r'>Globex</a></td>(?:(?!</tr>).)*<td class="narrow" title=""></td>', everyone, re.S
    )
    assert customer_names(active) == ["Acme"]
    assert customer_names(inactive) == ["Globex", "Hooli"]
    assert "Active (subscribed)" in everyone


def test_bad_filter_values_are_ignored_not_errors(agent_client, three_customers):
    response = agent_client.get("/customers?created_from=yesterday&sort=password&page=-3")
    assert response.status_code == 200
    assert len(customer_names(response)) == 3


def test_pagination_keeps_the_filters(agent_client, org):
    for i in range(55):
        factories.make_customer(org, name=f"Bulk {i:02d}", country="NL")

    first = agent_client.get("/customers?country=NL")
    second = agent_client.get("/customers?country=NL&page=2")

    assert "Page 1 of 2" in first.text
    assert "country=NL&amp;page=2" in first.text
    assert len(customer_names(first)) == 50
    assert len(customer_names(second)) == 5


def test_csv_export_holds_every_row_of_the_filtered_list(agent_client, three_customers):
    response = agent_client.get("/customers/export.csv?currency=EUR")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["name"] for row in rows] == ["Globex", "Acme"]
    assert rows[1]["metadata"] == "tier=gold"
    assert rows[1]["status"] == "inactive"


def test_dates_show_the_zone_and_hover_gives_utc_and_the_organizations_zone(
    agent_client, org, three_customers
):
    org.timezone = "America/New_York"
    response = agent_client.get(f"/customers/{three_customers[0].lago_id}")
    assert 'title="2026-05-01 09:00 UTC · 2026-05-01 05:00 America/New_York"' in response.text


# --- saved views -----------------------------------------------------------------------------


def test_saved_views_appear_in_the_sidebar_with_their_count(
    agent_client, make_agent_client, three_customers
):
    response = agent_client.post("/views", data={"name": "Euro customers", "query": "currency=EUR"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/customers?currency=EUR"

    page = agent_client.get("/customers")
    assert re.search(r'currency=EUR">Euro customers</a>\s*<span class="count">…</span>', page.text)
    panel = agent_client.get("/views", htmx=True)  # the sidebar loads the counts after the page
    assert re.search(r'currency=EUR">Euro customers</a>\s*<span class="count">2</span>', panel.text)
    other_agent = make_agent_client("support")
    assert ">Euro customers</a>" not in other_agent.get("/customers").text

    view = factories.db_scalar(select(SavedView).where(SavedView.agent_id == agent_client.agent.id))
    assert agent_client.post(f"/views/{view.id}/delete").status_code == 302
    assert ">Euro customers</a>" not in agent_client.get("/customers").text


def test_a_saved_view_needs_a_name(agent_client):
    response = agent_client.post("/views", data={"name": "", "query": "q=x"})
    assert response.status_code == 302
    assert (
        factories.db_scalar(select(SavedView).where(SavedView.agent_id == agent_client.agent.id))
        is None
    )


# --- create and edit -------------------------------------------------------------------------


def form_data(**overrides):
    data = {
        "external_id": "", "name": "Initech", "email": "ap@initech.test", "currency": "EUR",
        "country": "FR", "timezone": "Europe/Paris", "document_locale": "fr",
        "metadata-0-key": "tier", "metadata-0-value": "gold", "metadata-0-display_in_invoice": "y",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_create_without_external_id_generates_one(agent_client, org):
    response = agent_client.post("/customers/new", data=form_data())

    assert response.status_code == 302
    customer = factories.db_scalar(
        select(Customer).where(Customer.organization_id == org.id, Customer.name == "Initech")
    )
    assert re.fullmatch(r"cus_[0-9A-Z]{26}", customer.external_id)
    assert response.headers["Location"] == f"/customers/{customer.lago_id}"
    assert customer.document_locale == "fr"
    assert [(m.key, m.value, m.display_in_invoice) for m in customer.metadata_items] == [
        ("tier", "gold", True)
    ]
    shown = agent_client.get(response.headers["Location"])
    assert customer.external_id in shown.text
    log = factories.db_scalar(select(ActivityLog).where(ActivityLog.customer_id == customer.id))
    assert (log.actor_type, log.source, log.actor_label) == (
        "agent", "console", agent_client.agent.email,
    )  # fmt: skip


def test_invalid_htmx_submit_rerenders_the_form_with_422_and_field_errors(agent_client, org):
    response = agent_client.post(
        "/customers/new",
        data=form_data(email="not-an-email", **{"metadata-1-key": "tier", "metadata-1-value": "x"}),
        htmx=True,
    )

    assert response.status_code == 422
    assert response.text.lstrip().startswith('<form id="customer-form"')
    assert re.search(r'id="field-email">.*?Enter valid e-mail addresses', response.text, re.S)
    assert "Each metadata key can appear only once." in response.text
    assert 'value="Initech"' in response.text  # what was typed is kept
    assert factories.db_scalar(select(Customer).where(Customer.organization_id == org.id)) is None


def test_create_with_an_existing_external_id_updates_like_the_api(agent_client, org):
    factories.make_customer(org, external_id="taken", name="Old")
    agent_client.post("/customers/new", data=form_data(external_id="taken", name="New"))
    assert (
        factories.db_scalar(select(Customer).where(Customer.external_id == "taken")).name == "New"
    )


def test_edit_changes_fields_external_id_and_metadata(agent_client, org):
    customer = factories.make_customer(
        org, external_id="old-id", metadata=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    )
    keep = next(m for m in customer.metadata_items if m.key == "a")
    form = agent_client.get(f"/customers/{customer.lago_id}/edit")
    assert 'value="old-id"' in form.text

    response = agent_client.post(
        f"/customers/{customer.lago_id}/edit",
        data=form_data(**{"external_id": "new-id", "metadata-0-id": str(keep.lago_id),
                          "metadata-0-key": "a", "metadata-0-value": "changed"}),
    )  # fmt: skip

    assert response.status_code == 302
    assert customer.external_id == "new-id"
    assert [(str(m.lago_id), m.key, m.value) for m in customer.metadata_items] == [
        (str(keep.lago_id), "a", "changed")
    ]


def test_edit_refuses_an_external_id_used_by_another_customer(agent_client, org):
    factories.make_customer(org, external_id="first")
    second = factories.make_customer(org, external_id="second")

    response = agent_client.post(
        f"/customers/{second.lago_id}/edit", data=form_data(external_id="first"), htmx=True
    )

    assert response.status_code == 422
    assert "Another customer already uses this external id." in response.text
    assert second.external_id == "second"


def test_external_id_and_currency_lock_once_something_is_attached(agent_client, org, monkeypatch):
    customer = factories.make_customer(org, external_id="locked", currency="EUR")
    monkeypatch.setattr(customer_service, "customer_has_attachments", lambda c: True)
    monkeypatch.setattr("blueprints.console.customers.customer_has_attachments", lambda c: True)

    form = agent_client.get(f"/customers/{customer.lago_id}/edit")
    agent_client.post(
        f"/customers/{customer.lago_id}/edit",
        data=form_data(external_id="changed", currency="USD", name="Still saved"),
    )

    assert "Locked: billing objects already refer to this external id." in form.text
    assert (customer.external_id, customer.currency, customer.name) == (
        "locked",
        "EUR",
        "Still saved",
    )


def test_metadata_rows_are_added_with_increasing_indexes(agent_client):
    response = agent_client.get("/customers/metadata-row?index=4", htmx=True)
    assert 'name="metadata-4-key"' in response.text
    assert 'hx-swap-oob="true"' in response.text
    assert "index=5" in response.text


# --- view and delete -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tab", ["overview", "invoices", "subscriptions", "wallet", "analytics", "activity", "settings"]
)
def test_every_tab_renders_and_htmx_gets_only_the_panel(agent_client, org, tab):
    customer = factories.make_customer(org, name="Tabby")
    page = agent_client.get(f"/customers/{customer.lago_id}/{tab}")
    panel = agent_client.get(f"/customers/{customer.lago_id}/{tab}", htmx=True)

    assert page.status_code == panel.status_code == 200
    assert "Tabby" in page.text and "Outstanding" in page.text
    assert panel.text.lstrip().startswith('<section id="customer-tab"')


def test_activity_tab_filters_by_who_and_what(agent_client, org):
    customer = factories.make_customer(org, external_id="watched", name="Before")
    agent_client.post(f"/customers/{customer.lago_id}/edit", data=form_data(
        external_id="watched", name="After"))  # fmt: skip

    everything = agent_client.get(f"/customers/{customer.lago_id}/activity")
    by_agents = agent_client.get(f"/customers/{customer.lago_id}/activity?who=agent")

    assert everything.text.count("timeline-entry") == 2
    assert by_agents.text.count("timeline-entry") == 1
    assert "customer.updated" in by_agents.text and "After" in by_agents.text


def test_unknown_customer_is_a_404_page(agent_client):
    response = agent_client.get("/customers/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert "Not Found" in response.text


def test_another_organizations_customer_is_not_found(agent_client):
    theirs = factories.make_customer(factories.make_organization())
    assert agent_client.get(f"/customers/{theirs.lago_id}").status_code == 404
    assert (
        agent_client.post(f"/customers/{theirs.lago_id}/delete", data={"confirm": "y"}).status_code
        == 404
    )


def test_delete_previews_consequences_and_needs_confirmation(agent_client, org):
    customer = factories.make_customer(
        org, external_id="doomed", metadata=[{"key": "k", "value": "v"}]
    )

    preview = agent_client.get(f"/customers/{customer.lago_id}/delete")
    unconfirmed = agent_client.post(f"/customers/{customer.lago_id}/delete", data={})
    assert "“doomed” can be used again" in preview.text
    assert "1 metadata item(s)" in preview.text
    assert unconfirmed.status_code == 422
    assert customer.deleted_at is None

    done = agent_client.post(f"/customers/{customer.lago_id}/delete", data={"confirm": "y"})

    assert done.status_code == 302
    assert customer.deleted_at is not None
    assert "doomed" not in agent_client.get("/customers").text
    assert "doomed" in agent_client.get("/customers?status=deleted").text
    assert "Deleted" in agent_client.get(f"/customers/{customer.lago_id}").text


def test_viewers_see_no_change_buttons(make_agent_client, org):
    viewer = make_agent_client("viewer")
    customer = factories.make_customer(org)

    page = viewer.get(f"/customers/{customer.lago_id}")
    listing = viewer.get("/customers")

    assert "Edit customer" not in page.text and "Delete customer" not in page.text
    assert 'href="/customers/new"' not in listing.text
    assert viewer.post("/customers/new", data=form_data()).status_code == 403


def test_console_pages_carry_a_strict_csp(agent_client):
    csp = agent_client.get("/customers").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp


def test_deleted_customers_can_be_searched_from_the_deleted_status(agent_client, org):
    gone = factories.make_customer(org, external_id="gone-co", name="Vanished Ltd")
    factories.make_customer(org, external_id="still-here", name="Vanguard")
    customer_service.delete_customer(org, gone, factories.TEST_ACTOR)
    db.session.commit()

    assert customer_names(agent_client.get("/customers?q=van")) == ["Vanguard"]
    assert customer_names(agent_client.get("/customers?q=van&status=deleted")) == ["Vanished Ltd"]
    assert customer_names(agent_client.get("/customers?q=va&status=deleted")) == ["Vanished Ltd"]
