"""`make run`'s demo data shows one credit note offset on an overdue invoice, seeded once."""

from __future__ import annotations

from billing.demo import DEMO_API_KEY
from tests.test_cli import run


def test_demo_seed_offsets_an_overdue_invoice_once(app, client, db_session):
    run(app, "demo", "seed")
    run(app, "demo", "seed")
    api = {"Authorization": f"Bearer {DEMO_API_KEY}"}

    notes = client.get("/api/v1/credit_notes", headers=api).get_json()["credit_notes"]
    [offset] = [note for note in notes if note["offset_amount_cents"]]
    invoice = client.get(f"/api/v1/invoices/{offset['lago_invoice_id']}", headers=api).get_json()[
        "invoice"
    ]

    assert offset["offset_amount_cents"] == offset["total_amount_cents"] > 0
    assert invoice["total_offsetted_credit_note_amount_cents"] == offset["offset_amount_cents"]
    assert invoice["total_due_amount_cents"] == (
        invoice["total_amount_cents"] - offset["offset_amount_cents"]
    )
    assert invoice["payment_overdue"] is True
