"""The console's billable metrics and plans, as an agent sets up the catalog."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from billing.models import BillableMetric, Plan
from extensions import db
from tests import factories


def row_names(response):
    """The names linked in a catalog table, in order."""
    return re.findall(
        r'<td><a href="/(?:plans|billable-metrics)/[0-9a-f-]{36}">([^<]+)</a></td>', response.text
    )


def live_metric(org, code):
    return db.session.scalar(
        select(BillableMetric).where(
            BillableMetric.organization_id == org.id,
            BillableMetric.code == code,
            BillableMetric.deleted_at.is_(None),
        )
    )


def live_plan(org, code):
    db.session.expire_all()
    return db.session.scalar(
        select(Plan).where(
            Plan.organization_id == org.id, Plan.code == code, Plan.deleted_at.is_(None)
        )
    )


def plan_form(**overrides):
    data = {
        "name": "Startup",
        "code": "startup",
        "description": "",
        "interval": "monthly",
        "amount_currency": "EUR",
        "amount": "49.90",
        "trial_period": "",
    }
    data.update(overrides)
    return data


def charge_fields(index, metric, model, **fields):
    """Form fields of charge row `index`; tiers as tiers=[(from, to, per_unit, flat), …]."""
    prefix = f"charges-{index}-"
    data = {prefix + "billable_metric_id": str(metric.lago_id), prefix + "charge_model": model}
    for t, tier in enumerate(fields.pop("tiers", [])):
        for name, value in zip(
            ("from_value", "to_value", "per_unit_amount", "flat_amount"), tier, strict=True
        ):
            data[f"{prefix}tiers-{t}-{name}"] = value
    data.update({prefix + name: value for name, value in fields.items()})
    return data


# --- billable metrics ------------------------------------------------------------------------


def test_metric_list_shows_the_catalog_columns_and_searches_name_or_code(agent_client, org):
    factories.make_billable_metric(
        org, name="API calls", code="api_calls", aggregation_type="count_agg"
    )
    factories.make_billable_metric(
        org, name="Storage", code="gb_stored", aggregation_type="sum_agg", field_name="gb",
        recurring=True,
    )  # fmt: skip

    response = agent_client.get("/billable-metrics")
    assert response.status_code == 200
    assert row_names(response) == ["Storage", "API calls"]
    for text in ("Aggregation", "Field", "Recurring", "Count", "Sum", "recurring", "gb_stored"):
        assert text in response.text

    searched = agent_client.get("/billable-metrics?q=GB_st", htmx=True)
    assert row_names(searched) == ["Storage"]
    assert "<html" not in searched.text and 'id="metric-table"' in searched.text
    assert row_names(agent_client.get("/billable-metrics?q=nothing")) == []


def test_metric_list_pages_through_many_metrics(agent_client, org):
    for n in range(52):
        factories.make_billable_metric(org, name=f"M{n:02}", code=f"m{n:02}")

    first = agent_client.get("/billable-metrics")
    second = agent_client.get("/billable-metrics?page=2")

    assert len(row_names(first)) == 50 and "Page 1 of 2" in first.text
    assert len(row_names(second)) == 2 and 'rel="prev"' in second.text


def test_create_a_metric_with_filters_and_rounding(agent_client, org):
    response = agent_client.post(
        "/billable-metrics/new",
        data={
            "name": "Compute", "code": "compute_seconds", "description": "CPU time",
            "aggregation_type": "sum_agg", "field_name": "seconds", "recurring": "y",
            "rounding_function": "ceil", "rounding_precision": "2",
            "filters-0-key": "region", "filters-0-values": "eu, us ,",
            "filters-3-key": "", "filters-3-values": "",
            "filters-5-key": "cloud", "filters-5-values": "aws",
        },
    )  # fmt: skip

    metric = live_metric(org, "compute_seconds")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/billable-metrics/{metric.lago_id}"
    assert (metric.name, metric.description, metric.aggregation_type, metric.field_name) == (
        "Compute", "CPU time", "sum_agg", "seconds"
    )  # fmt: skip
    assert metric.recurring is True
    assert (metric.rounding_function, metric.rounding_precision) == ("ceil", 2)
    assert metric.filters == [
        {"key": "region", "values": ["eu", "us"]},
        {"key": "cloud", "values": ["aws"]},
    ]
    page = agent_client.get(response.headers["Location"])
    assert "Round up" not in page.text and "ceil to 2 decimal(s)" in page.text
    assert "region" in page.text and ">eu<" in page.text


def test_a_count_metric_needs_no_field_and_is_never_recurring(agent_client, org):
    agent_client.post(
        "/billable-metrics/new",
        data={"name": "Logins", "code": "logins", "aggregation_type": "count_agg",
              "field_name": "ignored", "recurring": "y"},
    )  # fmt: skip

    metric = live_metric(org, "logins")
    assert (metric.field_name, metric.recurring) == (None, False)


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"field_name": ""}, "field_name", "Every aggregation except Count needs a field name."),
        ({"code": "taken"}, "code", "Another one already uses this code."),
        ({"code": "a/b"}, "code", "This value is not valid."),
        ({"rounding_function": "round", "rounding_precision": "99"}, "rounding_precision",
         "Number must be between 0 and 15."),
    ],
)  # fmt: skip
def test_invalid_metric_input_comes_back_with_the_message_next_to_its_field(
    agent_client, org, fields, field_id, message
):
    factories.make_billable_metric(org, code="taken")
    data = {"name": "Bytes", "code": "bytes", "aggregation_type": "sum_agg", "field_name": "b"}

    response = agent_client.post("/billable-metrics/new", data={**data, **fields}, htmx=True)

    assert response.status_code == 422
    assert "<html" not in response.text and 'id="metric-form"' in response.text
    field_html = response.text.split(f'id="field-{field_id}"')[1].split('<div class="field')[0]
    assert message in field_html
    assert live_metric(org, "bytes") is None


def test_edit_a_metric_keeps_its_values_in_the_form_and_saves_changes(agent_client, org):
    metric = factories.make_billable_metric(
        org, name="Seats", code="seats", filters=[{"key": "tier", "values": ["a", "b"]}]
    )

    form = agent_client.get(f"/billable-metrics/{metric.lago_id}/edit")
    assert 'value="Seats"' in form.text and 'value="a, b"' in form.text

    response = agent_client.post(
        f"/billable-metrics/{metric.lago_id}/edit",
        data={"name": "Seats used", "code": "seats", "aggregation_type": "max_agg",
              "field_name": "seats", "filters-0-key": "tier", "filters-0-values": "a"},
        htmx=True,
    )  # fmt: skip

    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/billable-metrics/{metric.lago_id}"
    db.session.refresh(metric)
    assert (metric.name, metric.aggregation_type, metric.field_name) == (
        "Seats used", "max_agg", "seats"
    )  # fmt: skip
    assert metric.filters == [{"key": "tier", "values": ["a"]}]


def test_delete_a_metric_after_confirmation(agent_client, org):
    metric = factories.make_billable_metric(org, name="Old", code="old")
    factories.make_plan(
        org,
        name="Uses old",
        charges=[{"billable_metric_id": str(metric.lago_id), "charge_model": "standard",
                  "properties": {"amount": "1"}}],
    )  # fmt: skip

    detail = agent_client.get(f"/billable-metrics/{metric.lago_id}")
    assert "hx-confirm=" in detail.text and "Uses old" in detail.text
    preview = agent_client.get(f"/billable-metrics/{metric.lago_id}/delete")
    assert preview.status_code == 200
    assert "Its charges are removed from 1 plan(s): Uses old." in preview.text

    unconfirmed = agent_client.post(f"/billable-metrics/{metric.lago_id}/delete")
    assert unconfirmed.status_code == 422 and live_metric(org, "old") is not None

    response = agent_client.post(
        f"/billable-metrics/{metric.lago_id}/delete", data={"confirm": "y"}, htmx=True
    )
    assert response.headers["HX-Redirect"] == "/billable-metrics"
    assert live_metric(org, "old") is None
    assert agent_client.get(f"/billable-metrics/{metric.lago_id}").status_code == 404


# --- plans -----------------------------------------------------------------------------------


def test_plan_list_shows_amount_with_its_currency_charges_and_search(agent_client, org):
    factories.make_plan(org, name="Basic", code="basic", amount_cents=4990)
    factories.make_plan(
        org, name="Tokyo", code="tokyo", amount_cents=5000, amount_currency="JPY", charges=[]
    )

    response = agent_client.get("/plans")

    assert response.status_code == 200
    assert row_names(response) == ["Tokyo", "Basic"]
    assert "€49.90" in response.text and "¥5,000" in response.text
    assert "Monthly" in response.text
    assert re.search(r'<td class="numeric">1</td>\s*<td class="numeric">0</td>', response.text)
    searched = agent_client.get("/plans?q=bas", htmx=True)
    assert row_names(searched) == ["Basic"] and 'id="plan-table"' in searched.text


@pytest.mark.parametrize(
    ("currency", "typed", "cents", "shown"),
    [
        ("EUR", "49.90", 4990, "€49.90"),
        ("EUR", "0.1", 10, "€0.10"),
        ("JPY", "5000", 5000, "¥5,000"),
        ("KWD", "12.345", 12345, "KWD\u00a012.345"),
        ("KWD", "0.001", 1, "KWD\u00a00.001"),
    ],
)
def test_the_base_amount_is_stored_exactly_in_minor_units(
    agent_client, org, currency, typed, cents, shown
):
    response = agent_client.post(
        "/plans/new", data=plan_form(amount_currency=currency, amount=typed)
    )

    assert response.status_code == 302
    plan = live_plan(org, "startup")
    assert (plan.amount_cents, plan.amount_currency) == (cents, currency)
    assert shown in agent_client.get(response.headers["Location"]).text
    edit = agent_client.get(f"/plans/{plan.lago_id}/edit")
    assert f'value="{typed if currency != "EUR" or typed != "0.1" else "0.10"}"' in edit.text


@pytest.mark.parametrize(
    ("currency", "typed", "message"),
    [
        ("EUR", "12.345", "EUR amounts have 2 decimals."),
        ("JPY", "10.5", "JPY amounts have no decimals."),
        ("KWD", "1.2345", "KWD amounts have 3 decimals."),
        ("EUR", "-1", "Enter an amount of 0 or more, such as 19.99."),
        ("EUR", "12,50", "Enter an amount of 0 or more, such as 19.99."),
    ],
)
def test_a_base_amount_that_is_not_exact_is_refused(agent_client, org, currency, typed, message):
    response = agent_client.post(
        "/plans/new", data=plan_form(amount_currency=currency, amount=typed), htmx=True
    )

    assert response.status_code == 422
    assert 'id="plan-form"' in response.text
    assert message in response.text.split('id="field-amount"')[1].split('<div class="field')[0]
    assert live_plan(org, "startup") is None


CHARGE_CASES = {
    "standard": ({"amount": "0.002"}, {"amount": "0.002"}),
    "package": (
        {"amount": "5", "package_size": "1000", "free_units": "100"},
        {"amount": "5", "package_size": 1000, "free_units": 100},
    ),
    "percentage": (
        {"rate": "2.5", "fixed_amount": "0.30", "free_units_per_events": "3",
         "per_transaction_min_amount": "0.5", "per_transaction_max_amount": "10"},
        {"rate": "2.5", "fixed_amount": "0.30", "free_units_per_events": 3,
         "per_transaction_min_amount": "0.5", "per_transaction_max_amount": "10"},
    ),
    "graduated": (
        {"tiers": [("0", "100", "0", "0"), ("101", "", "0.01", "2")]},
        {"graduated_ranges": [
            {"from_value": 0, "to_value": 100, "per_unit_amount": "0", "flat_amount": "0"},
            {"from_value": 101, "to_value": None, "per_unit_amount": "0.01", "flat_amount": "2"},
        ]},
    ),
    "volume": (
        {"tiers": [("0", "10", "1", ""), ("11", "", "0.5", "")]},
        {"volume_ranges": [
            {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
            {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
        ]},
    ),
}  # fmt: skip


@pytest.mark.parametrize("model", list(CHARGE_CASES))
def test_create_a_plan_with_a_charge_of_each_model(agent_client, org, model):
    metric = factories.make_billable_metric(org, name="API calls", code="api_calls")
    typed, stored = CHARGE_CASES[model]

    response = agent_client.post(
        "/plans/new",
        data={
            **plan_form(),
            **charge_fields(3, metric, model, invoice_display_name="Calls", **typed),
            # an untouched new row is left out
            "charges-7-charge_model": "standard",
        },
    )

    assert response.status_code == 302, response.text
    plan = live_plan(org, "startup")
    [charge] = plan.charges
    assert (charge.billable_metric_id, charge.charge_model) == (metric.id, model)
    assert charge.invoice_display_name == "Calls"
    assert {k: v for k, v in charge.properties.items() if v is not None} == stored
    page = agent_client.get(f"/plans/{plan.lago_id}")
    assert "API calls" in page.text and f"<td>{model.capitalize()}</td>" in page.text


def test_edit_a_plan_updates_keeps_and_removes_charges(agent_client, org):
    calls = factories.make_billable_metric(org, name="Calls", code="calls")
    seats = factories.make_billable_metric(org, name="Seats", code="seats")
    plan = factories.make_plan(
        org, name="Pro", code="pro", amount_cents=9900,
        charges=[
            {"billable_metric_id": str(calls.lago_id), "charge_model": "standard",
             "properties": {"amount": "0.01"}},
            {"billable_metric_id": str(seats.lago_id), "charge_model": "package",
             "properties": {"amount": "10", "package_size": 5, "free_units": 0}},
        ],
    )  # fmt: skip
    calls_charge = plan.charges[0]

    form = agent_client.get(f"/plans/{plan.lago_id}/edit")
    assert 'value="99.00"' in form.text and 'value="0.01"' in form.text
    assert form.text.count('class="charge-row') == 2

    response = agent_client.post(
        f"/plans/{plan.lago_id}/edit",
        data={
            **plan_form(name="Pro 2", code="pro", amount="120"),
            "charges-0-id": str(calls_charge.lago_id),
            "charges-0-code": calls_charge.code,
            **charge_fields(0, calls, "graduated", tiers=[("0", "", "0.02", "")]),
        },
    )

    assert response.status_code == 302, response.text
    plan = live_plan(org, "pro")
    assert (plan.name, plan.amount_cents) == ("Pro 2", 12000)
    [charge] = plan.charges
    assert charge.lago_id == calls_charge.lago_id and charge.charge_model == "graduated"


def test_charge_errors_appear_next_to_the_right_charge(agent_client, org):
    metric = factories.make_billable_metric(org)

    response = agent_client.post(
        "/plans/new",
        data={
            **plan_form(),
            **charge_fields(0, metric, "standard", amount="1"),
            **charge_fields(1, metric, "package", amount="abc", package_size="0"),
            **charge_fields(
                2, metric, "graduated", tiers=[("0", "10", "1", ""), ("5", "", "1", "")]
            ),
        },
        htmx=True,
    )

    assert response.status_code == 422
    rows = re.split(r'<fieldset class="charge-row', response.text)[1:]
    assert len(rows) == 3
    assert "field-error" not in rows[0]
    assert "Enter an amount of 0 or more" in rows[1]
    assert "Enter a whole number of units above 0." in rows[1]
    assert 'value="abc"' in rows[1]
    assert "each one starts right after the previous one ends" in rows[2]
    assert live_plan(org, "startup") is None


def test_a_charge_billed_in_advance_is_refused_next_to_its_checkbox(agent_client, org):
    metric = factories.make_billable_metric(org)
    advance = "Charges cannot be billed in advance yet"

    response = agent_client.post(
        "/plans/new",
        data={
            **plan_form(),
            **charge_fields(0, metric, "standard", amount="1"),
            **charge_fields(1, metric, "standard", amount="2", pay_in_advance="y"),
        },
        htmx=True,
    )

    assert response.status_code == 422
    rows = re.split(r'<fieldset class="charge-row', response.text)[1:]
    assert advance not in rows[0]
    checkbox, after = rows[1].split('name="charges-1-pay_in_advance"')
    assert advance in after.split("</label>", 2)[1] and "checked" in after.split(">")[0]
    assert live_plan(org, "startup") is None
    plan = factories.make_plan(org, code="pro", charges=[
        {"billable_metric_id": str(metric.lago_id), "charge_model": "standard",
         "properties": {"amount": "1"}}])  # fmt: skip
    [charge] = plan.charges
    edit = {
        **plan_form(code="pro"),
        "charges-0-id": str(charge.lago_id),
        "charges-0-code": charge.code,
        **charge_fields(0, metric, "standard", amount="1"),
    }
    refused = agent_client.post(
        f"/plans/{plan.lago_id}/edit", data={**edit, "charges-0-pay_in_advance": "y"}, htmx=True
    )
    assert refused.status_code == 422 and advance in refused.text
    db.session.refresh(charge)
    assert charge.pay_in_advance is False
    assert agent_client.post(f"/plans/{plan.lago_id}/edit", data=edit).status_code == 302


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"code": "taken"}, "code", "Another one already uses this code."),
        ({"amount_currency": ""}, "amount_currency", "Choose a currency."),
        ({"interval": "daily"}, "interval", "Choose an interval from the list."),
    ],
)
def test_invalid_plan_input_comes_back_with_the_message_next_to_its_field(
    agent_client, org, fields, field_id, message
):
    factories.make_plan(org, code="taken", charges=[])

    response = agent_client.post("/plans/new", data=plan_form(**fields), htmx=True)

    assert response.status_code == 422
    assert message in response.text.split(f'id="field-{field_id}"')[1].split('<div class="field')[0]


def test_the_charge_row_rerenders_for_another_model_keeping_what_was_typed(agent_client, org):
    metric = factories.make_billable_metric(org, name="Calls")
    args = {
        "index": "4",
        "charges-4-billable_metric_id": str(metric.lago_id),
        "charges-4-charge_model": "percentage",
        "charges-4-invoice_display_name": "API",
        "charges-4-pay_in_advance": "y",
    }

    response = agent_client.get("/plans/charge-row", query_string=args, htmx=True)

    assert response.status_code == 200
    assert 'id="charge-4"' in response.text and "Rate (%)" in response.text
    assert f'value="{metric.lago_id}" selected' in response.text
    assert 'value="API"' in response.text and "checked" in response.text

    tiers = agent_client.get(
        "/plans/charge-row",
        query_string={**args, "charges-4-charge_model": "graduated", "add_tier": "1",
                      "charges-4-tiers-0-from_value": "0", "charges-4-tiers-0-to_value": "99"},
    )  # fmt: skip
    assert 'name="charges-4-tiers-1-from_value" value="100"' in tiers.text


def test_without_javascript_add_charge_returns_the_form_with_a_new_row(agent_client, org):
    factories.make_billable_metric(org)

    response = agent_client.post("/plans/new", data={**plan_form(), "form_action": "add_charge"})

    assert response.status_code == 200
    assert 'id="charge-0"' in response.text and live_plan(org, "startup") is None


def test_delete_a_plan_after_confirmation(agent_client, org):
    plan = factories.make_plan(org, name="Legacy", code="legacy", charges=[])

    assert "hx-confirm=" in agent_client.get(f"/plans/{plan.lago_id}").text
    assert agent_client.get(f"/plans/{plan.lago_id}/delete").status_code == 200
    response = agent_client.post(f"/plans/{plan.lago_id}/delete", data={"confirm": "y"})

    assert response.headers["Location"] == "/plans"
    assert live_plan(org, "legacy") is None


def test_a_plan_with_subscriptions_is_not_deleted(agent_client, org):
    plan = factories.make_plan(org, code="busy", charges=[])
    factories.make_subscription(org, plan=plan)

    response = agent_client.post(f"/plans/{plan.lago_id}/delete", data={"confirm": "y"})

    assert response.headers["Location"] == f"/plans/{plan.lago_id}"
    assert live_plan(org, "busy") is not None
    page = agent_client.get(f"/plans/{plan.lago_id}")
    assert "terminate them before deleting it" in page.text


# --- roles and tenancy -----------------------------------------------------------------------


def test_viewers_see_the_catalog_but_cannot_change_it(make_agent_client, org):
    viewer = make_agent_client("viewer")
    metric = factories.make_billable_metric(org)
    plan = factories.make_plan(org, charges=[])

    for url in ("/plans", f"/plans/{plan.lago_id}", "/billable-metrics",
                f"/billable-metrics/{metric.lago_id}"):  # fmt: skip
        page = viewer.get(url)
        assert page.status_code == 200, url
        assert "New plan" not in page.text and "New metric" not in page.text
        assert "/edit" not in page.text and "hx-confirm" not in page.text

    for url in ("/plans/new", f"/plans/{plan.lago_id}/edit", f"/plans/{plan.lago_id}/delete",
                "/billable-metrics/new", f"/billable-metrics/{metric.lago_id}/edit",
                f"/billable-metrics/{metric.lago_id}/delete"):  # fmt: skip
        assert viewer.get(url).status_code == 403, url
        assert viewer.post(url, data={"name": "x", "confirm": "y"}).status_code == 403, url
    assert live_plan(org, plan.code) is not None


def test_another_organizations_catalog_does_not_exist_here(agent_client):
    other = factories.make_organization()
    metric = factories.make_billable_metric(other)
    plan = factories.make_plan(other, charges=[])

    for url in (
        f"/plans/{plan.lago_id}",
        f"/plans/{plan.lago_id}/edit",
        f"/billable-metrics/{metric.lago_id}",
        f"/billable-metrics/{metric.lago_id}/edit",
    ):
        assert agent_client.get(url).status_code == 404, url
    assert (
        agent_client.post(f"/plans/{plan.lago_id}/delete", data={"confirm": "y"}).status_code == 404
    )
    assert plan.name not in agent_client.get("/plans").text
    # Nor can its metrics be charged for.
    response = agent_client.post(
        "/plans/new", data={**plan_form(), **charge_fields(0, metric, "standard", amount="1")}
    )
    assert response.status_code == 422
    assert "no longer exists" in response.text


def test_an_added_filter_row_is_empty_and_filter_errors_show_in_the_filters(agent_client, org):
    added = agent_client.get("/billable-metrics/filter-row?index=2", htmx=True)
    assert 'name="filters-2-values" value=""' in added.text
    assert 'id="add-metric-filter" hx-swap-oob="true"' in added.text and "index=3" in added.text

    response = agent_client.post(
        "/billable-metrics/new",
        data={"name": "Calls", "code": "calls", "aggregation_type": "count_agg",
              "filters-0-key": "region", "filters-0-values": ", ,"},
        htmx=True,
    )  # fmt: skip

    assert response.status_code == 422
    filters = response.text.split('id="metric-filters-fieldset"')[1]
    assert "Each filter needs a key and at least one value." in filters


def test_the_base_amount_and_the_charges_are_checked_together(agent_client, org):
    metric = factories.make_billable_metric(org)

    response = agent_client.post(
        "/plans/new",
        data={**plan_form(amount="1.234"), **charge_fields(0, metric, "standard", amount="x")},
        htmx=True,
    )

    assert response.status_code == 422
    assert "EUR amounts have 2 decimals." in response.text
    charge = response.text.split('<fieldset class="charge-row')[1]
    assert "Enter an amount of 0 or more, such as 0.05." in charge


# --- charge filters and locked fields --------------------------------------------------------


class FormFields(HTMLParser):
    """The fields a browser would post from the first <form> of a page, as (name, value) pairs:
    inputs (ticked boxes only), selected options, textareas; disabled fields left out."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "disabled" in a:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.pairs.append((a["name"], a.get("value") or ""))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self.pairs.append((self._select, a.get("value") or ""))
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self.pairs.append((self._textarea, ""))

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            name, value = self.pairs.pop()
            self.pairs.append((name, value + data.lstrip("\n")))


