"""Contract tests: subscriptions through the official Lago SDK (lago-python-client 1.55.0)
against a live Ledgerline, and concurrent creations over real HTTP.

Each test works in an organization of its own; plans are made in the server's database (the
plans API is someone else's contract test).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from lago_python_client.client import Client
from lago_python_client.models import Subscription as SdkSubscription
from sqlalchemy import func, select

from billing.models import Organization, Subscription
from extensions import db
from tests import factories
from tests.test_sdk_contract import api_error, ext_id

pytestmark = pytest.mark.live


class Sandbox:
    """An organization of its own on the live server: its SDK client and plan factory."""

    def __init__(self, live_server: Any) -> None:
        self.live_server = live_server
        self.organization_id, self.raw_key = live_server.new_organization()
        self.client = Client(api_key=self.raw_key, api_url=live_server.url)

    def plan(self, code: str, **attributes: Any) -> str:
        with self.live_server.app.app_context():
            organization = db.session.get_one(Organization, self.organization_id)
            factories.make_plan(organization, charges=[], code=code, **attributes)
        return code


@pytest.fixture
def sandbox(live_server: Any) -> Sandbox:
    return Sandbox(live_server)


def test_create_find_update_destroy(sandbox):
    plan = sandbox.plan("basic", amount_currency="USD")
    customer_id, subscription_id = ext_id("cus"), ext_id()

    created = sandbox.client.subscriptions.create(
        SdkSubscription(
            external_customer_id=customer_id,
            plan_code=plan,
            external_id=subscription_id,
            name="Main",
            billing_time="anniversary",
        )
    )
    found = sandbox.client.subscriptions.find(subscription_id)
    updated = sandbox.client.subscriptions.update(
        SdkSubscription(name="Renamed", ending_at="2099-01-01T00:00:00Z"), subscription_id
    )
    terminated = sandbox.client.subscriptions.destroy(subscription_id)

    assert created.status == "active"
    assert created.external_customer_id == customer_id
    assert (created.plan_code, created.plan_amount_currency) == ("basic", "USD")
    assert created.billing_time == "anniversary"
    assert created.current_billing_period_started_at is not None
    assert found.lago_id == created.lago_id
    assert (updated.name, updated.ending_at) == ("Renamed", "2099-01-01T00:00:00Z")
    assert terminated.status == "terminated" and terminated.terminated_at is not None
    customer = sandbox.client.customers.find(customer_id)
    assert customer.currency == "USD"


def test_find_all_filters_and_pending_lookup(sandbox):
    basic, other = sandbox.plan("basic"), sandbox.plan("other")
    customer_id = ext_id("cus")
    sandbox.client.subscriptions.create(
        SdkSubscription(external_customer_id=customer_id, plan_code=basic, external_id="a")
    )
    sandbox.client.subscriptions.create(
        SdkSubscription(external_customer_id=ext_id("cus"), plan_code=other, external_id="b")
    )
    sandbox.client.subscriptions.create(
        SdkSubscription(
            external_customer_id=customer_id,
            plan_code=basic,
            external_id="later",
            subscription_at="2099-01-01T00:00:00Z",
        )
    )

    everything = sandbox.client.subscriptions.find_all()
    mine = sandbox.client.subscriptions.find_all(
        {"external_customer_id": customer_id, "status[]": ["active", "pending"]}
    )
    pending = sandbox.client.subscriptions.find("later", params={"status": "pending"})
    canceled = sandbox.client.subscriptions.destroy("later", options={"status": "pending"})

    assert sorted(s.external_id for s in everything["subscriptions"]) == ["a", "b"]
    assert everything["meta"]["total_count"] == 2
    assert sorted(s.external_id for s in mine["subscriptions"]) == ["a", "later"]
    assert pending.status == "pending"
    assert canceled.status == "canceled"


def test_errors_reach_the_sdk_as_lago_errors(sandbox):
    plan = sandbox.plan("basic")

    unknown_plan = api_error(
        lambda: sandbox.client.subscriptions.create(
            SdkSubscription(external_customer_id="c", plan_code="nope", external_id="s")
        )
    )
    bad_billing_time = api_error(
        lambda: sandbox.client.subscriptions.create(
            SdkSubscription(
                external_customer_id="c", plan_code=plan, external_id="s", billing_time="daily"
            )
        )
    )
    missing = api_error(lambda: sandbox.client.subscriptions.find("nope"))

    assert (unknown_plan.status_code, unknown_plan.response["code"]) == (404, "plan_not_found")
    assert bad_billing_time.status_code == 422
    assert bad_billing_time.response["error_details"] == {"billing_time": ["value_is_invalid"]}
    assert (missing.status_code, missing.response["code"]) == (404, "subscription_not_found")


def test_plan_change_through_the_sdk(sandbox):
    sandbox.plan("pro", amount_cents=5000)
    sandbox.plan("basic", amount_cents=1000)
    sandbox.plan("max", amount_cents=9000)
    customer_id = ext_id("cus")

    def post(plan_code: str) -> Any:
        return sandbox.client.subscriptions.create(
            SdkSubscription(external_customer_id=customer_id, plan_code=plan_code, external_id="s")
        )

    first = post("pro")
    downgraded = post("basic")
    upgraded = post("max")

    assert (downgraded.lago_id, downgraded.next_plan_code) == (first.lago_id, "basic")
    assert downgraded.downgrade_plan_date is not None
    assert (upgraded.plan_code, upgraded.previous_plan_code) == ("max", "pro")


def test_concurrent_creations_of_one_external_id_leave_one_active(sandbox):
    plan = sandbox.plan("basic")
    clients = 8

    def create_one(n: int) -> httpx.Response:
        return httpx.post(
            f"{sandbox.live_server.url}/api/v1/subscriptions",
            json={
                "subscription": {
                    "external_customer_id": f"racer-{n % 2}",
                    "plan_code": plan,
                    "external_id": "contested",
                }
            },
            headers={"Authorization": f"Bearer {sandbox.raw_key}"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=clients) as pool:
        responses = list(pool.map(create_one, range(clients)))

    # The winner's customer gets its subscription back (a retried create is safe); the other
    # customer is told the external id is taken.
    assert sorted(r.status_code for r in responses) == [200] * (clients // 2) + [422] * (
        clients // 2
    )
    assert (
        len({r.json()["subscription"]["lago_id"] for r in responses if r.status_code == 200}) == 1
    )
    with sandbox.live_server.app.app_context():
        active = db.session.scalar(
            select(func.count(Subscription.id)).where(
                Subscription.organization_id == sandbox.organization_id,
                Subscription.external_id == "contested",
                Subscription.status == "active",
            )
        )
    assert active == 1
