"""Two finalizations, or two period closes, at once against the real database: a fixed coupon
is never taken twice and nobody deadlocks, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from billing.models import AppliedCoupon, Invoice, Subscription
from billing.services import coupons as coupon_service
from billing.services import invoicing
from extensions import db
from tests import factories

pytestmark = pytest.mark.live


@pytest.fixture
def customer_with_coupon(live_server: Any) -> Iterator[Callable[..., tuple[int, int]]]:
    """make(subscriptions, amount_cents, **customer) → (organization id, customer id): a
    customer with that many 10.00 monthly subscriptions since 2020 and a fixed coupon of that
    amount applied once; its subscriptions are terminated afterwards (the database is shared)."""
    app = live_server.app
    organizations: list[int] = []

    def make(subscriptions: int, amount_cents: int, **customer_fields: Any) -> tuple[int, int]:
        with app.app_context():
            organization = factories.make_organization()
            customer = factories.make_customer(organization, currency="EUR", **customer_fields)
            plan = factories.make_plan(organization, charges=[])
            for _ in range(subscriptions):
                factories.make_subscription(
                    organization, customer, plan, subscription_at="2020-01-01T00:00:00Z"
                )
            coupon_service.create_coupon(
                organization,
                {"name": "Big", "code": "big", "coupon_type": "fixed_amount",
                 "amount_cents": amount_cents, "amount_currency": "EUR", "frequency": "once"},
                factories.TEST_ACTOR,
            )  # fmt: skip
            coupon_service.apply_coupon(
                organization,
                {"external_customer_id": customer.external_id, "coupon_code": "big"},
                factories.TEST_ACTOR,
            )
            db.session.commit()
            organizations.append(organization.id)
            return organization.id, customer.id

    yield make
    with app.app_context():
        db.session.execute(
            update(Subscription)
            .where(Subscription.organization_id.in_(organizations))
            .values(status="terminated", next_invoice_at=None)
        )
        db.session.commit()


def run_at_once(app: Any, targets: list[Callable[[], None]]) -> list[BaseException]:
    """Each target in its own thread and app context, started together; the errors raised."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target: Callable[[], None]) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=60)
                target()
            except BaseException as exc:  # noqa: BLE001  (reported to the test)
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def coupons_taken(customer_id: int) -> tuple[list[int], tuple[int | None, str]]:
    """Each invoice's coupons amount, and what is left of the applied coupon."""
    taken = db.session.scalars(
        select(Invoice.coupons_amount_cents).where(Invoice.customer_id == customer_id)
    ).all()
    applied = db.session.scalar(
        select(AppliedCoupon).where(AppliedCoupon.customer_id == customer_id)
    )
    return list(taken), (applied.amount_cents_remaining, applied.status)


def test_two_drafts_finalized_at_once_share_a_fixed_coupon(live_server, customer_with_coupon):
    app = live_server.app
    organization_id, customer_id = customer_with_coupon(
        2, 1500, billing_configuration={"invoice_grace_period": 3}
    )
    with app.app_context():
        invoicing.close_periods(
            datetime(2020, 2, 1, 0, 1, tzinfo=UTC), organization_id=organization_id
        )
        drafts = db.session.scalars(
            select(Invoice.id).where(Invoice.customer_id == customer_id).order_by(Invoice.id)
        ).all()
    assert len(drafts) == 2

    def finalizing(invoice_id: int) -> Callable[[], None]:
        def finalize() -> None:
            invoicing.finalize_invoice(db.session.get_one(Invoice, invoice_id))
            db.session.commit()

        return finalize

    assert run_at_once(app, [finalizing(invoice_id) for invoice_id in drafts]) == []
    with app.app_context():
        taken, left = coupons_taken(customer_id)
    assert sorted(taken) == [500, 1000]
    assert left == (0, "terminated")


def test_two_closes_at_once_never_take_a_fixed_coupon_twice(
    live_server, customer_with_coupon, monkeypatch
):
    """Six subscriptions of one customer closed by two processes in batches of two: the
    customer's 25.00 coupon is taken once in total, invoice after invoice."""
    monkeypatch.setattr(invoicing, "CLOSE_BATCH", {"postgresql": 2, "sqlite": 2})
    organization_id, customer_id = customer_with_coupon(6, 2500)

    def close() -> None:
        report = invoicing.close_periods(
            datetime(2020, 3, 1, 0, 1, tzinfo=UTC), organization_id=organization_id
        )
        assert report.failed == []

    assert run_at_once(live_server.app, [close, close]) == []
    with live_server.app.app_context():
        taken, left = coupons_taken(customer_id)
    assert (len(taken), sum(taken)) == (12, 2500)
    assert left == (0, "terminated")