def posted_form(html: str) -> MultiDict:
    parser = FormFields()
    parser.feed(html)
    return MultiDict(parser.pairs)


def filter_fields(charge, index, values, **fields):
    """Form fields of filter `index` of charge `charge`: values={key: [ticked, …]}."""
    prefix = f"charges-{charge}-filters-{index}-"
    data = MultiDict({prefix + name: value for name, value in fields.items()})
    for key, ticked in values.items():
        for value in ticked:
            data.add(f"{prefix}values-{key}", value)
    return data


def form_data(*parts):
    data = MultiDict()
    for part in parts:
        for name, value in part.items(multi=True) if isinstance(part, MultiDict) else part.items():
            data.add(name, value)
    return data


@pytest.fixture
def compute(org):
    return factories.make_billable_metric(
        org, name="Compute", code="compute", filters=[
            {"key": "region", "values": ["eu", "us"]},
            {"key": "cloud", "values": ["aws", "gcp"]},
        ],
    )  # fmt: skip


def test_create_a_plan_with_charge_filters_and_see_their_prices(agent_client, org, compute):
    form = agent_client.get("/plans/charge-row", query_string={
        "index": "0", "charges-0-billable_metric_id": str(compute.lago_id)})  # fmt: skip
    # Choosing a metric with filters offers to add some.
    assert 'id="add-filter-0"' in form.text and 'id="charge-0-filters"' in form.text

    response = agent_client.post(
        "/plans/new",
        data=form_data(
            plan_form(),
            charge_fields(0, compute, "graduated", tiers=[("0", "", "1", "")]),
            filter_fields(0, 0, {"region": ["eu"], "cloud": ["__ALL_FILTER_VALUES__"]},
                          invoice_display_name="Compute EU",
                          **{"tiers-0-from_value": "0", "tiers-0-per_unit_amount": "0.8"}),
            # an added row left empty is not sent
            filter_fields(0, 3, {}, **{"tiers-0-from_value": "0"}),
        ),
    )  # fmt: skip

    assert response.status_code == 302, response.text
    [charge] = live_plan(org, "startup").charges
    [charge_filter] = charge.filters
    assert charge_filter.values == {"region": ["eu"], "cloud": ["__ALL_FILTER_VALUES__"]}
    assert charge_filter.invoice_display_name == "Compute EU"
    [tier] = charge_filter.properties["graduated_ranges"]
    assert (tier["from_value"], tier["to_value"], tier["per_unit_amount"]) == (0, None, "0.8")
    page = agent_client.get(f"/plans/{charge.plan.lago_id}").text
    line = page.split('class="charge-filter-line"')[1].split("</section>")[0]
    assert "region" in line and ">eu<" in line and "any value" in line
    assert "0.8" in line and "Compute EU" in line


