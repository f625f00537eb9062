"""The command line: organizations, agents and the demo seed, as an operator uses them."""

import hashlib
import re
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from billing.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, DEMO_API_KEY, DRAFT_GRACE_DAYS
from billing.models import ActivityLog, Agent, ApiKey, Customer, Event, Organization, OutboxEvent
from billing.timeutil import now_utc, set_clock
from extensions import db


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_orgs_create_prints_an_id_and_a_working_api_key(app, client, db_session):
    result = run(app, "orgs", "create", "Initech")

    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.output.strip().splitlines())
    assert set(lines) == {"organization_id", "api_key"}
    response = client.get(
        "/api/v1/customers", headers={"Authorization": f"Bearer {lines['api_key']}"}
    )
    assert response.status_code == 200


def test_orgs_create_with_a_given_key_and_refusals(app, client, db_session):
    given = "ll_my_chosen_key_1234567890"
    assert run(app, "orgs", "create", "Globex", "--api-key", given).exit_code == 0
    assert (
        client.get("/api/v1/customers", headers={"Authorization": f"Bearer {given}"}).status_code
        == 200
    )

    duplicate = run(app, "orgs", "create", "Globex")
    short_key = run(app, "orgs", "create", "Other", "--api-key", "short")

    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    assert short_key.exit_code != 0 and "api_key" in short_key.output


def test_an_api_key_is_stored_as_its_sha256_only(app, db_session):
    """The key is shown once: what is stored (its hash and a short prefix for lookup) cannot give
    it back, and neither can the audit trail or the outbox."""
    result = run(app, "orgs", "create", "Umbrella")
    lines = dict(line.split(": ", 1) for line in result.output.strip().splitlines())
    raw_key = lines["api_key"]
    organization_id = db_session.scalar(
        select(Organization.id).where(Organization.lago_id == uuid.UUID(lines["organization_id"]))
    )

    [row] = db_session.execute(
        select(ApiKey.__table__).where(ApiKey.organization_id == organization_id)
    ).all()
    assert row.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    assert raw_key.startswith(row.prefix) and len(row.prefix) < len(raw_key) // 2
    assert not any(raw_key in str(value) for value in row)
    logs = db_session.execute(
        select(ActivityLog.__table__).where(ActivityLog.organization_id == organization_id)
    ).all()
    events = db_session.execute(
        select(OutboxEvent.__table__).where(OutboxEvent.organization_id == organization_id)
    ).all()
    assert any(log.resource_type == "api_key" for log in logs)
    assert not any(raw_key in str(value) for written in logs + events for value in written)


def test_agents_create(app, db_session):
    run(app, "orgs", "create", "Hooli")

    ok = run(app, "agents", "create", "Gavin@Hooli.test", "--org", "Hooli", "--role", "admin",
             "--password", "correct horse")  # fmt: skip
    again = run(app, "agents", "create", "gavin@hooli.test", "--org", "Hooli", "--role", "viewer",
                "--password", "correct horse")  # fmt: skip
    no_org = run(app, "agents", "create", "x@y.test", "--org", "Nope", "--role", "admin",
                 "--password", "correct horse")  # fmt: skip
    bad_role = run(app, "agents", "create", "z@y.test", "--org", "Hooli", "--role", "god",
                   "--password", "correct horse")  # fmt: skip
    weak = run(app, "agents", "create", "w@y.test", "--org", "Hooli", "--role", "support",
               "--password", "short")  # fmt: skip

    assert ok.exit_code == 0, ok.output
    agent = db_session.scalar(select(Agent).where(Agent.email == "gavin@hooli.test"))
    assert agent.role.value == "admin"
    assert agent.password_hash != "correct horse"
    assert again.exit_code != 0 and "already exists" in again.output
    assert no_org.exit_code != 0 and "no organization" in no_org.output
    assert bad_role.exit_code != 0
    assert weak.exit_code != 0 and "password" in weak.output


def test_demo_seed_is_idempotent_and_prints_demo_credentials(app, client, db_session):
    first = run(app, "demo", "seed")
    second = run(app, "demo", "seed")

    assert first.exit_code == 0, first.output
    for output in (first.output, second.output):  # printed at every run, labelled demo-only
        assert "DEMO ONLY" in output and DEMO_API_KEY in output
        assert f"{DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD}" in output
    assert "(0 new)" in second.output
    demo = (
        Customer.organization_id
        == select(Organization.id).where(Organization.name == "Demo Org").scalar_subquery()
    )
    total = db.session.scalar(select(func.count()).where(demo, Customer.deleted_at.is_(None)))
    assert 18 <= total <= 25
    # A little history: one customer edited by the demo admin, one churned (deleted).
    assert (
        db.session.scalar(select(func.count()).where(demo, Customer.deleted_at.is_not(None))) == 1
    )

    response = client.get(
        "/api/v1/customers?per_page=100", headers={"Authorization": f"Bearer {DEMO_API_KEY}"}
    )
    customers = response.get_json()["customers"]
    assert len(customers) == total
    assert any(c["external_id"].startswith("cus_") for c in customers)
    assert any(c["metadata"] for c in customers)

    # The printed console credentials sign in, as the demo's admin.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").text)
    signed_in = client.post(
        "/login",
        data={"csrf_token": token.group(1), "email": DEMO_ADMIN_EMAIL,
              "password": DEMO_ADMIN_PASSWORD},
    )  # fmt: skip
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
    settings = client.get("/settings")
    assert settings.status_code == 200 and "Demo Org" in settings.text


