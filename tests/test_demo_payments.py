"""`make run`'s demo data shows partial payments and an invoice paid through Stripe, seeded once."""

from __future__ import annotations

from billing.demo import DEMO_API_KEY
from tests.test_cli import run


def test_demo_seed_pays_some_invoices_once(app, client, db_session):
    run(app, "demo", "seed")
    run(app, "demo", "seed")
    api = {"Authorization": f"Bearer {DEMO_API_KEY}"}

    payments = client.get("/api/v1/payments", headers=api).get_json()["payments"]
    manual = [p for p in payments if p["type"] == "manual"]
    [stripe] = [p for p in payments if p["type"] == "provider"]

    assert len(manual) == 2
    for payment in manual:
        [invoice_id] = payment["invoice_ids"]
        invoice = client.get(f"/api/v1/invoices/{invoice_id}", headers=api).get_json()["invoice"]
        assert 0 < invoice["total_paid_amount_cents"] == payment["amount_cents"]
        assert (
            invoice["total_due_amount_cents"]
            == (invoice["total_amount_cents"] - payment["amount_cents"])
            > 0
        )
        assert invoice["payment_status"] == "pending"
    paid = client.get(f"/api/v1/invoices/{stripe['invoice_ids'][0]}", headers=api).get_json()[
        "invoice"
    ]
    assert (paid["payment_status"], paid["total_due_amount_cents"]) == ("succeeded", 0)
    assert stripe["external_payment_id"] == "pi_demo_0001"
