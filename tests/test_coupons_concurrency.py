"""Two finalizations at once against the real database: a fixed coupon is never taken twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from billing.models import AppliedCoupon, Invoice, Subscription
from billing.services import coupons as coupon_service
from billing.services import invoicing
from extensions import db
from tests import factories

pytestmark = pytest.mark.live


def test_two_drafts_finalized_at_once_share_a_fixed_coupon(live_server):
    app = live_server.app
    with app.app_context():
        organization = factories.make_organization()
        customer = factories.make_customer(
            organization, currency="EUR", billing_configuration={"invoice_grace_period": 3}
        )
        plan = factories.make_plan(organization, charges=[])
        for _ in range(2):
            factories.make_subscription(
                organization, customer, plan, subscription_at="2020-01-01T00:00:00Z"
            )
        coupon_service.create_coupon(
            organization,
            {"name": "Big", "code": "big", "coupon_type": "fixed_amount",
             "amount_cents": 1500, "amount_currency": "EUR", "frequency": "once"},
            factories.TEST_ACTOR,
        )  # fmt: skip
        coupon_service.apply_coupon(
            organization,
            {"external_customer_id": customer.external_id, "coupon_code": "big"},
            factories.TEST_ACTOR,
        )
        db.session.commit()
        invoicing.close_periods(
            datetime(2020, 2, 1, 0, 1, tzinfo=UTC), organization_id=organization.id
        )
        drafts = db.session.scalars(
            select(Invoice.id).where(Invoice.customer_id == customer.id).order_by(Invoice.id)
        ).all()
        assert len(drafts) == 2
        organization_id = organization.id
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def finalize(invoice_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=60)
                invoicing.finalize_invoice(db.session.get_one(Invoice, invoice_id))
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)

    threads = [threading.Thread(target=finalize, args=(invoice_id,)) for invoice_id in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    try:
        assert errors == []
        with app.app_context():
            taken = db.session.scalars(
                select(Invoice.coupons_amount_cents).where(Invoice.id.in_(drafts))
            ).all()
            assert sorted(taken) == [500, 1000]
            applied = db.session.scalar(
                select(AppliedCoupon).where(AppliedCoupon.customer_id == customer.id)
            )
            assert (applied.amount_cents_remaining, applied.status) == (0, "terminated")
    finally:
        with app.app_context():
            db.session.execute(
                update(Subscription)
                .where(Subscription.organization_id == organization_id)
                .values(status="terminated", next_invoice_at=None)
            )
            db.session.commit()


def test_two_closes_at_once_never_take_a_fixed_coupon_twice(live_server, monkeypatch):
    """Six subscriptions of one customer closed by two processes in batches of two: the
    customer's 25.00 coupon is taken once in total, invoice after invoice."""
    monkeypatch.setattr(invoicing, "CLOSE_BATCH", 2)
    app = live_server.app
    with app.app_context():
        organization = factories.make_organization()
        customer = factories.make_customer(organization, currency="EUR")
        plan = factories.make_plan(organization, charges=[])
        for _ in range(6):
            factories.make_subscription(
                organization, customer, plan, subscription_at="2020-01-01T00:00:00Z"
            )
        coupon_service.create_coupon(
            organization,
            {"name": "Big", "code": "big", "coupon_type": "fixed_amount",
             "amount_cents": 2500, "amount_currency": "EUR", "frequency": "once"},
            factories.TEST_ACTOR,
        )  # fmt: skip
        coupon_service.apply_coupon(
            organization,
            {"external_customer_id": customer.external_id, "coupon_code": "big"},
            factories.TEST_ACTOR,
        )
        db.session.commit()
        organization_id, customer_id = organization.id, customer.id
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def close() -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=60)
                report = invoicing.close_periods(
                    datetime(2020, 3, 1, 0, 1, tzinfo=UTC), organization_id=organization_id
                )
                assert report.failed == []
            except BaseException as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)

    threads = [threading.Thread(target=close) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    try:
        assert errors == []
        with app.app_context():
            taken = db.session.scalars(
                select(Invoice.coupons_amount_cents).where(Invoice.customer_id == customer_id)
            ).all()
            assert len(taken) == 12
            assert sum(taken) == 2500
            applied = db.session.scalar(
                select(AppliedCoupon).where(AppliedCoupon.customer_id == customer_id)
            )
            assert (applied.amount_cents_remaining, applied.status) == (0, "terminated")
    finally:
        with app.app_context():
            db.session.execute(
                update(Subscription)
                .where(Subscription.organization_id == organization_id)
                .values(status="terminated", next_invoice_at=None)
            )
            db.session.commit()
