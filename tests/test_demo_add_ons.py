"""`make run`'s demo data shows add-ons and one one-off invoice, seeded once."""

from __future__ import annotations

from billing.demo import DEMO_API_KEY
from tests.test_cli import run


def test_demo_seed_adds_add_ons_and_one_one_off_invoice(app, client, db_session):
    run(app, "demo", "seed")
    run(app, "demo", "seed")
    api = {"Authorization": f"Bearer {DEMO_API_KEY}"}

    add_ons = client.get("/api/v1/add_ons", headers=api).get_json()["add_ons"]
    one_offs = client.get("/api/v1/invoices?invoice_type=one_off", headers=api).get_json()[
        "invoices"
    ]

    assert {a["name"] for a in add_ons} == {"Onboarding", "Priority support"}
    [invoice] = one_offs
    assert invoice["customer"]["external_id"] == "globex"
    onboarding = next(a for a in add_ons if a["code"] == "onboarding")
    assert [tax["code"] for tax in onboarding["taxes"]] == ["vat_fr_reduced"]
    # €490.00 at the onboarding add-on's reduced VAT (10%): €49.00; 2.5 hours × €150.00 =
    # €375.00 at the organization's default VAT (20%): €75.00
    assert invoice["status"] == "finalized" and invoice["fees_amount_cents"] == 86500
    assert invoice["taxes_amount_cents"] == 12400 and invoice["total_amount_cents"] == 98900
    assert {
        (t["tax_code"], t["fees_amount_cents"], t["amount_cents"]) for t in invoice["applied_taxes"]
    } == {("vat_fr", 37500, 7500), ("vat_fr_reduced", 49000, 4900)}
