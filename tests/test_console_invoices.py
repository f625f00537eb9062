"""Invoices in the console, as a support agent uses them: the organization's list and a
customer's tab with their filters, the invoice page with its fees and totals, and the actions
(refresh, finalize, mark paid or failed, void), each in the audit log under the agent's name.
Invoices come from the real period close with a frozen clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from billing.money import format_money
from billing.services import analytics, credit_notes, invoicing
from billing.services import customers as customer_service
from extensions import db
from tests import factories
from tests.factories import assert_amount_relations, invoices_of


def at(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


#: April's periods (Paris) close once May has begun there
CLOSE_AT = "2026-05-01T00:00:10"


#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = at("2026-04-01T08:00:00")


def billed_customer(org, clock, name, *, grace=0, units=3, net_payment_term=7):
    """A customer in Paris subscribed on 1 April to a 10 € plan with a 0.50 € per call charge,
    `units` calls in April; the close of April is left to the test."""
    clock[0] = at("2026-04-01T08:00:00")
    slug = name.lower().replace(" ", "-")
    customer = factories.make_customer(
        org,
        external_id=f"ext-{slug}",
        name=name,
        currency="EUR",
        timezone="Europe/Paris",
        net_payment_term=net_payment_term,
        billing_configuration={"invoice_grace_period": grace},
    )
    metric = factories.make_billable_metric(org, name="API calls", code=f"calls_{slug}")
    charge = {
        "billable_metric_id": str(metric.lago_id),
        "charge_model": "standard",
        "properties": {"amount": "0.5"},
    }
    plan = factories.make_plan(org, charges=[charge], name="Starter", amount_cents=1000)
    subscription = factories.make_subscription(
        org, customer, plan, external_id=f"sub-{slug}", subscription_at="2026-04-01T00:00:00+02:00"
    )
    if units:
        factories.send_event(org, subscription, at("2026-04-10T10:00:00"), value=units)
    return customer, subscription


def close(clock, when=CLOSE_AT):
    clock[0] = at(when)
    report = invoicing.close_periods()
    assert report.failed == []
    db.session.commit()


def invoice_of(org, customer):
    [invoice] = [i for i in invoices_of(org) if i.customer_id == customer.id]
    return invoice


def money(cents):
    return format_money(cents, "EUR")


def text(response):
    """The response's text with tags and runs of spaces collapsed (what a reader sees)."""
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", body.replace("&nbsp;", " ").replace("\xa0", " "))


@pytest.fixture
def acme(org, clock):
    """Acme: a finalized April invoice (no grace period)."""
    customer, _ = billed_customer(org, clock, "Acme")
    return customer


@pytest.fixture
def globex(org, clock):
    """Globex: a draft April invoice (3 days of grace)."""
    customer, _ = billed_customer(org, clock, "Globex", grace=3, units=5)
    return customer


def test_list_shows_invoices_with_filters_and_search(agent_client, org, clock, acme, globex):
    close(clock)
    final, draft = invoice_of(org, acme), invoice_of(org, globex)
    assert (final.status, draft.status) == ("finalized", "draft")

    page = agent_client.get("/invoices")
    assert page.status_code == 200
    body = text(page)
    assert final.number in body and draft.number in body
    assert "Acme" in body and "Globex" in body
    assert money(final.total_amount_cents) in body
    assert "2 invoices" in body

    drafts = agent_client.get("/invoices?status=draft", htmx=True)
    assert "<html" not in drafts.get_data(as_text=True)  # the table alone
    assert 'id="invoice-table"' in drafts.get_data(as_text=True)
    assert draft.number in text(drafts) and final.number not in text(drafts)

    found = text(agent_client.get("/invoices?q=ext-glob"))
    assert draft.number in found and final.number not in found
    found = text(agent_client.get(f"/invoices?q={final.number}"))
    assert final.number in found and draft.number not in found

    assert "0 invoices" in text(agent_client.get("/invoices?overdue=yes"))
    assert "0 invoices" in text(agent_client.get("/invoices?issued_from=2026-05-02"))
    issued = text(agent_client.get("/invoices?issued_from=2026-05-01&issued_to=2026-05-01"))
    assert "2 invoices" in issued
    pending = text(agent_client.get("/invoices?payment_status=pending&status=finalized"))
    assert final.number in pending and draft.number not in pending
    # a nonsense filter counts as absent, never an error
    assert agent_client.get("/invoices?status=bogus&issued_from=soon&page=x").status_code == 200


