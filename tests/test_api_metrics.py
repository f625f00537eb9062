"""/api/v1/billable_metrics: create, list, show, update, soft delete, Lago's error shapes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import ActivityLog, BillableMetric, Charge, Subscription
from billing.timeutil import now_utc
from extensions import db
from tests import factories

METRIC_KEYS = {
    "lago_id", "name", "code", "description", "aggregation_type", "weighted_interval",
    "recurring", "rounding_function", "rounding_precision", "created_at", "field_name",
    "expression", "filters",
}  # fmt: skip
URL = "/api/v1/billable_metrics"


def create(api_client: Any, **fields: Any) -> Any:
    payload = {"name": "Storage", "code": "storage", "aggregation_type": "sum_agg"}
    payload.update({"field_name": "gb", **fields})
    return api_client.post(URL, json={"billable_metric": payload})


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def details(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert (body["status"], body["code"]) == (422, "validation_errors")
    return body["error_details"]


def subscribe(organization: Any, plan: Any, status: str = "active") -> Subscription:
    """A subscription row on the plan (the subscriptions service is someone else's work)."""
    customer = factories.make_customer(organization)
    subscription = Subscription(
        organization_id=organization.id,
        customer_id=customer.id,
        plan_id=plan.id,
        external_id=f"sub-{customer.external_id}",
        status=status,
        subscription_at=now_utc(),
    )
    db.session.add(subscription)
    db.session.commit()
    return subscription


# --- create ------------------------------------------------------------------------------


def test_create_returns_lagos_metric_object_and_records_it(api_client, org):
    response = create(
        api_client,
        description="GB stored",
        recurring=True,
        rounding_function="ceil",
        rounding_precision=2,
        filters=[{"key": "region", "values": ["eu", "us"]}],
    )

    assert response.status_code == 200
    metric = response.get_json()["billable_metric"]
    assert set(metric) == METRIC_KEYS
    assert metric["code"] == "storage"
    assert metric["aggregation_type"] == "sum_agg"
    assert metric["field_name"] == "gb"
    assert metric["recurring"] is True
    assert (metric["rounding_function"], metric["rounding_precision"]) == ("ceil", 2)
    assert metric["filters"] == [{"key": "region", "values": ["eu", "us"]}]
    assert metric["created_at"].endswith("Z")
    entry = db.session.scalar(
        select(ActivityLog).where(ActivityLog.resource_id == metric["lago_id"])
    )
    assert entry.activity_type == "billable_metric.created"
    assert entry.resource_type == "billable_metric"
    assert entry.customer_id is None
    assert entry.changes["code"] == [None, "storage"]


def test_filters_are_always_present_and_count_ignores_field_name(api_client):
    response = create(api_client, code="calls", aggregation_type="count_agg", field_name="x")

    metric = response.get_json()["billable_metric"]
    assert metric["filters"] == []
    assert metric["field_name"] is None


def test_weighted_sum_defaults_its_interval_to_seconds(api_client):
    response = create(api_client, code="seats", aggregation_type="weighted_sum_agg")

    assert response.get_json()["billable_metric"]["weighted_interval"] == "seconds"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": None}, {"name": ["value_is_mandatory"]}),
        ({"name": "  "}, {"name": ["value_is_mandatory"]}),
        ({"code": None}, {"code": ["value_is_mandatory"]}),
        ({"aggregation_type": None}, {"aggregation_type": ["value_is_mandatory"]}),
        ({"aggregation_type": "median_agg"}, {"aggregation_type": ["value_is_invalid"]}),
        ({"field_name": None}, {"field_name": ["value_is_mandatory"]}),
        (
            {"aggregation_type": "max_agg", "recurring": True},
            {"recurring": ["not_compatible_with_aggregation_type"]},
        ),
        ({"recurring": "yes"}, {"recurring": ["value_is_invalid"]}),
        ({"rounding_function": "up"}, {"rounding_function": ["value_is_invalid"]}),
        ({"rounding_precision": "two"}, {"rounding_precision": ["value_is_invalid"]}),
        ({"weighted_interval": "seconds"}, {"weighted_interval": ["value_is_invalid"]}),
        ({"filters": "region"}, {"filters": ["value_is_invalid"]}),
        ({"filters": [{"key": "region", "values": []}]}, {"filters": ["value_is_mandatory"]}),
        (
            {"filters": [{"key": "r", "values": ["a"]}, {"key": "r", "values": ["b"]}]},
            {"filters": ["value_already_exist"]},
        ),
        ({"name": {"a": 1}}, {"name": ["value_is_invalid"]}),
        ({"code": ["x"]}, {"code": ["value_is_invalid"]}),
        ({"code": "a/b"}, {"code": ["value_is_invalid"]}),
        ({"name": "x" * 256}, {"name": ["value_is_too_long"]}),
    ],
)
def test_invalid_metrics_are_refused_with_lagos_codes_and_nothing_is_stored(
    api_client, org, fields, expected
):
    response = create(api_client, **fields)

    assert details(response) == expected
    assert count(BillableMetric, BillableMetric.organization_id == org.id) == 0
    assert (
        count(
            ActivityLog,
            ActivityLog.resource_type == "billable_metric",
            ActivityLog.organization_id == org.id,
        )
        == 0
    )