def test_demo_seed_under_a_frozen_clock_keeps_that_clock(app, client, db_session):
    """A test can seed the demo at a moment of its choosing: the seed replays its history day
    by day under clocks of its own, then gives the frozen clock back."""
    moment = datetime(2026, 3, 16, 9, 30, tzinfo=UTC)
    set_clock(lambda: moment)

    result = run(app, "demo", "seed")

    assert result.exit_code == 0, result.output
    assert now_utc() == moment
    api = {"Authorization": f"Bearer {DEMO_API_KEY}"}
    invoices = client.get("/api/v1/invoices?per_page=100", headers=api).get_json()["invoices"]
    assert invoices and max(i["issuing_date"] for i in invoices) <= "2026-03-16"


def test_demo_seed_meters_usage_once(app, client, db_session):
    """The demo shows plans, live subscriptions with a month of usage, a scheduled downgrade,
    a subscription waiting for its start and the rejected events of the debugger."""
    first = run(app, "demo", "seed")
    second = run(app, "demo", "seed")
    api = {"Authorization": f"Bearer {DEMO_API_KEY}"}

    assert "subscriptions" in first.output and "events" in first.output
    assert "usage" not in second.output
    plans = client.get("/api/v1/plans", headers=api).get_json()["plans"]
    assert {"starter", "growth", "growth_usd", "marketplace"} <= {p["code"] for p in plans}
    usage = client.get(
        "/api/v1/customers/acme-corp/current_usage?external_subscription_id=acme-growth",
        headers=api,
    ).get_json()["customer_usage"]
    assert usage["currency"] == "USD" and usage["amount_cents"] > 0
    assert all(charge["events_count"] > 0 for charge in usage["charges_usage"])
    statuses = client.get(
        "/api/v1/subscriptions?external_customer_id=vandelay&status[]=active&status[]=pending",
        headers=api,
    ).get_json()["subscriptions"]
    assert {(s["status"], s["plan_code"]) for s in statuses} == {
        ("active", "growth_usd"),
        ("pending", "starter_usd"),
    }
    pending = client.get("/api/v1/subscriptions/rossi-starter?status=pending", headers=api)
    assert pending.get_json()["subscription"]["status"] == "pending"
    rejected = db.session.scalar(
        select(func.count())
        .select_from(Event)
        .join(Organization, Organization.id == Event.organization_id)
        .where(Organization.name == "Demo Org", Event.error_code.is_not(None))
    )
    assert rejected == 2
    # Billing history replayed: paid invoices, drafts of the month that just ended (Soylent's
    # grace period is longer than a month: whatever the day and hour of the seed), and one
    # customer who has not paid.
    invoices = client.get("/api/v1/invoices?per_page=100", headers=api).get_json()["invoices"]
    assert {"finalized", "draft"} <= {i["status"] for i in invoices}
    assert "soylent" in {i["customer"]["external_id"] for i in invoices if i["status"] == "draft"}
    soylent = client.get("/api/v1/customers/soylent", headers=api).get_json()["customer"]
    assert soylent["billing_configuration"]["invoice_grace_period"] == DRAFT_GRACE_DAYS > 31
    assert any(i["payment_status"] == "succeeded" for i in invoices)
    overdue = client.get("/api/v1/invoices?payment_overdue=true", headers=api).get_json()
    assert {i["customer"]["external_id"] for i in overdue["invoices"]} == {"hooli"}
    # Taxes: French VAT by default, the reduced rate on the euro Starter plan.
    taxed = {
        i["customer"]["external_id"]: {t["tax_code"] for t in i["applied_taxes"]}
        for i in invoices
        if i["fees_amount_cents"]
    }
    assert taxed["initech"] == {"vat_fr_reduced"} and taxed["globex"] == {"vat_fr"}
    assert all(i["taxes_amount_cents"] > 0 for i in invoices if i["fees_amount_cents"] >= 100)
    # Initech's welcome credits (25 EUR) paid part of its first invoice.
    [wallet] = client.get("/api/v1/wallets?external_customer_id=initech", headers=api).get_json()[
        "wallets"
    ]
    paid_by_credits = [i for i in invoices if i["prepaid_credit_amount_cents"] > 0]
    assert [i["customer"]["external_id"] for i in paid_by_credits] == ["initech"]
    assert wallet["consumed_amount_cents"] == paid_by_credits[0]["prepaid_credit_amount_cents"]
    assert wallet["balance_cents"] == 2500 - wallet["consumed_amount_cents"]