def test_filters_keep_their_values_in_links(agent_client, org, clock, acme):
    close(clock)
    page = agent_client.get("/invoices?status=finalized&q=acme").get_data(as_text=True)
    assert 'hx-push-url="true"' in page
    assert re.search(r'<option value="finalized"\s+selected', page)
    assert 'value="acme"' in page


def test_customer_tab_is_scoped_to_the_customer(agent_client, org, clock, acme, globex):
    close(clock)
    final, draft = invoice_of(org, acme), invoice_of(org, globex)

    tab = agent_client.get(f"/customers/{acme.lago_id}/invoices")
    assert tab.status_code == 200
    assert final.number in text(tab) and draft.number not in text(tab)

    fragment = agent_client.get(f"/customers/{acme.lago_id}/invoices?status=draft", htmx=True)
    assert 'id="customer-tab"' in fragment.get_data(as_text=True)
    assert "0 invoices" in text(fragment)

    overview = text(agent_client.get(f"/customers/{acme.lago_id}"))
    assert "Latest invoices" in overview and final.number in overview
    assert draft.number not in overview


def test_a_reused_external_id_does_not_show_the_deleted_customers_invoices(
    agent_client, org, clock, acme
):
    close(clock)
    old = invoice_of(org, acme)
    customer_service.delete_customer(org, acme, factories.TEST_ACTOR)
    db.session.commit()
    successor = factories.make_customer(org, external_id=acme.external_id, currency="EUR")

    tab = text(agent_client.get(f"/customers/{successor.lago_id}/invoices"))
    overview = text(agent_client.get(f"/customers/{successor.lago_id}"))

    assert old.number not in tab and "0 invoices" in tab
    assert old.number not in overview
    assert old.number in text(agent_client.get(f"/customers/{acme.lago_id}/invoices"))


def test_invoice_page_shows_periods_fees_and_totals_of_the_invoice(agent_client, org, clock, acme):
    close(clock)
    invoice = invoice_of(org, acme)
    assert_amount_relations(invoice)
    base, usage = invoice.fees

    page = agent_client.get(f"/invoices/{invoice.lago_id}")
    assert page.status_code == 200
    body = text(page)
    assert invoice.number in body and "Acme" in body
    assert "Europe/Paris" in body
    assert invoice.issuing_date.isoformat() in body
    assert invoice.payment_due_date.isoformat() in body
    # the fee lines: the base fee with its period, the usage with its units
    assert "Starter" in body and "API calls" in body
    assert "2026-04-01 → 2026-04-30" in body
    assert money(base.amount_cents) in body and money(usage.amount_cents) in body
    assert "3 events" not in body and "1 event" in body
    assert re.search(r"API calls .*? 3 €0\.50 €1\.50", body)
    # every amount relation line, even at zero
    for label, cents in [
        ("Fees", invoice.fees_amount_cents),
        ("Coupons", invoice.coupons_amount_cents),
        ("Subtotal excluding taxes", invoice.sub_total_excluding_taxes_amount_cents),
        ("Taxes", invoice.taxes_amount_cents),
        ("Subtotal including taxes", invoice.sub_total_including_taxes_amount_cents),
        ("Credit notes", invoice.credit_notes_amount_cents),
        ("Prepaid credits", invoice.prepaid_credit_amount_cents),
        ("Total", invoice.total_amount_cents),
        ("Amount due", invoice.total_due_amount_cents),
    ]:
        assert re.search(rf"{label} −?{re.escape(money(cents))}", body), label
    assert invoice.total_amount_cents == base.amount_cents + usage.amount_cents == 1150


def test_finalize_a_draft_gives_it_a_number(agent_client, org, clock, globex):
    close(clock)
    draft = invoice_of(org, globex)
    page = agent_client.get(f"/invoices/{draft.lago_id}").get_data(as_text=True)
    assert ">Finalize</button>" in page and "Mark paid" not in page

    clock[0] = at("2026-05-02T09:00:00")
    response = agent_client.post(f"/invoices/{draft.lago_id}/finalize", htmx=True)
    assert response.status_code == 200
    db.session.expire_all()
    invoice = invoice_of(org, globex)
    assert (invoice.status, invoice.number) == ("finalized", f"{globex.slug}-001")
    assert invoice.issuing_date.isoformat() == "2026-05-02"
    body = text(response)
    assert f"Invoice finalized as {invoice.number}" in body
    assert 'id="invoice-detail"' in response.get_data(as_text=True)
    assert "Mark paid" in body and ">Finalize</button>" not in response.get_data(as_text=True)
    finalized = [("invoice.finalized", str(draft.lago_id), {})]
    assert factories.console_activity(agent_client.agent) == finalized

    # finalizing again (a stale page) is a message, not an error, and writes nothing
    again = agent_client.post(f"/invoices/{draft.lago_id}/finalize", follow_redirects=True)
    assert again.status_code == 200
    assert "no longer a draft" in text(again)
    assert factories.console_activity(agent_client.agent) == finalized