@pytest.mark.parametrize(
    "body", [None, {}, {"billable_metric": None}, {"billable_metric": "x"}, ["x"]]
)
def test_a_missing_root_object_is_a_400(api_client, body):
    response = api_client.post(URL, json=body)

    assert response.status_code == 400
    assert response.get_json()["error"].startswith("BadRequest: ")


def test_codes_are_unique_among_live_metrics_and_free_again_after_delete(api_client, org):
    assert create(api_client).status_code == 200

    assert details(create(api_client)) == {"code": ["value_already_exist"]}
    assert api_client.delete(f"{URL}/storage").status_code == 200
    assert create(api_client).status_code == 200
    assert count(BillableMetric, BillableMetric.organization_id == org.id) == 2


def test_another_organization_may_use_the_same_code(api_client):
    factories.make_billable_metric(factories.make_organization(), code="storage")

    assert create(api_client).status_code == 200


# --- read --------------------------------------------------------------------------------


def test_list_is_newest_first_with_pagination_meta(api_client, org):
    for n in range(3):
        factories.make_billable_metric(org, code=f"m{n}")

    first = api_client.get(f"{URL}?per_page=2").get_json()
    second = api_client.get(f"{URL}?per_page=2&page=2").get_json()

    assert [m["code"] for m in first["billable_metrics"]] == ["m2", "m1"]
    assert first["meta"] == {
        "current_page": 1, "next_page": 2, "prev_page": None, "total_pages": 2, "total_count": 3
    }  # fmt: skip
    assert [m["code"] for m in second["billable_metrics"]] == ["m0"]


def test_an_empty_list_has_lagos_empty_meta(api_client):
    body = api_client.get(URL).get_json()

    assert body == {
        "billable_metrics": [],
        "meta": {
            "current_page": 0, "next_page": None, "prev_page": None, "total_pages": 0,
            "total_count": 0,
        },
    }  # fmt: skip


def test_show_by_code(api_client, org):
    metric = factories.make_billable_metric(org, code="api_calls")

    body = api_client.get(f"{URL}/api_calls").get_json()

    assert body["billable_metric"]["lago_id"] == str(metric.lago_id)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_or_foreign_metric_is_not_found(api_client, method):
    factories.make_billable_metric(factories.make_organization(), code="theirs")

    for code in ("nope", "theirs"):
        response = getattr(api_client, method)(
            f"{URL}/{code}", json={"billable_metric": {"name": "x"}}
        )
        assert response.status_code == 404
        assert response.get_json() == {
            "status": 404, "error": "Not Found", "code": "billable_metric_not_found"
        }  # fmt: skip


def test_requests_without_a_key_are_401_before_any_lookup(client):
    assert client.get(f"{URL}/nope").status_code == 401
    assert client.post(URL, json={}).get_json() == {"status": 401, "error": "Unauthorized"}


# --- update ------------------------------------------------------------------------------


