"""The console's add-ons pages and a customer's one-off invoice, as an agent uses them."""

from __future__ import annotations

from sqlalchemy import select

from billing.models import ActivityLog, AddOn, Invoice
from billing.services import add_ons as add_on_service
from extensions import db
from tests import factories


def make_add_on(org, **fields):
    payload = {"name": "Onboarding", "code": "onboarding", "amount_cents": 49900,
               "amount_currency": "EUR", **fields}  # fmt: skip
    add_on = add_on_service.create_add_on(org, payload, factories.TEST_ACTOR)
    db.session.commit()
    return add_on


def live_add_on(org, code):
    db.session.expire_all()
    return db.session.scalar(
        select(AddOn).where(
            AddOn.organization_id == org.id, AddOn.code == code, AddOn.deleted_at.is_(None)
        )
    )


def add_on_form(**overrides):
    return {"name": "Priority support", "code": "priority_support", "invoice_display_name": "",
            "description": "", "amount_currency": "EUR", "amount": "150.00",
            **overrides}  # fmt: skip


def test_create_edit_and_delete_an_add_on(agent_client, org):
    created = agent_client.post("/add-ons/new", data=add_on_form())
    add_on = live_add_on(org, "priority_support")
    assert created.status_code == 302 and add_on.amount_cents == 15000
    page = agent_client.get(f"/add-ons/{add_on.lago_id}")
    assert "€150.00" in page.text and "Priority support" in page.text

    edited = agent_client.post(
        f"/add-ons/{add_on.lago_id}/edit", data=add_on_form(amount="175.5", name="Priority")
    )
    assert edited.status_code == 302
    assert live_add_on(org, "priority_support").amount_cents == 17550
    listing = agent_client.get("/add-ons")
    assert "Priority" in listing.text and "€175.50" in listing.text

    confirm = agent_client.get(f"/add-ons/{add_on.lago_id}/delete")
    assert confirm.status_code == 200 and "Invoices that already bill it" in confirm.text
    deleted = agent_client.post(f"/add-ons/{add_on.lago_id}/delete", data={"confirm": "y"})
    assert deleted.status_code == 302 and live_add_on(org, "priority_support") is None
    assert agent_client.get(f"/add-ons/{add_on.lago_id}").status_code == 404


def test_add_on_form_errors_re_render_with_422(agent_client, org):
    make_add_on(org)
    cases = [
        (add_on_form(code="onboarding"), "Another one already uses this code."),
        (add_on_form(amount="12.345"), "EUR amounts have 2 decimals."),
        (add_on_form(amount="-1"), "Enter an amount of 0 or more"),
        (add_on_form(name=""), "This field is required."),
    ]
    for data, message in cases:
        response = agent_client.post("/add-ons/new", data=data, htmx=True)
        assert response.status_code == 422, data
        assert message in response.text, data
        assert 'id="add-on-form"' in response.text
    assert live_add_on(org, "priority_support") is None


def test_viewers_read_add_ons_but_cannot_change_them(make_agent_client, org):
    add_on = make_add_on(org)
    customer = factories.make_customer(org, currency="EUR")
    viewer = make_agent_client("viewer")
    listing = viewer.get("/add-ons")
    assert listing.status_code == 200 and "Onboarding" in listing.text
    assert "New add-on" not in listing.text
    assert "Edit" not in viewer.get(f"/add-ons/{add_on.lago_id}").text
    for url in ("/add-ons/new", f"/add-ons/{add_on.lago_id}/edit",
                f"/add-ons/{add_on.lago_id}/delete",
                f"/customers/{customer.lago_id}/one-off-invoice"):  # fmt: skip
        assert viewer.get(url).status_code == 403, url
        assert viewer.post(url, data={"confirm": "y"}).status_code == 403, url
    assert "One-off invoice" not in viewer.get(f"/customers/{customer.lago_id}").text


def line(index, add_on, units="1", unit_price="", description=""):
    prefix = f"fees-{index}-"
    return {prefix + "add_on": str(add_on.lago_id), prefix + "units": units,
            prefix + "unit_price": unit_price, prefix + "description": description}  # fmt: skip


