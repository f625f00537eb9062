"""/api/v1/plans: plans with embedded and nested charges, charge filters and metadata."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import ActivityLog, Charge, ChargeFilter, Plan
from extensions import db
from tests import factories
from tests.test_api_metrics import count, details, subscribe

PLAN_KEYS = {
    "lago_id", "name", "invoice_display_name", "created_at", "code", "interval", "description",
    "amount_cents", "amount_currency", "trial_period", "pay_in_advance", "bill_charges_monthly",
    "bill_fixed_charges_monthly", "customers_count", "active_subscriptions_count",
    "draft_invoices_count", "parent_id", "pending_deletion", "charges", "fixed_charges",
    "usage_thresholds", "taxes", "minimum_commitment", "metadata", "tax_codes",
}  # fmt: skip
CHARGE_KEYS = {
    "lago_id", "lago_billable_metric_id", "code", "invoice_display_name", "billable_metric_code",
    "created_at", "charge_model", "invoiceable", "regroup_paid_fees", "pay_in_advance",
    "prorated", "min_amount_cents", "accepts_target_wallet", "properties", "applied_pricing_unit",
    "lago_parent_id", "filters", "taxes", "tax_codes",
}  # fmt: skip
RANGES = [
    {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
    {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "2"},
]
PROPERTIES = {
    "standard": {"amount": "0.25"},
    "graduated": {"graduated_ranges": RANGES},
    "volume": {"volume_ranges": RANGES},
    "package": {"amount": "5", "package_size": 100, "free_units": 10},
    "percentage": {"rate": "1.5", "fixed_amount": "0.1"},
}
URL = "/api/v1/plans"


class One(dict):
    """In a table: a charge on the `metric` fixture with these fields overridden."""


class Two(One):
    """In a table: that charge twice."""


@pytest.fixture
def metric(org: Any) -> Any:
    return factories.make_billable_metric(
        org, code="api_calls", filters=[{"key": "region", "values": ["eu", "us"]}]
    )


def charge(metric: Any, model: str = "standard", **fields: Any) -> dict[str, Any]:
    return {
        "billable_metric_id": str(metric.lago_id),
        "charge_model": model,
        "properties": PROPERTIES[model],
        **fields,
    }


def plan_payload(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Startup",
        "code": "startup",
        "interval": "monthly",
        "amount_cents": 9900,
        "amount_currency": "EUR",
        "pay_in_advance": True,
        **fields,
    }


def create(api_client: Any, **fields: Any) -> Any:
    return api_client.post(URL, json={"plan": plan_payload(**fields)})


def in_org(org: Any) -> Any:
    return ActivityLog.organization_id == org.id


def of_org(org: Any) -> Any:
    """Charges of the organization's plans (live-server tests commit other organizations')."""
    return Charge.plan_id.in_(select(Plan.id).where(Plan.organization_id == org.id))


def stored(org: Any) -> tuple[int, int, int]:
    """Plans, charges and plan audit entries of the organization (nothing-written checks)."""
    plans = count(Plan, Plan.organization_id == org.id)
    charges = db.session.scalar(
        select(func.count(Charge.id)).join(Plan).where(Plan.organization_id == org.id)
    )
    entries = count(
        ActivityLog, ActivityLog.organization_id == org.id, ActivityLog.resource_type == "plan"
    )
    return plans, charges or 0, entries


# --- create ------------------------------------------------------------------------------


def test_create_with_a_charge_of_each_model(api_client, org, metric):
    charges = [charge(metric, model) for model in PROPERTIES]
    factories.make_tax(org, code="vat", name="VAT", rate="20")

    response = create(
        api_client,
        charges=charges,
        trial_period=14,
        description="For small teams",
        tax_codes=["vat"],
        metadata={"tier": "1"},
    )

    assert response.status_code == 200, response.get_json()
    plan = response.get_json()["plan"]
    assert set(plan) == PLAN_KEYS
    assert (plan["interval"], plan["amount_cents"], plan["amount_currency"]) == (
        "monthly", 9900, "EUR"
    )  # fmt: skip
    assert (plan["trial_period"], plan["pay_in_advance"]) == (14, True)
    assert (plan["tax_codes"], plan["metadata"]) == (["vat"], {"tier": "1"})
    assert [(t["code"], t["rate"]) for t in plan["taxes"]] == [("vat", 20.0)]
    assert (plan["customers_count"], plan["active_subscriptions_count"]) == (0, 0)
    assert [c["charge_model"] for c in plan["charges"]] == list(PROPERTIES)
    assert all(set(c) == CHARGE_KEYS for c in plan["charges"])
    assert plan["charges"][1]["properties"] == {"graduated_ranges": RANGES}
    # Codes derived from the metric's, unique in the plan.
    assert [c["code"] for c in plan["charges"]] == [
        "api_calls", "api_calls_2", "api_calls_3", "api_calls_4", "api_calls_5"
    ]  # fmt: skip
    assert plan["charges"][0]["billable_metric_code"] == "api_calls"
    assert plan["charges"][0]["lago_billable_metric_id"] == str(metric.lago_id)
    entry = db.session.scalar(
        select(ActivityLog).where(ActivityLog.resource_type == "plan", in_org(org))
    )
    assert (entry.activity_type, entry.resource_id) == ("plan.created", plan["lago_id"])
    assert entry.customer_id is None


def test_charges_with_filters_codes_and_metric_codes(api_client, metric):
    response = create(
        api_client,
        charges=[
            {
                "billable_metric_code": "api_calls",
                "code": "calls",
                "charge_model": "standard",
                "properties": {"amount": "1"},
                "invoice_display_name": "API calls",
                "min_amount_cents": 500,
                "pay_in_advance": False,
                "filters": [
                    {
                        "invoice_display_name": "Europe",
                        "properties": {"amount": "2"},
                        "values": {"region": ["eu"]},
                    }
                ],
            }
        ],
    )

    created = response.get_json()["plan"]["charges"][0]
    assert (created["code"], created["min_amount_cents"]) == ("calls", 500)
    assert created["filters"][0]["values"] == {"region": ["eu"]}
    assert created["filters"][0]["properties"] == {"amount": "2"}
    assert created["filters"][0]["lago_id"]


def test_a_charge_without_properties_gets_lagos_defaults(api_client, metric):
    response = create(
        api_client,
        charges=[{"billable_metric_id": str(metric.lago_id), "charge_model": "package"}],
    )

    assert response.get_json()["plan"]["charges"][0]["properties"] == {
        "amount": "0", "package_size": 1, "free_units": 0
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": None}, {"name": ["value_is_mandatory"]}),
        ({"code": ""}, {"code": ["value_is_mandatory"]}),
        ({"interval": "daily"}, {"interval": ["value_is_invalid"]}),
        ({"interval": None}, {"interval": ["value_is_mandatory"]}),
        ({"amount_cents": -1}, {"amount_cents": ["value_is_out_of_range"]}),
        ({"amount_cents": "ten"}, {"amount_cents": ["value_is_invalid"]}),
        ({"amount_cents": 1.5}, {"amount_cents": ["value_is_invalid"]}),
        ({"amount_currency": "XYZ"}, {"amount_currency": ["value_is_invalid"]}),
        ({"amount_currency": None}, {"amount_currency": ["value_is_mandatory"]}),
        ({"trial_period": -1}, {"trial_period": ["value_is_out_of_range"]}),
        ({"pay_in_advance": "maybe"}, {"pay_in_advance": ["value_is_invalid"]}),
        ({"tax_codes": "vat"}, {"tax_codes": ["value_is_invalid"]}),
        ({"metadata": ["a"]}, {"metadata": ["value_is_invalid"]}),
        ({"charges": {"a": 1}}, {"charges": ["value_is_invalid"]}),
        ({"charges": ["x"]}, {"charges[0]": ["value_is_invalid"]}),
        (
            {"charges": [{"charge_model": "standard"}]},
            {"charges[0].billable_metric_id": ["value_is_mandatory"]},
        ),
        ({"charges": One(charge_model=None)}, {"charges[0].charge_model": ["value_is_mandatory"]}),
        (
            {"charges": One(charge_model="tiered")},
            {"charges[0].charge_model": ["value_is_invalid"]},
        ),
        ({"charges": One(properties="x")}, {"charges[0].properties": ["value_is_invalid"]}),
        (
            {"charges": One(properties={"amount": "abc"})},
            {"charges[0].properties.amount": ["invalid_amount"]},
        ),
        (
            {
                "charges": One(
                    charge_model="graduated",
                    properties={"graduated_ranges": [{**RANGES[1], "from_value": 5}]},
                )
            },
            {"charges[0].properties.graduated_ranges": ["invalid_graduated_ranges"]},
        ),
        (
            {"charges": One(min_amount_cents=-5)},
            {"charges[0].min_amount_cents": ["value_is_out_of_range"]},
        ),
        # charges are billed at the end of the period only: one in advance would never be
        ({"charges": One(pay_in_advance=True)}, {"charges[0].pay_in_advance": ["not_supported"]}),
        (
            {"charges": One(pay_in_advance=True, min_amount_cents=5)},
            {
                "charges[0].pay_in_advance": ["not_supported"],
                "charges[0].min_amount_cents": ["not_compatible_with_pay_in_advance"],
            },
        ),
        (
            {"charges": One(pay_in_advance="soon")},
            {"charges[0].pay_in_advance": ["value_is_invalid"]},
        ),
        ({"charges": One(filters="x")}, {"charges[0].filters": ["value_is_invalid"]}),
        (
            {
                "charges": One(
                    filters=[{"values": {"cloud": ["aws"]}, "properties": {"amount": "1"}}]
                )
            },
            {"charges[0].filters[0].values": ["value_is_invalid"]},
        ),
        (
            {
                "charges": One(
                    filters=[{"values": {"region": ["mars"]}, "properties": {"amount": "1"}}]
                )
            },
            {"charges[0].filters[0].values": ["value_is_invalid"]},
        ),
        (
            {
                "charges": One(
                    filters=[{"values": {"region": ["eu"]}, "properties": {"amount": "x"}}]
                )
            },
            {"charges[0].filters[0].properties.amount": ["invalid_amount"]},
        ),
        ({"charges": Two(code="same")}, {"charges[1].code": ["value_already_exist"]}),
    ],
)
def test_invalid_plans_are_refused_and_nothing_is_stored(api_client, org, metric, fields, expected):
    fields = {
        key: [{**charge(metric), **value}] * (2 if isinstance(value, Two) else 1)
        if isinstance(value, One)
        else value
        for key, value in fields.items()
    }

    response = create(api_client, **fields)

    assert details(response) == expected
    assert stored(org) == (0, 0, 0)


def test_an_unknown_metric_is_a_404_and_nothing_is_stored(api_client, org, metric):
    foreign = factories.make_billable_metric(factories.make_organization())
    for reference in (
        {"billable_metric_id": "8c1a2b3c-0000-4000-8000-000000000000"},
        {"billable_metric_id": "not-a-uuid"},
        {"billable_metric_id": str(foreign.lago_id)},
        {"billable_metric_id": None, "billable_metric_code": "nope"},
    ):
        response = create(api_client, charges=[charge(metric), {**charge(metric), **reference}])

        assert response.status_code == 404
        assert response.get_json()["code"] == "billable_metric_not_found"
    assert stored(org) == (0, 0, 0)


def test_plan_codes_are_unique_among_live_plans(api_client, org):
    factories.make_plan(org, code="startup")

    assert details(create(api_client)) == {"code": ["value_already_exist"]}
    assert api_client.delete(f"{URL}/startup").status_code == 200
    assert create(api_client).status_code == 200


# --- read --------------------------------------------------------------------------------


def test_list_is_newest_first_with_meta_and_counts(api_client, org):
    older = factories.make_plan(org, code="older")
    factories.make_plan(org, code="newer")
    subscribe(org, older)
    subscribe(org, older)
    subscribe(org, older, status="terminated")

    body = api_client.get(f"{URL}?per_page=1").get_json()
    second = api_client.get(f"{URL}?per_page=1&page=2").get_json()

    assert [p["code"] for p in body["plans"]] == ["newer"]
    assert body["meta"]["total_count"] == 2
    assert body["meta"]["next_page"] == 2
    older_json = second["plans"][0]
    assert (older_json["active_subscriptions_count"], older_json["customers_count"]) == (2, 2)
    assert older_json["draft_invoices_count"] == 0


def test_show_by_code(api_client, org):
    plan = factories.make_plan(org, code="pro")

    body = api_client.get(f"{URL}/pro").get_json()

    assert body["plan"]["lago_id"] == str(plan.lago_id)
    assert len(body["plan"]["charges"]) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("put", ""),
        ("delete", ""),
        ("get", "/charges"),
        ("post", "/charges"),
        ("get", "/charges/c"),
        ("get", "/charges/c/filters"),
        ("post", "/metadata"),
        ("delete", "/metadata"),
    ],
)
def test_unknown_or_foreign_plan_is_not_found(api_client, method, path):
    factories.make_plan(factories.make_organization(), code="theirs")

    for code in ("nope", "theirs"):
        response = getattr(api_client, method)(
            f"{URL}/{code}{path}", json={"plan": {}, "charge": {}, "metadata": {}}
        )
        assert response.status_code == 404
        assert response.get_json() == {
            "status": 404,
            "error": "Not Found",
            "code": "plan_not_found",
        }


# --- update ------------------------------------------------------------------------------


def test_update_updates_listed_charges_creates_new_ones_and_removes_the_rest(
    api_client, org, metric
):
    other = factories.make_billable_metric(org, code="storage")
    created = create(
        api_client, charges=[charge(metric, code="keep"), charge(metric, code="drop")]
    ).get_json()["plan"]
    keep = created["charges"][0]

    response = api_client.put(
        f"{URL}/startup",
        json={
            "plan": {
                "name": "Startup v2",
                "charges": [
                    {"id": keep["lago_id"], "properties": {"amount": "9"}},
                    {"billable_metric_id": str(other.lago_id), "charge_model": "standard"},
                ],
            }
        },
    )

    plan = response.get_json()["plan"]
    assert plan["name"] == "Startup v2"
    assert plan["amount_cents"] == 9900  # absent keys keep their value
    assert [(c["code"], c["lago_id"] == keep["lago_id"]) for c in plan["charges"]] == [
        ("keep", True), ("storage", False)
    ]  # fmt: skip
    assert plan["charges"][0]["properties"] == {"amount": "9"}
    assert plan["charges"][0]["charge_model"] == "standard"
    assert count(Charge, Charge.code == "drop", Charge.deleted_at.is_not(None), of_org(org)) == 1
    entry = db.session.scalar(
        select(ActivityLog).where(ActivityLog.activity_type == "plan.updated", in_org(org))
    )
    assert "charges" in entry.changes and "name" in entry.changes


def test_update_without_charges_keeps_them(api_client, org):
    factories.make_plan(org, code="pro")

    response = api_client.put(f"{URL}/pro", json={"plan": {"amount_cents": 0}})

    assert response.get_json()["plan"]["amount_cents"] == 0
    assert len(response.get_json()["plan"]["charges"]) == 1


def test_a_refused_update_changes_nothing(api_client, org, metric):
    plan = factories.make_plan(org, code="pro", charges=[charge(metric, code="keep")])

    response = api_client.put(
        f"{URL}/pro",
        json={
            "plan": {
                "name": "New",
                "charges": [{"id": "x", **charge(metric, "volume", properties={})}, "bad"],
            }
        },
    )

    assert details(response) == {"charges[1]": ["value_is_invalid"]}
    db.session.expire_all()
    assert db.session.get(Plan, plan.id).name != "New"
    assert [c.code for c in db.session.get(Plan, plan.id).charges] == ["keep"]


def test_no_charge_becomes_billed_in_advance_but_a_stored_one_may_be_sent_back(
    api_client, org, metric
):
    plan = factories.make_plan(org, code="pro", charges=[charge(metric, code="arrears")])
    [arrears] = plan.charges
    stored_in_advance = factories.make_plan(org, code="legacy", charges=[charge(metric)])
    legacy = stored_in_advance.charges[0]
    legacy.pay_in_advance = True  # stored before charges in advance were refused
    db.session.commit()
    base = f"{URL}/pro/charges"

    refusals = [
        api_client.put(f"{URL}/pro", json={"plan": {"charges": [
            {"id": str(arrears.lago_id), "pay_in_advance": True}]}}),
        api_client.put(f"{URL}/pro", json={"plan": {"charges": [
            {"id": str(arrears.lago_id)}, charge(metric, code="new", pay_in_advance=True)]}}),
        api_client.post(base, json={"charge": charge(metric, code="new", pay_in_advance=True)}),
        api_client.put(f"{base}/arrears", json={"charge": {"pay_in_advance": True}}),
    ]  # fmt: skip
    kept = api_client.put(
        f"{URL}/legacy",
        json={
            "plan": {
                "charges": [
                    {
                        "id": str(legacy.lago_id),
                        "pay_in_advance": True,
                        "invoice_display_name": "Old",
                    }
                ]
            }
        },
    )
    in_arrears = api_client.post(base, json={"charge": charge(metric, code="new",
                                                              pay_in_advance=False)})  # fmt: skip

    assert [details(response) for response in refusals] == [
        {"charges[0].pay_in_advance": ["not_supported"]},
        {"charges[1].pay_in_advance": ["not_supported"]},
        {"pay_in_advance": ["not_supported"]},
        {"pay_in_advance": ["not_supported"]},
    ]
    db.session.expire_all()
    assert [(c.code, c.pay_in_advance) for c in db.session.get(Plan, plan.id).charges] == [
        ("arrears", False), ("new", False)
    ]  # fmt: skip
    assert in_arrears.get_json()["charge"]["pay_in_advance"] is False
    [sent_back] = kept.get_json()["plan"]["charges"]
    assert (sent_back["pay_in_advance"], sent_back["invoice_display_name"]) == (True, "Old")


def test_a_subscribed_plan_keeps_its_interval_currency_and_code(api_client, org):
    plan = factories.make_plan(org, code="pro")
    subscribe(org, plan)

    refused = api_client.put(
        f"{URL}/pro", json={"plan": {"interval": "yearly", "amount_currency": "USD"}}
    )
    repriced = api_client.put(
        f"{URL}/pro", json={"plan": {"amount_cents": 1, "interval": "monthly"}}
    )

    assert details(refused) == {
        "interval": ["value_is_immutable"], "amount_currency": ["value_is_immutable"]
    }  # fmt: skip
    assert repriced.get_json()["plan"]["amount_cents"] == 1


# --- delete ------------------------------------------------------------------------------


def test_delete_soft_deletes_and_answers_with_the_plan(api_client, org):
    plan = factories.make_plan(org, code="pro")

    response = api_client.delete(f"{URL}/pro")

    assert response.get_json()["plan"]["code"] == "pro"
    assert api_client.get(f"{URL}/pro").status_code == 404
    assert db.session.get(Plan, plan.id).deleted_at is not None
    assert count(ActivityLog, ActivityLog.activity_type == "plan.deleted", in_org(org)) == 1


@pytest.mark.parametrize("status", ["active", "pending"])
def test_a_plan_with_live_subscriptions_cannot_be_deleted(api_client, org, status):
    plan = factories.make_plan(org, code="pro")
    subscribe(org, plan, status=status)

    response = api_client.delete(f"{URL}/pro")

    assert response.status_code == 405
    assert response.get_json() == {
        "status": 405, "error": "Method Not Allowed", "code": "plan_has_active_subscriptions"
    }  # fmt: skip
    assert api_client.get(f"{URL}/pro").status_code == 200


# --- nested charges ----------------------------------------------------------------------


def test_charge_routes(api_client, org, metric):
    factories.make_plan(org, code="pro", charges=[charge(metric, code="first")])
    base = f"{URL}/pro/charges"

    created = api_client.post(
        base, json={"charge": {"billable_metric_code": "api_calls", "charge_model": "volume"}}
    )
    listed = api_client.get(base).get_json()
    shown = api_client.get(f"{base}/first").get_json()
    updated = api_client.put(
        f"{base}/first", json={"charge": {"invoice_display_name": "Calls", "code": "calls"}}
    )
    deleted = api_client.delete(f"{base}/calls")

    assert created.status_code == 200
    assert created.get_json()["charge"]["code"] == "api_calls"
    assert created.get_json()["charge"]["properties"]["volume_ranges"]
    assert [c["code"] for c in listed["charges"]] == ["first", "api_calls"]
    assert listed["meta"]["total_count"] == 2
    assert shown["charge"]["code"] == "first"
    assert updated.get_json()["charge"]["invoice_display_name"] == "Calls"
    assert deleted.get_json()["charge"]["code"] == "calls"
    assert [c["code"] for c in api_client.get(base).get_json()["charges"]] == ["api_calls"]
    assert api_client.get(f"{base}/calls").get_json()["code"] == "charge_not_found"
    assert count(ActivityLog, ActivityLog.activity_type == "plan.updated", in_org(org)) == 3


def test_charge_route_errors(api_client, org, metric):
    factories.make_plan(org, code="pro", charges=[charge(metric, code="first")])
    base = f"{URL}/pro/charges"

    taken = api_client.post(base, json={"charge": {**charge(metric), "code": "first"}})
    invalid = api_client.put(f"{base}/first", json={"charge": {"charge_model": "graduated"}})
    other_metric = api_client.put(
        f"{base}/first", json={"charge": {"billable_metric_code": "nope"}}
    )

    assert details(taken) == {"code": ["value_already_exist"]}
    assert details(invalid) == {"properties.graduated_ranges": ["missing_graduated_ranges"]}
    assert other_metric.status_code == 404
    assert api_client.put(f"{base}/nope", json={"charge": {}}).status_code == 404


# --- charge filters ----------------------------------------------------------------------


def test_charge_filter_routes(api_client, org, metric):
    factories.make_plan(org, code="pro", charges=[charge(metric, code="calls")])
    base = f"{URL}/pro/charges/calls/filters"
    eu = {"values": {"region": ["eu"]}, "properties": {"amount": "2"}}

    created = api_client.post(base, json={"filter": eu}).get_json()["filter"]
    duplicate = api_client.post(base, json={"filter": eu})
    unknown = api_client.post(base, json={"filter": {**eu, "values": {"zone": ["a"]}}})
    path = f"{base}/{created['lago_id']}"
    updated = api_client.put(path, json={"filter": {"invoice_display_name": "EU"}})
    listed = api_client.get(base).get_json()
    shown = api_client.get(path).get_json()
    deleted = api_client.delete(path)

    assert created["values"] == {"region": ["eu"]}
    assert details(duplicate) == {"values": ["value_already_exist"]}
    assert details(unknown) == {"values": ["value_is_invalid"]}
    assert updated.get_json()["filter"]["invoice_display_name"] == "EU"
    assert updated.get_json()["filter"]["lago_id"] == created["lago_id"]
    assert [f["lago_id"] for f in listed["filters"]] == [created["lago_id"]]
    assert shown["filter"]["properties"] == {"amount": "2"}
    assert deleted.status_code == 200
    assert api_client.get(path).get_json()["code"] == "charge_filter_not_found"
    assert (
        count(
            ChargeFilter,
            ChargeFilter.deleted_at.is_(None),
            ChargeFilter.charge_id.in_(select(Charge.id).where(of_org(org))),
        )
        == 0
    )


# --- metadata ----------------------------------------------------------------------------


def test_metadata_routes(api_client, org):
    factories.make_plan(org, code="pro", metadata={"a": "1"})
    base = f"{URL}/pro/metadata"

    replaced = api_client.post(base, json={"metadata": {"b": "2", "c": "3"}}).get_json()
    merged = api_client.client.patch(
        base, json={"metadata": {"c": "30", "d": None}}, headers=api_client.headers
    ).get_json()
    one_gone = api_client.delete(f"{base}/b").get_json()
    invalid = api_client.post(base, json={"metadata": {"k": {"nested": 1}}})
    all_gone = api_client.delete(base).get_json()

    assert replaced == {"metadata": {"b": "2", "c": "3"}}
    assert merged == {"metadata": {"b": "2", "c": "30", "d": None}}
    assert one_gone == {"metadata": {"c": "30", "d": None}}
    assert details(invalid) == {"metadata": ["value_is_invalid"]}
    assert all_gone == {"metadata": None}
    assert api_client.get(f"{URL}/pro").get_json()["plan"]["metadata"] is None


# --- no input is a 500 -------------------------------------------------------------------

JUNK = [None, "x", -1, 1.5, 10**30, True, {}, ["x"], [{}]]


@pytest.mark.parametrize("junk", JUNK, ids=repr)
def test_no_junk_value_in_any_field_is_a_server_error(api_client, org, metric, junk):
    plan = factories.make_plan(org, code="pro", charges=[charge(metric, code="calls")])
    existing = str(plan.charges[0].lago_id)
    full_charge = {
        **charge(metric),
        "code": "c",
        "invoiceable": True,
        "prorated": False,
        "regroup_paid_fees": None,
        "invoice_display_name": "x",
        "min_amount_cents": 0,
        "tax_codes": [],
        "filters": [{"values": {"region": ["eu"]}, "properties": {"amount": "1"}}],
    }
    requests: list[tuple[str, str, str, dict[str, Any]]] = [
        ("post", URL, "plan", plan_payload(code="new", charges=[full_charge], metadata={})),
        ("put", f"{URL}/pro", "plan", plan_payload(charges=[{**full_charge, "id": existing}])),
        ("post", f"{URL}/pro/charges", "charge", full_charge),
        ("put", f"{URL}/pro/charges/calls", "charge", full_charge),
        ("post", f"{URL}/pro/charges/calls/filters", "filter", full_charge["filters"][0]),
        ("post", "/api/v1/billable_metrics", "billable_metric", {
            "name": "m", "code": "m", "aggregation_type": "sum_agg", "field_name": "f",
            "recurring": False, "rounding_function": "round", "rounding_precision": 1,
            "weighted_interval": None, "description": "d", "expression": None,
            "filters": [{"key": "k", "values": ["v"]}],
        }),
    ]  # fmt: skip
    for method, url, root, payload in requests:
        for key in [*payload, "charges.0"]:
            body = dict(payload)
            if key == "charges.0" and "charges" in body:
                body["charges"] = [junk]
            elif key in body:
                body[key] = junk
            response = getattr(api_client, method)(url, json={root: body})
            assert response.status_code in (200, 400, 404, 422), (url, key, response.get_json())
        assert api_client.post(url, json={root: junk}).status_code in (400, 404, 405, 422)
