"""The `make run` demo shows coupons: the launch offer on Globex's invoices."""

from __future__ import annotations

from billing.demo import DEMO_API_KEY
from tests.test_cli import run


def test_demo_seed_applies_a_coupon_that_globex_invoices_show(app, client, db_session):
    run(app, "demo", "seed")
    api = {"Authorization": f"Bearer {DEMO_API_KEY}"}

    coupons = client.get("/api/v1/coupons", headers=api).get_json()["coupons"]
    assert {c["code"] for c in coupons} == {"launch20", "welcome50"}
    invoices = client.get(
        "/api/v1/invoices?external_customer_id=globex&invoice_type=subscription", headers=api
    ).get_json()["invoices"]
    # 20 % of each invoice's fees, before taxes (rounded half up)
    assert invoices
    assert all(
        i["coupons_amount_cents"] == (i["fees_amount_cents"] * 20 + 50) // 100 for i in invoices
    )
    assert any(i["coupons_amount_cents"] > 0 for i in invoices)
