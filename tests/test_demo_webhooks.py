"""`make run`'s demo data shows a customer created by a CRM through the inbound hook, once."""

from __future__ import annotations

from sqlalchemy import select

from billing.demo import DEMO_API_KEY
from billing.models import InboundDelivery
from extensions import db
from tests.test_cli import run


def test_demo_seed_records_one_inbound_crm_customer(app, client, db_session):
    run(app, "demo", "seed")
    run(app, "demo", "seed")
    api = {"Authorization": f"Bearer {DEMO_API_KEY}"}
    found = client.get("/api/v1/customers?search_term=umbrella", headers=api).get_json()
    [customer] = [c for c in found["customers"] if c["name"] == "Umbrella Logistics"]
    assert [i["type"] for i in customer["integration_customers"]] == ["hubspot"]
    [delivery] = db.session.scalars(select(InboundDelivery)).all()
    assert delivery.response_status == 201
