"""The console's subscriptions & usage tab, as a support agent uses it: assign a plan, change it,
terminate or cancel, read the period's usage and chart, and debug the customer's events."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from billing.models import Subscription
from billing.services.events import ingest_events
from billing.timeutil import set_clock
from extensions import db
from tests import factories
from tests.usage_helpers import event, unix

#: the frozen "now" of these tests: 15 May 2026, noon UTC (14:00 in Paris)
NOW = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(db_session):
    set_clock(lambda: NOW)
    yield
    set_clock(None)


@pytest.fixture
def customer(org):
    return factories.make_customer(
        org, external_id="acme", name="Acme", currency="EUR", timezone="Europe/Paris"
    )


@pytest.fixture
def metric(org):
    return factories.make_billable_metric(org, name="API calls", code="api_calls")


def plan_with(org, metric, **overrides):
    charges = [
        {
            "billable_metric_id": str(metric.lago_id),
            "charge_model": "standard",
            "properties": {"amount": "0.5"},
        }
    ]
    return factories.make_plan(org, charges=charges, **overrides)


@pytest.fixture
def starter(org, metric):
    return plan_with(org, metric, name="Starter", code="starter", amount_cents=1000)


@pytest.fixture
def pro(org, metric):
    return plan_with(org, metric, name="Pro", code="pro", amount_cents=5000)


def subscribe(org, customer, plan, external_id="sub-acme", **overrides):
    """A subscription through the service, from 1 May in Paris unless told otherwise."""
    overrides.setdefault("subscription_at", "2026-05-01T00:00:00+02:00")
    return factories.make_subscription(org, customer, plan, external_id=external_id, **overrides)


def tab(agent_client, customer, **kwargs):
    return agent_client.get(f"/customers/{customer.lago_id}/subscriptions", **kwargs)


def subscriptions_of(customer):
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Subscription)
            .where(Subscription.customer_id == customer.id)
            .order_by(Subscription.id)
        )
    )


def assign_form(plan_code="starter", **fields):
    return {
        "plan_code": plan_code,
        "external_id": "",
        "name": "",
        "billing_time": "calendar",
        "subscription_at": "2026-05-15",
        **fields,
    }


# --- assign a plan ---------------------------------------------------------------------------


def test_empty_tab_tells_the_agent_to_assign_a_plan(agent_client, customer, starter):
    response = tab(agent_client, customer)

    assert response.status_code == 200
    assert "No subscriptions yet" in response.text
    assert "Assign plan" in response.text
    assert "No events yet" in response.text


def test_assign_form_lists_live_plans_with_interval_and_price(agent_client, customer, starter):
    response = agent_client.get(f"/customers/{customer.lago_id}/subscriptions/new")

    assert response.status_code == 200
    assert "Starter — Monthly · €10.00" in response.text
    assert 'value="2026-05-15"' in response.text  # today in Paris


def test_assigning_today_starts_an_active_subscription_with_a_generated_id(
    agent_client, customer, starter
):
    response = agent_client.post(
        f"/customers/{customer.lago_id}/subscriptions/new", data=assign_form("starter")
    )

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/customers/{customer.lago_id}/subscriptions")
    [subscription] = subscriptions_of(customer)
    assert subscription.status == "active"
    assert re.fullmatch(r"sub_[0-9A-Z]{26}", subscription.external_id)
    page = agent_client.get(response.headers["Location"])
    assert "it is active" in page.text
    assert subscription.external_id in page.text
    assert "2026-05-15 → 2026-05-31" in page.text  # a partial first calendar period
    assert "2026-06-01" in page.text  # next billing date


def test_a_future_start_date_leaves_the_subscription_pending(agent_client, customer, starter):
    response = agent_client.post(
        f"/customers/{customer.lago_id}/subscriptions/new",
        data=assign_form("starter", external_id="later", subscription_at="2026-06-10"),
        follow_redirects=True,
    )

    [subscription] = subscriptions_of(customer)
    assert subscription.status == "pending"
    assert subscription.subscription_at == datetime(2026, 6, 9, 22, 0, tzinfo=UTC)  # Paris midnight
    assert "it starts on 2026-06-10" in response.text
    assert "status-pending" in response.text
    assert "Cancel…" in response.text


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"plan_code": ""}, "plan_code", "Choose a plan from the list."),
        ({"plan_code": "nope"}, "plan_code", "Choose a plan from the list."),
        ({"external_id": "x" * 256}, "external_id", "Field cannot be longer than 255 characters."),
        ({"billing_time": "weekly"}, "billing_time", "Choose calendar or anniversary."),
        ({"subscription_at": "15/05/2026"}, "subscription_at", "Not a valid date value."),
    ],
)
def test_invalid_assignments_show_the_message_next_to_the_field(
    agent_client, customer, starter, fields, field_id, message
):
    response = agent_client.post(
        f"/customers/{customer.lago_id}/subscriptions/new",
        data=assign_form(**fields),
        htmx=True,
    )

    assert response.status_code == 422
    assert "<html" not in response.text
    assert 'id="assign-plan-form"' in response.text
    field = re.search(rf'id="field-{field_id}".*?</div>', response.text, re.S)
    assert field and message in field.group(0)
    assert subscriptions_of(customer) == []


def test_an_external_id_of_another_customer_is_refused(agent_client, org, customer, starter):
    other = factories.make_customer(org, currency="EUR")
    subscribe(org, other, starter, external_id="taken")

    response = agent_client.post(
        f"/customers/{customer.lago_id}/subscriptions/new",
        data=assign_form("starter", external_id="taken"),
    )

    assert response.status_code == 422
    assert "Another customer&#39;s subscription already uses this external id." in response.text
    assert subscriptions_of(customer) == []


def test_a_plan_in_another_currency_is_refused_clearly(agent_client, org, customer, metric):
    plan_with(org, metric, name="US plan", code="us_plan", amount_currency="USD")

    response = agent_client.post(
        f"/customers/{customer.lago_id}/subscriptions/new", data=assign_form("us_plan")
    )

    assert response.status_code == 422
    assert "This plan is priced in USD but Acme is billed in EUR" in response.text
    assert subscriptions_of(customer) == []


# --- change plan -----------------------------------------------------------------------------


def test_an_upgrade_replaces_the_subscription_now(agent_client, org, customer, starter, pro):
    current = subscribe(org, customer, starter)
    form = agent_client.get(
        f"/customers/{customer.lago_id}/subscriptions/{current.lago_id}/change-plan", htmx=True
    )
    assert "Pro — Monthly · €50.00 (upgrade: now)" in form.text
    assert "waits for the end of the current period" in form.text

    response = agent_client.post(
        f"/customers/{customer.lago_id}/subscriptions/{current.lago_id}/change-plan",
        data={"plan_code": "pro"},
        htmx=True,
    )

    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/customers/{customer.lago_id}/subscriptions"
    old, new = subscriptions_of(customer)
    assert (old.status, new.status) == ("terminated", "active")
    assert new.plan_id == pro.id and new.external_id == "sub-acme"
    page = tab(agent_client, customer)
    assert "Upgraded now: sub-acme moved from Starter to Pro." in page.text


def test_a_downgrade_shows_the_scheduled_switch(agent_client, org, customer, starter, pro):
    current = subscribe(org, customer, pro)

    agent_client.post(
        f"/customers/{customer.lago_id}/subscriptions/{current.lago_id}/change-plan",
        data={"plan_code": "starter"},
    )

    page = tab(agent_client, customer)
    assert "Switches to <strong>Starter</strong> on 2026-06-01" in page.text
    assert subscriptions_of(customer)[0].status == "active"
    # the pending downgrade shows on its card, not as a card of its own
    assert page.text.count('class="subscription-card ') == 1


# --- terminate and cancel --------------------------------------------------------------------


def test_terminate_asks_first_then_ends_the_subscription(agent_client, org, customer, starter):
    current = subscribe(org, customer, starter)
    url = f"/customers/{customer.lago_id}/subscriptions/{current.lago_id}/terminate"
    assert 'hx-confirm="Terminate subscription sub-acme now?' in tab(agent_client, customer).text

    confirmation = agent_client.get(url)
    assert confirmation.status_code == 200
    assert "Terminate subscription <code>sub-acme</code>?" in confirmation.text
    unticked = agent_client.post(url, data={})
    assert unticked.status_code == 422
    assert subscriptions_of(customer)[0].status == "active"

    response = agent_client.post(url, data={"confirm": "y"}, follow_redirects=True)

    assert subscriptions_of(customer)[0].status == "terminated"
    assert "Subscription sub-acme terminated." in response.text
    assert "status-terminated" in response.text  # still shown, recently ended
    header = response.text.split('<nav class="tabs"', 1)[0]
    assert re.search(r"Active plans</dt><dd[^>]*><span class=\"muted\">None", header)


def test_a_pending_subscription_is_canceled(agent_client, org, customer, starter):
    pending = subscribe(org, customer, starter, subscription_at="2026-07-01T00:00:00Z")
    url = f"/customers/{customer.lago_id}/subscriptions/{pending.lago_id}/terminate"
    assert "Cancel subscription" in agent_client.get(url).text

    agent_client.post(url, data={"confirm": "y"})

    assert subscriptions_of(customer)[0].status == "canceled"


# --- usage, chart, header --------------------------------------------------------------------


@pytest.fixture
def metered(org, customer, starter):
    """An active subscription with three events this period (7 units) and one last month."""
    subscription = subscribe(org, customer, starter)
    ingest_events(
        org,
        [
            event(subscription, "api_calls", "t1", timestamp=unix(datetime(2026, 5, 3, 9, tzinfo=UTC)), properties={"value": 3}),  # noqa: E501
            event(subscription, "api_calls", "t2", timestamp=unix(datetime(2026, 5, 10, 9, tzinfo=UTC)), properties={"value": 2}),  # noqa: E501
            event(subscription, "api_calls", "t3", timestamp=unix(datetime(2026, 5, 10, 23, tzinfo=UTC)), properties={"value": 2}),  # noqa: E501
        ],
    )  # fmt: skip
    db.session.commit()
    return subscription


def test_usage_shows_units_and_amounts_of_the_period(agent_client, customer, metered):
    page = tab(agent_client, customer).text

    row = re.search(r'<tr class="charge-line">.*?</tr>', page, re.S).group(0)
    assert "API calls" in row and "Standard" in row
    assert ">3<" in row  # events
    assert ">7<" in row  # units
    assert "€3.50" in row
    assert re.search(r'class="numeric usage-total">€3.50<', page)


def test_the_chart_has_one_bar_per_local_day_of_the_period(agent_client, customer, metered):
    page = tab(agent_client, customer).text

    assert page.count('class="chart-bar"') == 31  # May, in Paris
    assert "<title>Sun 2026-05-03: 3</title>" in page
    # 23:00 UTC on the 10th is the 11th in Paris: each local day has its own bar
    assert "<title>Sun 2026-05-10: 2</title>" in page
    assert "<title>Mon 2026-05-11: 2</title>" in page
    assert " style=" not in page


def test_chart_captions_give_the_period_units_in_the_metric_terms(org, agent_client, customer):
    """Daily bars add up for a sum; for a peak metric the caption is the peak, not their sum."""
    calls = factories.make_billable_metric(org, name="API calls", code="api_calls")
    storage = factories.make_billable_metric(
        org, name="Storage", code="storage", aggregation_type="max_agg", field_name="gb"
    )
    plan = factories.make_plan(
        org, code="mixed", charges=[
            {"billable_metric_id": str(metric.lago_id), "charge_model": "standard",
             "properties": {"amount": "1"}}
            for metric in (calls, storage)
        ],
    )  # fmt: skip
    subscription = subscribe(org, customer, plan)
    ingest_events(org, [
        event(subscription, code, f"{code}-{day}",
              timestamp=unix(datetime(2026, 5, day, 9, tzinfo=UTC)),
              properties={"value": value, "gb": value})
        for code in ("api_calls", "storage") for day, value in ((3, 5), (4, 9), (5, 4))
    ])  # fmt: skip
    db.session.commit()

    page = tab(agent_client, customer).text

    assert "API calls per day <small>· 18 in the period so far</small>" in page
    assert "Storage per day <small>· 9 at the peak of the period</small>" in page


def test_the_header_shows_the_active_plan_and_the_next_invoice(agent_client, customer, metered):
    page = agent_client.get(f"/customers/{customer.lago_id}").text
    header = page.split('<nav class="tabs"', 1)[0]

    assert re.search(
        r'<dd class="active-plans"><a href="[^"]+/subscriptions#subscription-[^"]+"', header
    )
    assert ">Starter</a>" in header
    assert '<time datetime="2026-06-01"' in header
    assert "Europe/Paris" in header
    assert f"/customers/{customer.lago_id}/subscriptions/new" in header  # Actions → Assign plan


# --- events debugger -------------------------------------------------------------------------


def test_the_debugger_lists_rejected_events_with_their_reason(org, agent_client, customer, metered):
    ingest_events(
        org,
        [
            event(metered, "unknown_metric", "bad-code"),
            # before the subscription started: no subscription matched, so no customer either
            event(metered, "api_calls", "too-early",
                  timestamp=unix(datetime(2026, 4, 20, tzinfo=UTC)), properties={"value": 1}),
            event(metered, "api_calls", "no-value", properties={"value": "many"}),
        ],
    )  # fmt: skip
    db.session.commit()

    response = agent_client.get(f"/customers/{customer.lago_id}/events", htmx=True)

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="events-debugger"')
    rejected = response.text.split("Latest events")[0]
    assert "Metric not found: no billable metric has the code “unknown_metric”." in rejected
    assert "Subscription not found: no subscription with external id “sub-acme”" in rejected
    assert "Invalid field value: the metric needs a number in properties.value." in rejected
    latest = response.text.split("Latest events")[1]
    assert "value=3" in latest and "t1" in latest


def test_the_debugger_refreshes_itself_only_when_asked(agent_client, customer, metered):
    assert 'hx-trigger="every' not in tab(agent_client, customer).text

    live = agent_client.get(f"/customers/{customer.lago_id}/events?live=1", htmx=True)

    assert 'hx-trigger="every 10s"' in live.text
    without_js = agent_client.get(f"/customers/{customer.lago_id}/events")
    assert without_js.status_code == 302
    assert without_js.headers["Location"].endswith("/subscriptions#events-debugger")


# --- roles and tenancy -----------------------------------------------------------------------


def test_viewers_see_everything_but_cannot_change_anything(
    make_agent_client, org, customer, metered, starter
):
    viewer = make_agent_client("viewer")
    page = tab(viewer, customer).text
    assert "€3.50" in page and "Events debugger" in page
    assert "Assign plan" not in page and "Change plan" not in page and "Terminate" not in page

    base = f"/customers/{customer.lago_id}/subscriptions"
    for url, data in [
        (f"{base}/new", assign_form("starter")),
        (f"{base}/{metered.lago_id}/change-plan", {"plan_code": "starter"}),
        (f"{base}/{metered.lago_id}/terminate", {"confirm": "y"}),
    ]:
        assert viewer.post(url, data=data).status_code == 403
    assert subscriptions_of(customer)[0].status == "active"


def test_another_organizations_customer_and_subscription_do_not_exist(
    agent_client, org, customer, starter
):
    other_org = factories.make_organization()
    stranger = factories.make_customer(other_org, currency="EUR")
    foreign = factories.make_subscription(other_org, stranger)
    neighbour = factories.make_customer(org, currency="EUR")
    not_this_customers = subscribe(org, neighbour, starter, external_id="neighbour")

    for url in (
        f"/customers/{stranger.lago_id}/subscriptions",
        f"/customers/{stranger.lago_id}/subscriptions/new",
        f"/customers/{stranger.lago_id}/events",
        f"/customers/{customer.lago_id}/subscriptions/{foreign.lago_id}/terminate",
        f"/customers/{customer.lago_id}/subscriptions/{not_this_customers.lago_id}/change-plan",
    ):
        assert agent_client.get(url).status_code == 404, url
    response = agent_client.post(
        f"/customers/{customer.lago_id}/subscriptions/{foreign.lago_id}/terminate",
        data={"confirm": "y"},
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert foreign.status == "active"


def test_deleting_the_customer_lists_its_subscriptions(agent_client, org, customer, metered):
    page = agent_client.get(f"/customers/{customer.lago_id}/delete")

    assert "Subscription sub-acme to Starter is terminated and its last period billed." in page.text