def test_charge_filters_round_trip_unchanged_through_the_edit_form(agent_client, org, compute):
    plan = factories.make_plan(org, code="grid", charges=[
        {"billable_metric_id": str(compute.lago_id), "charge_model": "package",
         "properties": {"amount": "5", "package_size": 100, "free_units": 0},
         "filters": [
             {"invoice_display_name": "EU", "values": {"region": ["eu"]},
              "properties": {"amount": "6", "package_size": 50, "free_units": 10}},
             {"values": {"region": ["us"], "cloud": ["__ALL_FILTER_VALUES__"]},
              "properties": {"amount": "4", "package_size": 100, "free_units": 0}},
         ]},
    ])  # fmt: skip
    before = [
        (f.lago_id, f.values, f.properties, f.invoice_display_name) for f in plan.charges[0].filters
    ]

    form = agent_client.get(f"/plans/{plan.lago_id}/edit")
    assert len(re.findall(r'<fieldset class="charge-filter[" ]', form.text)) == 2
    response = agent_client.post(f"/plans/{plan.lago_id}/edit", data=posted_form(form.text))

    assert response.status_code == 302, response.text
    after = [
        (f.lago_id, f.values, f.properties, f.invoice_display_name)
        for f in live_plan(org, "grid").charges[0].filters
    ]
    assert after == before


