"""Contract tests: coupons and applied coupons driven only through the official SDK
(lago-python-client 1.55.0) against a live Ledgerline (lago-sdk-notes.md §4.7). Each test works
in an organization of its own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from lago_python_client.client import Client
from lago_python_client.models import AppliedCoupon, Coupon, Customer, LimitationConfiguration

from tests.test_sdk_contract import api_error, validation_body

pytestmark = pytest.mark.live


@pytest.fixture
def sdk(live_server: Any) -> Client:
    _organization_id, raw_key = live_server.new_organization()
    return Client(api_key=raw_key, api_url=live_server.url)


def test_coupon_lifecycle(sdk: Client) -> None:
    code = f"welcome_{uuid.uuid4().hex[:6]}"
    created = sdk.coupons.create(
        Coupon(
            name="Welcome",
            code=code,
            coupon_type="percentage",
            percentage_rate="12.5",
            frequency="recurring",
            frequency_duration=3,
            reusable=False,
            expiration="no_expiration",
            applies_to=LimitationConfiguration(plan_codes=[], billable_metric_codes=[]),
        )
    )
    assert (created.code, created.percentage_rate, created.frequency_duration) == (
        code,
        12.5,  # the SDK reads the API's decimal string "12.5" as a float
        3,
    )
    assert sdk.coupons.find(code).lago_id == created.lago_id
    assert code in [c.code for c in sdk.coupons.find_all()["coupons"]]
    assert sdk.coupons.update(Coupon(name="Hello"), code).name == "Hello"

    duplicate = api_error(
        lambda: sdk.coupons.create(
            Coupon(
                name="x",
                code=code,
                coupon_type="percentage",
                percentage_rate="5",
                frequency="once",
                expiration="no_expiration",
            )
        )
    )  # noqa: E501
    assert duplicate.response == validation_body({"code": ["value_already_exist"]})

    assert sdk.coupons.destroy(code).terminated_at is not None
    assert api_error(lambda: sdk.coupons.find(code)).response["code"] == "coupon_not_found"


def test_applied_coupon_lifecycle(sdk: Client) -> None:
    sdk.customers.create(Customer(external_id="acme", currency="EUR"))
    sdk.coupons.create(
        Coupon(
            name="Ten euros",
            code="ten",
            coupon_type="fixed_amount",
            amount_cents=1000,
            amount_currency="EUR",
            frequency="once",
            expiration="no_expiration",
        )
    )
    sdk.coupons.create(
        Coupon(
            name="Ten dollars",
            code="dollars",
            coupon_type="fixed_amount",
            amount_cents=1000,
            amount_currency="USD",
            frequency="once",
            expiration="no_expiration",
        )
    )

    applied = sdk.applied_coupons.create(
        AppliedCoupon(external_customer_id="acme", coupon_code="ten", amount_cents=400)
    )

    assert (applied.coupon_code, applied.external_customer_id) == ("ten", "acme")
    assert (applied.amount_cents, applied.amount_cents_remaining) == (400, 400)
    found = sdk.applied_coupons.find_all({"external_customer_id": "acme", "status": "active"})
    assert [a.lago_id for a in found["applied_coupons"]] == [applied.lago_id]
    mismatch = api_error(
        lambda: sdk.applied_coupons.create(
            AppliedCoupon(external_customer_id="acme", coupon_code="dollars")
        )
    )
    assert mismatch.response == validation_body({"currency": ["currencies_does_not_match"]})
    unknown = api_error(
        lambda: sdk.applied_coupons.create(
            AppliedCoupon(external_customer_id="nobody", coupon_code="ten")
        )
    )
    assert unknown.response["code"] == "customer_not_found"

    removed = sdk.applied_coupons.destroy("acme", applied.lago_id)

    assert removed.status == "terminated"
