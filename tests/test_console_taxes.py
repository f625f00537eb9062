"""The console's Taxes page: everyone reads, admins create, edit and delete (with a
confirmation); an invoice page shows its taxes line by line."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from billing.models import ActivityLog, Customer, Tax
from extensions import db
from tests import factories


def stored(org):
    db.session.expire_all()
    return [
        (tax.code, tax.name, format(tax.rate, "f"), tax.applied_to_organization)
        for tax in db.session.scalars(
            select(Tax).where(Tax.organization_id == org.id).order_by(Tax.code)
        )
    ]


def tax_form(**overrides):
    return {"name": "VAT FR", "code": "vat_fr", "rate": "20", "description": "", **overrides}


def test_list_create_edit_and_delete_a_tax(agent_client, org):
    assert "No taxes yet." in agent_client.get("/taxes").text

    created = agent_client.post("/taxes/new", data=tax_form(applied_to_organization="y"), htmx=True)
    assert created.headers["HX-Redirect"] == "/taxes"
    assert stored(org) == [("vat_fr", "VAT FR", "20", True)]
    page = agent_client.get("/taxes").text
    assert "VAT FR" in page and "20\u00a0%" in page and "organization default" in page
    assert "hx-confirm=" in page

    [tax] = db.session.scalars(select(Tax).where(Tax.organization_id == org.id))
    form = agent_client.get(f"/taxes/{tax.lago_id}/edit").text
    assert 'value="20"' in form and 'value="vat_fr"' in form
    agent_client.post(f"/taxes/{tax.lago_id}/edit", data=tax_form(rate="5.5", name="VAT reduced"))
    assert stored(org) == [("vat_fr", "VAT reduced", "5.5", False)]
    assert agent_client.get("/taxes", query_string={"q": "reduced"}).text.count("VAT reduced") >= 1
    assert "No tax matches" in agent_client.get("/taxes", query_string={"q": "zzz"}).text

    factories.make_customer(org, external_id="acme", tax_codes=["vat_fr"])
    preview = agent_client.get(f"/taxes/{tax.lago_id}/delete")
    assert "It is removed from 1 customer." in preview.text
    assert agent_client.post(f"/taxes/{tax.lago_id}/delete").status_code == 422
    assert stored(org) != []
    deleted = agent_client.post(f"/taxes/{tax.lago_id}/delete", data={"confirm": "y"}, htmx=True)
    assert deleted.headers["HX-Redirect"] == "/taxes"
    assert stored(org) == []
    entries = db.session.scalars(
        select(ActivityLog.activity_type)
        .where(ActivityLog.organization_id == org.id, ActivityLog.resource_type == "tax")
        .order_by(ActivityLog.id)
    )
    assert list(entries) == ["tax.created", "tax.updated", "tax.deleted"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate": "120"}, "Enter a percentage between 0 and 100."),
        ({"rate": "abc"}, "Enter a percentage such as 20 or 5.5."),
        ({"rate": ""}, "This field is required."),
        ({"name": ""}, "This field is required."),
        ({"code": "a/b"}, "A code cannot contain / ? # % or control characters."),
    ],
)
def test_bad_input_comes_back_next_to_its_field(agent_client, org, fields, message):
    response = agent_client.post("/taxes/new", data=tax_form(**fields), htmx=True)
    assert response.status_code == 422
    assert message in response.text and 'id="tax-form"' in response.text
    assert stored(org) == []


def test_a_duplicate_code_is_refused(agent_client, org):
    factories.make_tax(org, code="vat_fr")
    response = agent_client.post("/taxes/new", data=tax_form())
    assert response.status_code == 422 and "Another tax already uses this code." in response.text


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_only_admins_change_taxes(make_agent_client, org, role):
    tax = factories.make_tax(org, name="VAT FR", code="vat_fr")
    agent = make_agent_client(role)
    page = agent.get("/taxes").text
    assert "VAT FR" in page and "New tax" not in page and "hx-confirm" not in page
    for url in ("/taxes/new", f"/taxes/{tax.lago_id}/edit", f"/taxes/{tax.lago_id}/delete"):
        assert agent.get(url).status_code == 403, url
        assert agent.post(url, data={**tax_form(), "confirm": "y"}).status_code == 403, url
    assert stored(org) == [("vat_fr", "VAT FR", "20", False)]


def test_another_organizations_tax_is_not_found(agent_client, org):
    other = factories.make_tax(factories.make_organization(), code="vat_fr")
    assert agent_client.get(f"/taxes/{other.lago_id}/edit").status_code == 404


# --- tax codes on the customer and plan forms --------------------------------------------------


def test_the_customer_form_picks_the_customers_taxes(agent_client, org):
    from tests.test_console_customers import form_data  # noqa: PLC0415

    factories.make_tax(org, name="VAT FR", code="vat_fr", rate="20")
    factories.make_tax(org, name="Levy", code="levy", rate="1.5")
    assert "VAT FR (vat_fr, 20 %)" in agent_client.get("/customers/new").text

    # two values of one field: a MultiDict, with the CSRF token in it (the client's own
    # token handling takes plain dicts)
    data = MultiDict({**form_data(external_id="acme"), "csrf_token": agent_client.csrf_token})
    data.setlist("tax_codes", ["vat_fr", "levy"])
    assert agent_client.post("/customers/new", data=data, csrf=False).status_code == 302
    customer = factories.db_scalar(
        select(Customer).where(Customer.organization_id == org.id, Customer.external_id == "acme")
    )
    assert [tax.code for tax in customer.taxes] == ["levy", "vat_fr"]
    edit = agent_client.get(f"/customers/{customer.lago_id}/edit").text
    assert re.search(r'<option selected value="levy">|<option value="levy" selected', edit)

    agent_client.post(f"/customers/{customer.lago_id}/edit", data={**form_data(external_id="acme")})
    db.session.expire_all()
    assert customer.taxes == []


def test_the_plan_form_picks_the_plans_and_each_charges_taxes(agent_client, org):
    from tests.test_console_catalog import charge_fields, live_plan, plan_form  # noqa: PLC0415

    factories.make_tax(org, name="VAT FR", code="vat_fr", rate="20")
    factories.make_tax(org, name="Levy", code="levy", rate="1.5")
    metric = factories.make_billable_metric(org, name="API calls", code="api_calls")
    assert "Levy (levy, 1.5 %)" in agent_client.get("/plans/new").text

    response = agent_client.post(
        "/plans/new",
        data={
            **plan_form(),
            "tax_codes": "vat_fr",
            **charge_fields(0, metric, "standard", amount="0.5", tax_codes="levy"),
        },
    )
    assert response.status_code == 302, response.text
    plan = live_plan(org, "startup")
    assert plan.tax_codes == ["vat_fr"] and plan.charges[0].tax_codes == ["levy"]
    edit = agent_client.get(f"/plans/{plan.lago_id}/edit").text
    assert 'name="charges-0-tax_codes"' in edit and '<option value="levy" selected>' in edit


def test_the_customer_and_plan_pages_show_their_taxes(agent_client, org):
    factories.make_tax(org, name="VAT FR", code="vat_fr", rate="20")
    factories.make_tax(org, name="Levy", code="levy", rate="1.5")
    customer = factories.make_customer(org, tax_codes=["vat_fr"])
    bare = factories.make_customer(org)
    metric = factories.make_billable_metric(org)
    plan = factories.make_plan(
        org,
        tax_codes=["levy"],
        charges=[{"billable_metric_id": str(metric.lago_id), "charge_model": "standard",
                  "properties": {"amount": "1"}, "tax_codes": ["vat_fr"]}],
    )  # fmt: skip

    def text(url):
        return " ".join(re.sub(r"<[^>]+>", " ", agent_client.get(url).text).split())

    assert "Taxes VAT FR 20 %" in text(f"/customers/{customer.lago_id}/settings")
    assert "Taxes Organization’s default taxes" in text(f"/customers/{bare.lago_id}/settings")
    page = text(f"/plans/{plan.lago_id}")
    assert "Taxes Levy 1.5 %" in page and "Taxes: VAT FR (20 %)" in page
