"""The console's coupons page and the customer's "Wallet & coupons" tab, as an agent uses them;
what the agent does is in the audit log under their name."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from billing.models import AppliedCoupon, Coupon
from billing.services import coupons as coupon_service
from extensions import db
from tests import factories


def coupon_form(**overrides):
    return {
        "name": "Welcome",
        "code": "welcome",
        "coupon_type": "fixed_amount",
        "amount": "10.50",
        "amount_currency": "EUR",
        "percentage_rate": "",
        "frequency": "once",
        "frequency_duration": "",
        "reusable": "y",
        "expiration_at": "",
        "plan_codes": "",
        "billable_metric_codes": "",
        **overrides,
    }


def make_coupon(org, **fields):
    payload = {"name": "Welcome", "code": "welcome", "coupon_type": "fixed_amount",
               "amount_cents": 1050, "amount_currency": "EUR"} | fields  # fmt: skip
    coupon = coupon_service.create_coupon(org, payload, factories.TEST_ACTOR)
    db.session.commit()
    return coupon


def test_create_list_edit_and_terminate(agent_client, org):
    plan = factories.make_plan(org)

    response = agent_client.post("/coupons/new", data=coupon_form(plan_codes=plan.code))

    assert response.status_code == 302
    coupon = db.session.scalar(select(Coupon).where(Coupon.organization_id == org.id))
    assert (coupon.amount_cents, coupon.amount_currency, coupon.limited_plans) == (
        1050,
        "EUR",
        True,
    )
    page = agent_client.get("/coupons").text
    assert "welcome" in page and "€10.50, once" in page and plan.code in page

    edit = agent_client.post(
        f"/coupons/{coupon.lago_id}/edit",
        data=coupon_form(
            name="Hello",
            coupon_type="percentage",
            percentage_rate="12.5",
            frequency="recurring",
            frequency_duration="3",
        ),  # fmt: skip
    )
    assert edit.status_code == 302
    db.session.refresh(coupon)
    assert (coupon.name, coupon.percentage_rate, coupon.amount_cents) == ("Hello", 12.5, None)
    assert "12.5 %, 3 invoices" in agent_client.get("/coupons").text

    assert agent_client.post(f"/coupons/{coupon.lago_id}/terminate").status_code == 302
    db.session.refresh(coupon)
    assert coupon.status == "terminated"
    assert [what[:2] for what in factories.console_activity(agent_client.agent)] == [
        ("coupon.created", str(coupon.lago_id)),
        ("coupon.updated", str(coupon.lago_id)),
        ("coupon.terminated", str(coupon.lago_id)),
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"amount": ""}, "Enter the amount taken off."),
        ({"amount": "ten"}, "Enter an amount such as 10.50."),
        ({"coupon_type": "percentage", "percentage_rate": "150"},
         "Enter a percentage above 0 and up to 100."),
        ({"frequency": "recurring"}, "Enter how many invoices it applies to."),
        ({"expiration_at": "2000-01-01"}, "Choose a date in the future."),
        ({"plan_codes": "nope"}, "One of the plan codes does not exist."),
    ],
)  # fmt: skip
def test_form_errors_show_next_to_fields(agent_client, org, overrides, message):
    response = agent_client.post("/coupons/new", data=coupon_form(**overrides), htmx=True)

    assert response.status_code == 422
    assert message in response.text
    assert (
        db.session.scalar(select(func.count(Coupon.id)).where(Coupon.organization_id == org.id))
        == 0
    )


def test_duplicate_code(agent_client, org):
    make_coupon(org)
    response = agent_client.post("/coupons/new", data=coupon_form(), htmx=True)
    assert response.status_code == 422
    assert "Another coupon already uses this code." in response.text


def test_customer_tab_apply_list_and_remove(agent_client, org):
    customer = factories.make_customer(org, currency="EUR")
    make_coupon(org)
    tab = f"/customers/{customer.lago_id}/wallet"
    assert "No coupon applied." in agent_client.get(tab).text

    response = agent_client.post(
        f"/customers/{customer.lago_id}/coupons",
        data={"coupon_code": "welcome", "amount": "4.00", "percentage_rate": ""},
    )

    assert response.status_code == 302
    page = agent_client.get(tab).text
    assert "€4.00, once" in page and "Remove" in page
    applied = db.session.scalar(
        select(AppliedCoupon).where(AppliedCoupon.customer_id == customer.id)
    )
    assert applied.amount_cents_remaining == 400

    removed = agent_client.post(f"/customers/{customer.lago_id}/coupons/{applied.lago_id}/remove")
    assert removed.status_code == 302
    db.session.refresh(applied)
    assert applied.status == "terminated"
    assert [what[:2] for what in factories.console_activity(agent_client.agent)] == [
        ("applied_coupon.created", str(applied.lago_id)),
        ("applied_coupon.terminated", str(applied.lago_id)),
    ]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other currency", "This coupon is in another currency than the customer&#39;s."),
        ("no coupon", "Choose a coupon."),
        ("applied twice", "This coupon cannot be applied twice to the same customer."),
    ],
)
def test_apply_errors_re_render_the_form(agent_client, org, case, message):
    customer = factories.make_customer(org, currency="EUR")
    code = "welcome"
    if case == "other currency":
        make_coupon(org, code="dollars", amount_currency="USD")
        code = "dollars"
    else:
        make_coupon(org, reusable=False)
    if case == "no coupon":
        code = ""
    if case == "applied twice":
        coupon_service.apply_coupon(
            org,
            {"external_customer_id": customer.external_id, "coupon_code": "welcome"},
            factories.TEST_ACTOR,
        )
        db.session.commit()
    before = db.session.scalar(select(func.count(AppliedCoupon.id)))

    response = agent_client.post(
        f"/customers/{customer.lago_id}/coupons", data={"coupon_code": code}, htmx=True
    )

    assert response.status_code == 422
    assert message in response.text
    assert re.search(r'id="customer-coupons"', response.text)
    assert db.session.scalar(select(func.count(AppliedCoupon.id))) == before
    assert factories.console_activity(agent_client.agent) == []


def test_viewers_see_coupons_but_cannot_change_them(make_agent_client, org):
    viewer = make_agent_client("viewer")
    customer = factories.make_customer(org, currency="EUR")
    make_coupon(org)
    assert "New coupon" not in viewer.get("/coupons").text
    assert "Apply coupon" not in viewer.get(f"/customers/{customer.lago_id}/wallet").text
    refused = viewer.post(f"/customers/{customer.lago_id}/coupons", data={"coupon_code": "welcome"})
    assert refused.status_code == 403


def test_delete_preview_lists_applied_coupons(agent_client, org):
    customer = factories.make_customer(org, currency="EUR")
    make_coupon(org)
    coupon_service.apply_coupon(
        org,
        {"external_customer_id": customer.external_id, "coupon_code": "welcome"},
        factories.TEST_ACTOR,
    )
    db.session.commit()
    page = agent_client.get(f"/customers/{customer.lago_id}/delete").text
    assert "Coupon welcome (€10.50, once) is terminated." in page


def test_an_applied_coupon_keeps_its_terms_but_can_be_renamed(agent_client, org):
    customer = factories.make_customer(org, currency="EUR")
    coupon = make_coupon(org)
    coupon_service.apply_coupon(
        org,
        {"external_customer_id": customer.external_id, "coupon_code": "welcome"},
        factories.TEST_ACTOR,
    )
    db.session.commit()
    form = agent_client.get(f"/coupons/{coupon.lago_id}/edit").text
    assert "Locked: customers have this coupon applied." in form

    # the disabled fieldset posts nothing of the terms
    response = agent_client.post(
        f"/coupons/{coupon.lago_id}/edit",
        data={"name": "Renamed", "code": "welcome", "description": "", "expiration_at": ""},
    )

    assert response.status_code == 302
    db.session.refresh(coupon)
    assert (coupon.name, coupon.amount_cents, coupon.coupon_type) == (
        "Renamed",
        1050,
        "fixed_amount",
    )
