"""/api/v1/taxes (lago-api.md §17) and `tax_codes` on customers, plans and charges: Lago's
shapes, Lago's errors, nothing written on an error, an audit entry for every change."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import ActivityLog, Customer, Plan, Tax
from billing.models.taxes import charge_taxes, customer_taxes, plan_taxes
from extensions import db
from tests import factories

URL = "/api/v1/taxes"
TAX_KEYS = {
    "lago_id", "name", "code", "rate", "description", "applied_to_organization", "created_at",
}  # fmt: skip


def create(api_client: Any, **fields: Any) -> Any:
    payload = {"name": "VAT FR", "code": "vat_fr", "rate": "20.0", **fields}
    return api_client.post(URL, json={"tax": payload})


def tax_entries(org: Any) -> list[tuple[str, dict[str, Any]]]:
    entries = db.session.scalars(
        select(ActivityLog)
        .where(ActivityLog.organization_id == org.id, ActivityLog.resource_type == "tax")
        .order_by(ActivityLog.id)
    )
    return [(entry.activity_type, entry.changes) for entry in entries]


def stored_taxes(org: Any) -> list[tuple[str, str, str]]:
    rows = db.session.execute(
        select(Tax.code, Tax.name, Tax.rate).where(Tax.organization_id == org.id).order_by(Tax.code)
    )
    return [(code, name, str(rate)) for code, name, rate in rows]


def test_create_show_list_update_delete(api_client, org):
    created = create(api_client, description="France, standard rate", applied_to_organization=True)
    assert created.status_code == 200, created.get_json()
    tax = created.get_json()["tax"]
    assert set(tax) == TAX_KEYS
    assert (tax["code"], tax["name"], tax["rate"], tax["applied_to_organization"]) == (
        "vat_fr", "VAT FR", 20.0, True
    )  # fmt: skip

    assert api_client.get(f"{URL}/vat_fr").get_json()["tax"] == tax
    create(api_client, code="vat_reduced", name="VAT reduced", rate=5.5)
    listed = api_client.get(URL, query_string={"per_page": 1}).get_json()
    assert [t["code"] for t in listed["taxes"]] == ["vat_reduced"]
    assert listed["meta"] == {
        "current_page": 1, "next_page": 2, "prev_page": None, "total_pages": 2, "total_count": 2
    }  # fmt: skip

    updated = api_client.put(f"{URL}/vat_reduced", json={"tax": {"rate": "10", "code": "vat_10"}})
    assert updated.status_code == 200
    assert (updated.get_json()["tax"]["code"], updated.get_json()["tax"]["rate"]) == (
        "vat_10",
        10.0,
    )
    assert api_client.get(f"{URL}/vat_reduced").status_code == 404

    deleted = api_client.delete(f"{URL}/vat_10")
    assert deleted.status_code == 200 and deleted.get_json()["tax"]["code"] == "vat_10"
    assert stored_taxes(org) == [("vat_fr", "VAT FR", "20.0")]
    assert [event for event, _ in tax_entries(org)] == [
        "tax.created", "tax.created", "tax.updated", "tax.deleted"
    ]  # fmt: skip
    assert tax_entries(org)[2][1] == {"code": ["vat_reduced", "vat_10"], "rate": [5.5, 10.0]}


def test_the_rate_is_stored_exactly(api_client, org):
    create(api_client, rate="8.125")
    [(_code, _name, rate)] = stored_taxes(org)
    assert rate == "8.125"
    assert api_client.get(f"{URL}/vat_fr").get_json()["tax"]["rate"] == 8.125


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        ({"rate": "-1"}, {"rate": ["value_is_out_of_range"]}),
        ({"rate": "100.01"}, {"rate": ["value_is_out_of_range"]}),
        ({"rate": "twenty"}, {"rate": ["value_is_invalid"]}),
        ({"rate": True}, {"rate": ["value_is_invalid"]}),
        ({"rate": None}, {"rate": ["value_is_mandatory"]}),
        ({"name": ""}, {"name": ["value_is_mandatory"]}),
        ({"code": None}, {"code": ["value_is_mandatory"]}),
        ({"code": "a/b"}, {"code": ["value_is_invalid"]}),
        ({"applied_to_organization": "maybe"}, {"applied_to_organization": ["value_is_invalid"]}),
        ({"code": "x" * 256}, {"code": ["value_is_too_long"]}),
    ],
    ids=repr,
)
def test_bad_input_is_refused_with_lagos_codes_and_nothing_written(
    api_client, org, fields, details
):
    response = create(api_client, **fields)
    assert response.status_code == 422
    assert response.get_json() == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }
    assert stored_taxes(org) == [] and tax_entries(org) == []


def test_a_rate_of_0_and_of_100_are_accepted(api_client):
    assert create(api_client, code="zero", rate=0).get_json()["tax"]["rate"] == 0.0
    assert create(api_client, code="all", rate="100").get_json()["tax"]["rate"] == 100.0


def test_duplicate_codes_unknown_codes_and_missing_roots(api_client, org):
    create(api_client)
    duplicate = create(api_client, name="Other")
    assert duplicate.status_code == 422
    assert duplicate.get_json()["error_details"] == {"code": ["value_already_exist"]}
    create(api_client, code="other")
    renamed = api_client.put(f"{URL}/other", json={"tax": {"code": "vat_fr"}})
    assert renamed.get_json()["error_details"] == {"code": ["value_already_exist"]}
    bad_update = api_client.put(f"{URL}/other", json={"tax": {"rate": 101}})
    assert bad_update.get_json()["error_details"] == {"rate": ["value_is_out_of_range"]}
    for method in ("get", "put", "delete"):
        response = getattr(api_client, method)(f"{URL}/nope", json={"tax": {"name": "x"}})
        assert (response.status_code, response.get_json()) == (
            404, {"status": 404, "error": "Not Found", "code": "tax_not_found"}
        )  # fmt: skip
    assert api_client.post(URL, json={"taxes": {}}).status_code == 400
    assert stored_taxes(org) == [("other", "VAT FR", "20.0"), ("vat_fr", "VAT FR", "20.0")]
    assert len(tax_entries(org)) == 2


def test_taxes_are_per_organization(api_client, org):
    other = factories.make_organization()
    factories.make_tax(other, code="vat_fr")
    assert create(api_client).status_code == 200
    assert api_client.get(URL).get_json()["meta"]["total_count"] == 1


# --- tax_codes on customers, plans and charges ----------------------------------------------


def links(table: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(table)) or 0


def test_customer_tax_codes_replace_its_taxes_and_are_audited(api_client, org):
    factories.make_tax(org, code="vat_fr", name="VAT FR", rate="20")
    factories.make_tax(org, code="levy", name="Levy", rate="1.5")
    url = "/api/v1/customers"
    response = api_client.post(
        url, json={"customer": {"external_id": "acme", "tax_codes": ["vat_fr", "levy"]}}
    )
    assert response.status_code == 200, response.get_json()
    taxes = response.get_json()["customer"]["taxes"]
    assert [(t["code"], t["rate"]) for t in taxes] == [("levy", 1.5), ("vat_fr", 20.0)]
    assert set(taxes[0]) == TAX_KEYS
    listed = api_client.get(url).get_json()["customers"][0]
    assert [t["code"] for t in listed["taxes"]] == ["levy", "vat_fr"]

    # absent: kept; a new list replaces; an empty list clears
    api_client.post(url, json={"customer": {"external_id": "acme", "name": "Acme"}})
    assert len(api_client.get(f"{url}/acme").get_json()["customer"]["taxes"]) == 2
    api_client.post(url, json={"customer": {"external_id": "acme", "tax_codes": ["vat_fr"]}})
    assert [t["code"] for t in api_client.get(f"{url}/acme").get_json()["customer"]["taxes"]] == [
        "vat_fr"
    ]
    entry = db.session.scalars(
        select(ActivityLog)
        .where(
            ActivityLog.organization_id == org.id, ActivityLog.activity_type == "customer.updated"
        )
        .order_by(ActivityLog.id.desc())
    ).first()
    assert entry is not None and entry.changes["tax_codes"] == [["levy", "vat_fr"], ["vat_fr"]]
    api_client.post(url, json={"customer": {"external_id": "acme", "tax_codes": []}})
    assert api_client.get(f"{url}/acme").get_json()["customer"]["taxes"] == []


def test_an_unknown_tax_code_is_tax_not_found_and_changes_nothing(api_client, org):
    factories.make_tax(org, code="vat_fr")
    customer = factories.make_customer(org, external_id="acme", name="Before")
    response = api_client.post(
        "/api/v1/customers",
        json={"customer": {"external_id": "acme", "name": "After", "tax_codes": ["vat_fr", "x"]}},
    )
    assert (response.status_code, response.get_json()["code"]) == (404, "tax_not_found")
    db.session.refresh(customer)
    assert customer.name == "Before" and links(customer_taxes) == 0
    created = api_client.post(
        "/api/v1/customers", json={"customer": {"external_id": "new", "tax_codes": ["x"]}}
    )
    assert created.get_json()["code"] == "tax_not_found"
    assert (
        db.session.scalar(select(func.count(Customer.id)).where(Customer.external_id == "new")) == 0
    )


def plan_payload(metric: Any, **fields: Any) -> dict[str, Any]:
    return {
        "name": "Pro",
        "code": "pro",
        "interval": "monthly",
        "amount_cents": 1000,
        "amount_currency": "EUR",
        "pay_in_advance": False,
        "charges": [
            {
                "billable_metric_id": str(metric.lago_id),
                "code": "calls",
                "charge_model": "standard",
                "properties": {"amount": "1"},
                "tax_codes": ["levy"],
            }
        ],
        **fields,
    }


def test_plan_and_charge_tax_codes(api_client, org):
    metric = factories.make_billable_metric(org)
    factories.make_tax(org, code="vat_fr", rate="20")
    factories.make_tax(org, code="levy", rate="1.5")
    response = api_client.post(
        "/api/v1/plans", json={"plan": plan_payload(metric, tax_codes=["vat_fr"])}
    )
    assert response.status_code == 200, response.get_json()
    plan = response.get_json()["plan"]
    assert [t["code"] for t in plan["taxes"]] == ["vat_fr"] and plan["tax_codes"] == ["vat_fr"]
    assert [t["code"] for t in plan["charges"][0]["taxes"]] == ["levy"]

    charge_url = "/api/v1/plans/pro/charges/calls"
    updated = api_client.put(charge_url, json={"charge": {"tax_codes": []}})
    assert updated.get_json()["charge"]["taxes"] == []
    refused = api_client.put(charge_url, json={"charge": {"tax_codes": ["nope"]}})
    assert (refused.status_code, refused.get_json()["code"]) == (404, "tax_not_found")
    refused = api_client.put("/api/v1/plans/pro", json={"plan": {"tax_codes": ["nope"]}})
    assert (refused.status_code, refused.get_json()["code"]) == (404, "tax_not_found")
    shown = api_client.get("/api/v1/plans/pro").get_json()["plan"]
    assert [t["code"] for t in shown["taxes"]] == ["vat_fr"] and shown["charges"][0]["taxes"] == []
    assert db.session.scalar(select(func.count(Plan.id)).where(Plan.organization_id == org.id)) == 1


def test_deleting_a_tax_removes_it_from_customers_plans_and_charges(api_client, org):
    metric = factories.make_billable_metric(org)
    factories.make_tax(org, code="levy", rate="1.5")
    factories.make_customer(org, external_id="acme", tax_codes=["levy"])
    api_client.post("/api/v1/plans", json={"plan": plan_payload(metric, tax_codes=["levy"])})
    assert (links(customer_taxes), links(plan_taxes), links(charge_taxes)) == (1, 1, 1)

    assert api_client.delete(f"{URL}/levy").status_code == 200
    assert (links(customer_taxes), links(plan_taxes), links(charge_taxes)) == (0, 0, 0)
    assert api_client.get("/api/v1/customers/acme").get_json()["customer"]["taxes"] == []
    plan = api_client.get("/api/v1/plans/pro").get_json()["plan"]
    assert (plan["taxes"], plan["charges"][0]["taxes"]) == ([], [])