def test_one_off_invoice_from_the_customer_page(agent_client, org):
    customer = factories.make_customer(org, currency="EUR")
    onboarding = make_add_on(org, amount_cents=1999)
    support = make_add_on(org, name="Priority support", code="support", amount_cents=15000)
    page = agent_client.get(f"/customers/{customer.lago_id}")
    assert f"/customers/{customer.lago_id}/one-off-invoice" in page.text

    form = agent_client.get(f"/customers/{customer.lago_id}/one-off-invoice")
    added = agent_client.get(
        f"/customers/{customer.lago_id}/one-off-invoice/line?index=1", htmx=True
    )
    data = line(0, onboarding, units="2.5") | line(1, support, unit_price="120", description="Q1")
    total = agent_client.post(
        f"/customers/{customer.lago_id}/one-off-invoice/total", data=data, htmx=True
    )
    created = agent_client.post(f"/customers/{customer.lago_id}/one-off-invoice", data=data)

    assert form.status_code == 200 and "Onboarding" in form.text
    assert 'name="fees-1-add_on"' in added.text and 'hx-swap-oob="true"' in added.text
    assert "index=2" in added.text and added.headers["HX-Trigger"] == "one-off-changed"
    # 2.5 × €19.99 = €49.975 → €49.98, plus €120.00
    assert "Total: €169.98" in total.text
    invoice = db.session.scalar(select(Invoice).where(Invoice.customer_id == customer.id))
    assert created.status_code == 302
    assert created.headers["Location"].endswith(f"/invoices/{invoice.lago_id}")
    assert invoice.invoice_type == "one_off" and invoice.status == "finalized"
    assert [fee.amount_cents for fee in invoice.fees] == [4998, 12000]
    assert invoice.fees[1].description == "Q1"
    shown = agent_client.get(f"/invoices/{invoice.lago_id}")
    assert "€169.98" in shown.text and "Priority support" in shown.text
    assert "One-off (add-ons)" in shown.text and "Q1" in shown.text
    assert "Billing periods" not in shown.text
    entry = db.session.scalar(
        select(ActivityLog).where(
            ActivityLog.organization_id == org.id,
            ActivityLog.activity_type == "invoice.one_off_created",
        )
    )
    assert entry.actor_type == "agent" and entry.customer_id == customer.id


def test_one_off_form_errors(agent_client, org):
    customer = factories.make_customer(org, currency="JPY")
    yen = make_add_on(org, code="yen", amount_cents=1000, amount_currency="JPY")
    euros = make_add_on(org, code="euros", amount_cents=1000, amount_currency="EUR")
    url = f"/customers/{customer.lago_id}/one-off-invoice"
    cases = [
        (line(0, yen, units="-1"), "Enter a quantity of 0 or more"),
        (line(0, yen, units="abc"), "Enter a quantity such as 1 or 2.5."),
        (line(0, yen, unit_price="10.5"), "JPY prices have 0 decimal(s) at most."),
        (line(0, euros), "This add-on is priced in another currency"),
        ({"fees-0-add_on": "", "fees-0-units": "1"}, "Add a line."),
        (line(0, yen, unit_price="1e40"), "This price is too large."),
        (line(0, yen, units="1e999"), "Enter a quantity of 0 or more"),
    ]
    for data, message in cases:
        response = agent_client.post(url, data=data, htmx=True)
        assert response.status_code == 422, data
        assert message in response.text, (data, response.text)
        assert 'id="one-off-form"' in response.text
    huge = line(0, yen, units="1e999") | line(1, yen, unit_price="1e40")
    total = agent_client.post(f"{url}/total", data=huge, htmx=True)
    assert total.status_code == 200 and "2 lines left out" in total.text
    assert db.session.scalar(select(Invoice).where(Invoice.customer_id == customer.id)) is None
    # the euro add-on billed at a yen price is fine
    priced = agent_client.post(url, data=line(0, euros, units="3", unit_price="333"))
    assert priced.status_code == 302


def test_customer_without_currency_chooses_one(agent_client, org):
    customer = factories.make_customer(org)
    add_on = make_add_on(org, amount_cents=1000, amount_currency="USD")
    url = f"/customers/{customer.lago_id}/one-off-invoice"
    assert 'name="currency"' in agent_client.get(url).text

    missing = agent_client.post(url, data=line(0, add_on) | {"currency": ""}, htmx=True)
    created = agent_client.post(url, data=line(0, add_on) | {"currency": "USD"})

    assert missing.status_code == 422 and "Choose the invoice" in missing.text
    assert created.status_code == 302
    db.session.expire_all()
    assert customer.currency == "USD"
    assert "Choose the currency to see the total." in missing.text


def test_add_on_search_swaps_the_table_only(agent_client, org):
    make_add_on(org)
    make_add_on(org, name="Priority support", code="support")
    found = agent_client.get("/add-ons?q=supp", htmx=True)
    assert 'id="add-on-table"' in found.text and "<html" not in found.text
    assert "Priority support" in found.text and "Onboarding" not in found.text
    assert "No add-on matches" in agent_client.get("/add-ons?q=nothing").text
