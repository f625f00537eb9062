"""Contract tests: billable metrics, plans, charges and charge filters driven only through the
official SDK (lago-python-client 1.55.0) against a live Ledgerline (see lago-sdk-notes.md §4.2).
Each test works in an organization of its own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from lago_python_client.client import Client
from lago_python_client.models import (
    BillableMetric,
    BillableMetricFilter,
    Charge,
    Plan,
)
from lago_python_client.models.charge import ChargeFilter

from tests.test_api_plans import PROPERTIES, RANGES
from tests.test_sdk_contract import UNAUTHORIZED, api_error, validation_body

pytestmark = pytest.mark.live


@pytest.fixture
def sdk(live_server: Any) -> Client:
    _organization_id, raw_key = live_server.new_organization()
    return Client(api_key=raw_key, api_url=live_server.url)


def code(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def new_metric(sdk: Client, **fields: Any) -> Any:
    return sdk.billable_metrics.create(
        BillableMetric(
            **{
                "name": "API calls",
                "code": code("calls"),
                "aggregation_type": "sum_agg",
                "field_name": "count",
                **fields,
            }
        )
    )


def new_plan(sdk: Client, metric: Any, **fields: Any) -> Any:
    charges = [
        Charge(billable_metric_id=metric.lago_id, charge_model=model, properties=properties)
        for model, properties in PROPERTIES.items()
    ]
    return sdk.plans.create(
        Plan(
            **{
                "name": "Startup",
                "code": code("startup"),
                "interval": "monthly",
                "amount_cents": 9900,
                "amount_currency": "EUR",
                "pay_in_advance": True,
                "trial_period": 7,
                "charges": charges,
                **fields,
            }
        )
    )


def test_billable_metric_lifecycle(sdk):
    created = new_metric(
        sdk,
        recurring=True,
        rounding_function="round",
        rounding_precision=2,
        filters=[BillableMetricFilter(key="region", values=["eu", "us"])],
    )

    found = sdk.billable_metrics.find(created.code)
    listed = sdk.billable_metrics.find_all({"per_page": 10})
    updated = sdk.billable_metrics.update(BillableMetric(name="Calls"), created.code)
    destroyed = sdk.billable_metrics.destroy(created.code)

    assert created.lago_id and created.created_at.endswith("Z")
    assert (created.aggregation_type, created.field_name, created.recurring) == (
        "sum_agg", "count", True
    )  # fmt: skip
    assert [(f.key, f.values) for f in created.filters.__root__] == [("region", ["eu", "us"])]
    assert found.lago_id == created.lago_id
    assert [m.code for m in listed["billable_metrics"]] == [created.code]
    assert listed["meta"]["total_count"] == 1
    assert (updated.name, updated.field_name) == ("Calls", "count")
    assert destroyed.code == created.code
    assert api_error(lambda: sdk.billable_metrics.find(created.code)).response == {
        "status": 404, "error": "Not Found", "code": "billable_metric_not_found"
    }  # fmt: skip


def test_billable_metric_errors_reach_the_sdk_as_lago_errors(sdk):
    metric = new_metric(sdk)

    duplicate = api_error(lambda: new_metric(sdk, code=metric.code))
    invalid = api_error(lambda: new_metric(sdk, aggregation_type="median_agg"))

    assert duplicate.status_code == 422
    assert duplicate.response == validation_body({"code": ["value_already_exist"]})
    assert invalid.response == validation_body({"aggregation_type": ["value_is_invalid"]})


def test_plan_with_a_charge_of_each_model(sdk):
    metric = new_metric(sdk)

    created = new_plan(sdk, metric, metadata={"tier": "1"})
    found = sdk.plans.find(created.code)
    listed = sdk.plans.find_all({"page": 1})

    assert created.lago_id and created.created_at.endswith("Z")
    assert (created.interval, created.amount_cents, created.trial_period) == ("monthly", 9900, 7)
    charges = created.charges.__root__
    assert [c.charge_model for c in charges] == list(PROPERTIES)
    assert all(c.billable_metric_code == metric.code for c in charges)
    assert charges[1].properties == {"graduated_ranges": RANGES}
    assert created.metadata == {"tier": "1"}
    assert created.taxes.__root__ == []
    assert found.lago_id == created.lago_id
    assert [p.code for p in listed["plans"]] == [created.code]


def test_plan_update_metadata_and_destroy(sdk):
    metric = new_metric(sdk)
    plan = new_plan(sdk, metric)
    kept = plan.charges.__root__[0]

    updated = sdk.plans.update(
        Plan(
            name="Startup v2",
            charges=[Charge(id=kept.lago_id, properties={"amount": "3"})],
        ),
        plan.code,
    )
    replaced = sdk.plans.replace_metadata(plan.code, {"a": "1"})
    merged = sdk.plans.merge_metadata(plan.code, {"b": "2"})
    without_a = sdk.plans.delete_metadata_key(plan.code, "a")
    destroyed = sdk.plans.destroy(plan.code)

    assert updated.name == "Startup v2"
    assert [(c.lago_id, c.properties) for c in updated.charges.__root__] == [
        (kept.lago_id, {"amount": "3"})
    ]
    assert (replaced, merged, without_a) == ({"a": "1"}, {"a": "1", "b": "2"}, {"b": "2"})
    assert destroyed.code == plan.code
    assert api_error(lambda: sdk.plans.find(plan.code)).response["code"] == "plan_not_found"


def test_plan_errors_reach_the_sdk(sdk):
    metric = new_metric(sdk)

    invalid = api_error(lambda: new_plan(sdk, metric, interval="daily", amount_currency="XYZ"))
    unknown_metric = api_error(
        lambda: sdk.plans.create(
            Plan(
                name="x",
                code=code("x"),
                interval="monthly",
                amount_cents=0,
                amount_currency="EUR",
                charges=[Charge(billable_metric_id=str(uuid.uuid4()), charge_model="standard")],
            )
        )
    )

    assert invalid.response == validation_body(
        {"interval": ["value_is_invalid"], "amount_currency": ["value_is_invalid"]}
    )
    assert unknown_metric.status_code == 404
    assert unknown_metric.response["code"] == "billable_metric_not_found"


def test_plan_charges_and_charge_filters(sdk):
    metric = new_metric(sdk, filters=[BillableMetricFilter(key="region", values=["eu", "us"])])
    plan = new_plan(sdk, metric)

    added = sdk.plan_charges.create(
        plan.code,
        Charge(
            billable_metric_id=metric.lago_id,
            code="extra",
            charge_model="standard",
            properties={"amount": "1"},
        ),
    )
    found = sdk.plan_charges.find(plan.code, "extra")
    changed = sdk.plan_charges.update(
        plan.code, "extra", Charge(invoice_display_name="Extra calls")
    )
    created_filter = sdk.plans.create_charge_filter(
        plan.code,
        "extra",
        ChargeFilter(values={"region": ["eu"]}, properties={"amount": "2"}),
    )
    filters = sdk.plans.find_all_charge_filters(plan.code, "extra")
    found_filter = sdk.plans.find_charge_filter(plan.code, "extra", created_filter.lago_id)
    updated_filter = sdk.plans.update_charge_filter(
        plan.code, "extra", created_filter.lago_id, ChargeFilter(invoice_display_name="EU")
    )
    destroyed_filter = sdk.plans.destroy_charge_filter(plan.code, "extra", created_filter.lago_id)
    removed = sdk.plan_charges.destroy(plan.code, "extra")

    assert (added.code, added.billable_metric_code) == ("extra", metric.code)
    assert found.lago_id == added.lago_id
    assert changed.invoice_display_name == "Extra calls"
    assert created_filter.values == {"region": ["eu"]}
    assert [f.lago_id for f in filters["filters"]] == [created_filter.lago_id]
    assert found_filter.properties == {"amount": "2"}
    assert updated_filter.invoice_display_name == "EU"
    assert destroyed_filter.lago_id == created_filter.lago_id
    assert removed.code == "extra"
    assert len(sdk.plans.find(plan.code).charges.__root__) == len(PROPERTIES)


def test_plan_charges_find_all_sends_no_key_and_gets_a_json_401(sdk):
    metric = new_metric(sdk)
    plan = new_plan(sdk, metric)

    error = api_error(lambda: sdk.plan_charges.find_all(plan.code))

    assert error.status_code == 401
    assert error.response == UNAUTHORIZED