def test_removing_a_filter_row_removes_the_filter(agent_client, org, compute):
    plan = factories.make_plan(org, code="grid", charges=[
        {"billable_metric_id": str(compute.lago_id), "charge_model": "standard",
         "properties": {"amount": "1"},
         "filters": [{"values": {"region": ["eu"]}, "properties": {"amount": "2"}},
                     {"values": {"region": ["us"]}, "properties": {"amount": "3"}}]},
    ])  # fmt: skip
    data = posted_form(agent_client.get(f"/plans/{plan.lago_id}/edit").text)
    for name in [n for n in data if n.startswith("charges-0-filters-0-")]:
        del data[name]

    assert agent_client.post(f"/plans/{plan.lago_id}/edit", data=data).status_code == 302
    [kept] = live_plan(org, "grid").charges[0].filters
    assert kept.values == {"region": ["us"]} and kept.properties == {"amount": "3"}


def test_filter_errors_appear_on_the_right_filter_and_field(agent_client, org, compute):
    response = agent_client.post(
        "/plans/new",
        data=form_data(
            plan_form(),
            charge_fields(0, compute, "standard", amount="1"),
            filter_fields(0, 0, {"region": ["eu"]}, amount="2"),
            filter_fields(0, 1, {}, amount="abc", invoice_display_name="Nowhere"),
        ),
        htmx=True,
    )

    assert response.status_code == 422
    filters = response.text.split('<fieldset class="charge-filter')[1:]
    assert len(filters) == 2
    assert "field-error" not in filters[0]
    values, amount = filters[1].split('id="charges-0-filters-1-amount"')
    assert "Choose at least one value" in values
    assert "Enter an amount of 0 or more" in amount
    assert 'value="Nowhere"' in filters[1]
    assert live_plan(org, "startup") is None