def test_refresh_a_draft_counts_late_events(agent_client, org, clock, globex):
    close(clock)
    draft = invoice_of(org, globex)
    before = draft.total_amount_cents
    clock[0] = at("2026-05-02T09:00:00")
    subscription = draft.invoice_subscriptions[0].subscription
    factories.send_event(org, subscription, at("2026-04-30T10:00:00"), value=4)

    response = agent_client.post(f"/invoices/{draft.lago_id}/refresh", follow_redirects=True)
    assert response.status_code == 200
    assert "Draft refreshed" in text(response)
    db.session.expire_all()
    assert invoice_of(org, globex).total_amount_cents == before + 200
    assert money(before + 200) in text(response)
    assert factories.console_activity(agent_client.agent) == [
        ("invoice.refreshed", str(draft.lago_id), {"total_amount_cents": [before, before + 200]})
    ]


def test_mark_paid_clears_the_overdue_badge_and_the_balances(agent_client, org, clock, acme):
    close(clock)
    invoice = invoice_of(org, acme)
    clock[0] = at("2026-05-09T12:00:00")  # due on 8 May in Paris
    invoicing.mark_overdue_invoices()
    db.session.commit()

    assert "Overdue" in text(agent_client.get(f"/invoices/{invoice.lago_id}"))
    assert invoice.number in text(agent_client.get("/invoices?overdue=yes"))

    response = agent_client.post(
        f"/invoices/{invoice.lago_id}/payment-status",
        data={"payment_status": "succeeded"},
        htmx=True,
    )
    assert response.status_code == 200
    body = text(response)
    assert f"Invoice {invoice.number} marked as paid" in body
    assert "Overdue" not in body and "Mark paid" not in body and "Void" not in body
    assert re.search(rf"Amount due {re.escape(money(0))}", body)
    db.session.expire_all()
    invoice = invoice_of(org, acme)
    assert (invoice.payment_status, invoice.payment_overdue) == ("succeeded", False)
    assert "0 invoices" in text(agent_client.get("/invoices?overdue=yes"))
    assert factories.console_activity(agent_client.agent) == [
        (
            "invoice.payment_status_updated",
            str(invoice.lago_id),
            {"payment_status": ["pending", "succeeded"]},
        )
    ]


def test_mark_failed_and_refused_payment_statuses(agent_client, org, clock, acme, globex):
    close(clock)
    final, draft = invoice_of(org, acme), invoice_of(org, globex)
    response = agent_client.post(
        f"/invoices/{final.lago_id}/payment-status",
        data={"payment_status": "failed"},
        follow_redirects=True,
    )
    assert f"Invoice {final.number} marked as failed" in text(response)
    db.session.expire_all()
    assert invoice_of(org, acme).payment_status == "failed"

    refused = agent_client.post(
        f"/invoices/{draft.lago_id}/payment-status",
        data={"payment_status": "succeeded"},
        follow_redirects=True,
    )
    assert refused.status_code == 200
    assert "finalize it first" in text(refused)
    nonsense = agent_client.post(
        f"/invoices/{final.lago_id}/payment-status",
        data={"payment_status": "maybe"},
        follow_redirects=True,
    )
    assert "Choose paid or failed" in text(nonsense)
    db.session.expire_all()
    assert invoice_of(org, globex).payment_status == "pending"
    # the refusals leave no trace in the audit log
    assert factories.console_activity(agent_client.agent) == [
        (
            "invoice.payment_status_updated",
            str(final.lago_id),
            {"payment_status": ["pending", "failed"]},
        )
    ]