def test_update_changes_only_the_fields_sent(api_client, org):
    factories.make_billable_metric(org, code="storage", description="before")

    response = api_client.put(
        f"{URL}/storage", json={"billable_metric": {"name": "Disk", "rounding_function": "floor"}}
    )

    metric = response.get_json()["billable_metric"]
    assert (metric["name"], metric["description"]) == ("Disk", "before")
    assert metric["rounding_function"] == "floor"
    entry = db.session.scalar(
        select(ActivityLog).where(
            ActivityLog.activity_type == "billable_metric.updated",
            ActivityLog.organization_id == org.id,
        )
    )
    assert entry.changes["name"][1] == "Disk"


def test_update_validates_the_merged_metric(api_client, org):
    factories.make_billable_metric(org, code="calls", aggregation_type="count_agg")

    response = api_client.put(
        f"{URL}/calls", json={"billable_metric": {"aggregation_type": "sum_agg"}}
    )

    assert details(response) == {"field_name": ["value_is_mandatory"]}
    assert db.session.scalar(
        select(BillableMetric.aggregation_type).where(BillableMetric.organization_id == org.id)
    ) == "count_agg"  # fmt: skip


def test_update_to_a_taken_code_is_refused(api_client, org):
    factories.make_billable_metric(org, code="a")
    factories.make_billable_metric(org, code="b")

    response = api_client.put(f"{URL}/a", json={"billable_metric": {"code": "b"}})

    assert details(response) == {"code": ["value_already_exist"]}


def test_a_metric_billed_by_subscriptions_keeps_its_aggregation(api_client, org):
    metric = factories.make_billable_metric(org, code="storage")
    plan = factories.make_plan(
        org, charges=[{"billable_metric_id": str(metric.lago_id), "charge_model": "standard"}]
    )
    subscribe(org, plan)

    refused = api_client.put(
        f"{URL}/storage",
        json={"billable_metric": {"aggregation_type": "max_agg", "code": "disk"}},
    )
    renamed = api_client.put(
        f"{URL}/storage",
        json={"billable_metric": {"name": "Disk", "aggregation_type": "sum_agg"}},
    )

    assert details(refused) == {
        "code": ["value_is_immutable"], "aggregation_type": ["value_is_immutable"]
    }  # fmt: skip
    assert renamed.status_code == 200
    assert renamed.get_json()["billable_metric"]["name"] == "Disk"


def test_a_metric_of_a_plan_without_live_subscriptions_can_change(api_client, org):
    metric = factories.make_billable_metric(org, code="storage")
    plan = factories.make_plan(
        org, charges=[{"billable_metric_id": str(metric.lago_id), "charge_model": "standard"}]
    )
    subscribe(org, plan, status="terminated")

    response = api_client.put(
        f"{URL}/storage", json={"billable_metric": {"aggregation_type": "max_agg"}}
    )

    assert response.status_code == 200


# --- delete ------------------------------------------------------------------------------


def test_delete_soft_deletes_the_metric_and_the_charges_pricing_it(api_client, org):
    metric = factories.make_billable_metric(org, code="storage")
    other = factories.make_billable_metric(org, code="calls", aggregation_type="count_agg")
    factories.make_plan(
        org,
        code="pro",
        charges=[
            {
                "billable_metric_id": str(metric.lago_id),
                "charge_model": "standard",
                "filters": [],
            },
            {"billable_metric_id": str(other.lago_id), "charge_model": "standard"},
        ],
    )

    response = api_client.delete(f"{URL}/storage")

    assert response.status_code == 200
    assert response.get_json()["billable_metric"]["code"] == "storage"
    assert api_client.get(f"{URL}/storage").status_code == 404
    assert count(Charge, Charge.billable_metric_id == metric.id, Charge.deleted_at.is_(None)) == 0
    plan = api_client.get("/api/v1/plans/pro").get_json()["plan"]
    assert [c["billable_metric_code"] for c in plan["charges"]] == ["calls"]
    assert db.session.scalar(
        select(ActivityLog.activity_type).where(ActivityLog.resource_id == str(metric.lago_id))
        .order_by(ActivityLog.id.desc())
    ) == "billable_metric.deleted"  # fmt: skip