def test_add_a_filter_row_with_and_without_javascript(agent_client, org, compute):
    added = agent_client.get("/plans/charge-filter-row", htmx=True, query_string={
        "index": "2", "filter_index": "1", "charges-2-billable_metric_id": str(compute.lago_id),
        "charges-2-charge_model": "percentage"})  # fmt: skip
    assert 'id="charge-2-filter-1"' in added.text
    assert 'name="charges-2-filters-1-values-cloud" value="aws"' in added.text
    assert 'name="charges-2-filters-1-rate"' in added.text
    assert 'id="add-filter-2"' in added.text and "filter_index=2" in added.text

    response = agent_client.post("/plans/new", data={
        **plan_form(), **charge_fields(0, compute, "standard", amount="1"),
        "form_action": "add_filter:0"})  # fmt: skip
    assert response.status_code == 200
    assert 'id="charge-0-filter-0"' in response.text and live_plan(org, "startup") is None


def test_a_plan_with_live_subscriptions_shows_its_terms_locked(agent_client, org):
    plan = factories.make_plan(org, code="busy", charges=[])
    factories.make_subscription(org, plan=plan)

    form = agent_client.get(f"/plans/{plan.lago_id}/edit").text
    assert form.count("Locked: used by 1 active subscription.") == 4
    assert re.search(r'<input[^>]*id="code"[^>]*readonly', form)
    assert re.search(
        r'<select[^>]*disabled[^>]*id="interval"|<select[^>]*id="interval"[^>]*disabled', form
    )

    # The locked fields are not posted (or tampered with): the stored ones are kept.
    data = posted_form(form)
    data["code"] = "renamed"
    data["name"] = "Busy plan"
    assert agent_client.post(f"/plans/{plan.lago_id}/edit", data=data).status_code == 302
    plan = live_plan(org, "busy")
    assert (plan.name, plan.interval, plan.amount_currency) == ("Busy plan", "monthly", "EUR")
    assert "Locked" not in agent_client.get(
        f"/plans/{factories.make_plan(org, charges=[]).lago_id}/edit").text  # fmt: skip


def test_a_metric_in_use_shows_its_aggregation_locked(agent_client, org):
    metric = factories.make_billable_metric(org, code="gb", aggregation_type="sum_agg")
    plan = factories.make_plan(org, charges=[
        {"billable_metric_id": str(metric.lago_id), "charge_model": "standard",
         "properties": {"amount": "1"}}])  # fmt: skip
    factories.make_subscription(org, plan=plan)
    factories.make_subscription(org, plan=plan)

    form = agent_client.get(f"/billable-metrics/{metric.lago_id}/edit").text
    assert form.count("Locked: used by 2 active subscriptions.") == 4
    assert re.search(r'<input[^>]*id="code"[^>]*readonly', form)

    data = posted_form(form)
    data["name"] = "Gigabytes"
    data["code"] = "renamed"
    assert (
        agent_client.post(f"/billable-metrics/{metric.lago_id}/edit", data=data).status_code == 302
    )
    assert live_metric(org, "gb").name == "Gigabytes"