def test_void_asks_for_confirmation(agent_client, org, clock, acme):
    close(clock)
    invoice = invoice_of(org, acme)
    page = agent_client.get(f"/invoices/{invoice.lago_id}").get_data(as_text=True)
    assert "hx-confirm=" in page and f"/invoices/{invoice.lago_id}/void" in page

    confirm = agent_client.get(f"/invoices/{invoice.lago_id}/void")
    assert confirm.status_code == 200
    assert f"Void invoice {invoice.number} ?" in text(confirm)
    unticked = agent_client.post(f"/invoices/{invoice.lago_id}/void", data={})
    assert unticked.status_code == 422
    db.session.expire_all()
    assert invoice_of(org, acme).status == "finalized"
    assert factories.console_activity(agent_client.agent) == []

    response = agent_client.post(f"/invoices/{invoice.lago_id}/void", data={"confirm": "y"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/invoices/{invoice.lago_id}")
    db.session.expire_all()
    assert invoice_of(org, acme).status == "voided"
    after = text(agent_client.get(f"/invoices/{invoice.lago_id}"))
    assert "Voided" in after and "Mark paid" not in after
    voided = [("invoice.voided", str(invoice.lago_id), {})]
    assert factories.console_activity(agent_client.agent) == voided

    again = agent_client.post(f"/invoices/{invoice.lago_id}/void", data={"confirm": "y"}, htmx=True)
    assert again.status_code == 200
    assert "Only a finalized invoice" in text(again)
    assert factories.console_activity(agent_client.agent) == voided


def test_viewers_see_everything_but_no_actions(make_agent_client, org, clock, acme, globex):
    close(clock)
    viewer = make_agent_client("viewer")
    for invoice in (invoice_of(org, acme), invoice_of(org, globex)):
        page = viewer.get(f"/invoices/{invoice.lago_id}")
        assert page.status_code == 200
        body = text(page)
        assert invoice.number in body and money(invoice.total_amount_cents) in body
        for action in ("Finalize", "Refresh", "Mark paid", "Mark failed", "Void…"):
            assert f"{action}</button>" not in page.get_data(as_text=True)
        actions = re.search(r'id="invoice-actions".*?</div>', page.get_data(as_text=True), re.S)
        assert "<form" not in actions[0]
        for path in ("finalize", "refresh", "void"):
            assert viewer.post(f"/invoices/{invoice.lago_id}/{path}", data={}).status_code == 403
        refused = viewer.post(
            f"/invoices/{invoice.lago_id}/payment-status", data={"payment_status": "succeeded"}
        )
        assert refused.status_code == 403
    assert viewer.get("/invoices").status_code == 200
    db.session.expire_all()
    assert invoice_of(org, globex).status == "draft"


def test_another_organizations_invoice_does_not_exist(agent_client, clock):
    other = factories.make_organization()
    customer, _ = billed_customer(other, clock, "Initech")
    close(clock)
    invoice = invoice_of(other, customer)
    assert agent_client.get(f"/invoices/{invoice.lago_id}").status_code == 404
    post = agent_client.post(f"/invoices/{invoice.lago_id}/finalize")
    assert post.status_code == 404
    assert invoice.number not in text(agent_client.get("/invoices"))


def test_customer_header_shows_outstanding_overdue_and_gross_revenue(
    agent_client, org, clock, acme
):
    def slots():
        body = text(agent_client.get(f"/customers/{acme.lago_id}"))
        found = re.search(r"Outstanding (\S+) Overdue (\S+) Gross revenue (\S+)", body)
        return found.groups()

    assert slots() == (money(0), money(0), money(0))
    close(clock)
    april = invoice_of(org, acme)
    assert slots() == (money(1150), money(0), money(1150))

    clock[0] = at("2026-05-09T12:00:00")
    invoicing.mark_overdue_invoices()
    db.session.commit()
    assert slots() == (money(1150), money(1150), money(1150))

    invoicing.update_invoice(april, {"payment_status": "succeeded"}, invoicing.audit.SYSTEM)
    db.session.commit()
    assert slots() == (money(0), money(0), money(1150))
    [balance] = analytics.customer_balances(acme)
    assert (balance.currency, balance.gross_revenue_cents) == ("EUR", 1150)

    # a refund is revenue given back
    fee = april.fees[0]
    note = {"invoice_id": str(april.lago_id), "reason": "other", "refund_amount_cents": 150,
            "items": [{"fee_id": str(fee.lago_id), "amount_cents": 150}]}  # fmt: skip
    credit_notes.create_credit_note(april, note, invoicing.audit.SYSTEM)
    db.session.commit()
    assert slots() == (money(0), money(0), money(1000))
