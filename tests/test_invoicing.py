"""Period close with a frozen clock: what each subscription is billed, once, in its customer's
timezone; drafts, finalization and numbering; the close job rerun and caught up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from billing.models import OutboxEvent
from billing.services import invoicing
from billing.services import subscriptions as subscription_service
from extensions import db
from jobs.invoicing import run_draft_finalization, run_overdue_marking, run_period_close
from tests import factories
from tests.factories import invoices_of


def at(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = at("2024-01-01T00:00:00")


def subscribe(org, clock, start, *, timezone="UTC", charges=None, **plan):
    """A customer in `timezone` subscribed at `start` (the clock set there) to a plan with
    `plan` attributes (monthly, 1000 EUR cents, in arrears by default)."""
    clock[0] = at(start)
    billing_time = plan.pop("billing_time", "calendar")
    customer = plan.pop("customer", None) or factories.make_customer(
        org, currency="EUR", timezone=timezone, **plan.pop("customer_fields", {})
    )
    if charges == "usage":
        charges = None  # the factory's standard charge: 0.50 per unit of `value`
    elif charges is None:
        charges = []
    plan_ = factories.make_plan(org, charges=charges, **plan)
    return factories.make_subscription(
        org,
        customer,
        plan_,
        subscription_at=at(start).isoformat(),
        billing_time=billing_time,
    )


def close(clock, when, org):
    """Run the close at `when`; how many invoices it made for `org` (other tests' committed
    subscriptions may be closed too: the database is shared)."""
    clock[0] = at(when)
    before = len(invoices_of(org))
    report = invoicing.close_periods()
    assert report.failed == []
    return len(invoices_of(org)) - before


def periods(invoice):
    return [
        (
            link.invoicing_reason,
            link.from_datetime.isoformat(),
            link.to_datetime.isoformat(),
        )
        for link in invoice.invoice_subscriptions
    ]


def outbox_events(org, event_type):
    return db.session.scalar(
        select(func.count(OutboxEvent.id)).where(
            OutboxEvent.organization_id == org.id, OutboxEvent.event_type == event_type
        )
    )


def fee_amounts(invoice):
    return [(fee.fee_type, fee.amount_cents) for fee in invoice.fees]


def test_monthly_in_arrears_calendar_first_period_prorated(clock, org):
    subscribe(org, clock, "2024-01-16T10:00:00")
    assert close(clock, "2024-01-31T23:59:59", org) == 0

    assert close(clock, "2024-02-01T00:00:30", org) == 1

    [invoice] = invoices_of(org)
    assert periods(invoice) == [
        ("subscription_periodic", "2024-01-16T00:00:00+00:00", "2024-02-01T00:00:00+00:00")
    ]
    assert fee_amounts(invoice) == [("subscription", 516)]  # 16 of 31 days of 10.00
    assert (invoice.status, invoice.number) == ("finalized", f"{invoice.customer.slug}-001")
    assert invoice.issuing_date.isoformat() == "2024-02-01"
    assert invoice.payment_status == "pending"


def test_monthly_in_advance_bills_the_first_period_at_start_then_the_next_one(clock, org):
    subscription = subscribe(org, clock, "2024-01-16T10:00:00", pay_in_advance=True)

    [starting] = invoices_of(org)
    assert periods(starting) == [
        ("subscription_starting", "2024-01-16T00:00:00+00:00", "2024-02-01T00:00:00+00:00")
    ]
    assert fee_amounts(starting) == [("subscription", 516)]

    close(clock, "2024-02-01T00:01:00", org)
    [_, periodic] = invoices_of(org)
    link = periodic.invoice_subscriptions[0]
    assert periods(periodic) == [
        ("subscription_periodic", "2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00")
    ]
    assert (link.charges_from_datetime, link.charges_to_datetime) == (
        at("2024-01-16T00:00:00"),
        at("2024-02-01T00:00:00"),
    )
    assert fee_amounts(periodic) == [("subscription", 1000)]
    assert subscription.next_invoice_at == at("2024-03-01T00:00:00")
    assert [i.number[-3:] for i in invoices_of(org)] == ["001", "002"]


@pytest.mark.parametrize(
    ("interval", "billing_time", "start", "first_end", "amount"),
    [
        # weekly calendar: Monday to Monday; Wednesday start → 5 of 7 days
        ("weekly", "calendar", "2024-01-03T09:00:00", "2024-01-08T00:00:00", 714),
        ("weekly", "anniversary", "2024-01-03T09:00:00", "2024-01-10T00:00:00", 1000),
        # quarterly calendar from Feb 15: 46 of 91 days (Jan-Mar 2024)
        ("quarterly", "calendar", "2024-02-15T00:00:00", "2024-04-01T00:00:00", 505),
        ("quarterly", "anniversary", "2024-02-15T00:00:00", "2024-05-15T00:00:00", 1000),
        ("semiannual", "calendar", "2024-01-01T00:00:00", "2024-07-01T00:00:00", 1000),
        # yearly calendar from Jul 1 2024: 184 of 366 days
        ("yearly", "calendar", "2024-07-01T00:00:00", "2025-01-01T00:00:00", 503),
        ("yearly", "anniversary", "2024-02-29T00:00:00", "2025-02-28T00:00:00", 1000),
    ],
)
def test_intervals_and_billing_times(clock, org, interval, billing_time, start, first_end, amount):
    subscribe(org, clock, start, interval=interval, billing_time=billing_time)
    end = at(first_end)
    invoicing.close_periods(at(first_end) - invoicing._INSTANT)
    assert invoices_of(org) == []

    assert close(clock, first_end, org) == 1

    [invoice] = invoices_of(org)
    assert invoice.invoice_subscriptions[0].to_datetime == end
    assert fee_amounts(invoice) == [("subscription", amount)]


@pytest.mark.parametrize(
    ("timezone", "start", "period_end"),
    [
        # the month of March in Paris: from CET midnight to CEST midnight (DST on the 31st)
        ("Europe/Paris", "2024-02-29T23:00:00", "2024-03-31T22:00:00"),
        ("America/Los_Angeles", "2024-03-01T08:00:00", "2024-04-01T07:00:00"),
        ("Asia/Tokyo", "2024-02-29T15:00:00", "2024-03-31T15:00:00"),
        ("Pacific/Kiritimati", "2024-02-29T10:00:00", "2024-03-31T10:00:00"),
        ("UTC", "2024-03-01T00:00:00", "2024-04-01T00:00:00"),
    ],
)
def test_periods_end_at_local_midnight(clock, org, timezone, start, period_end):
    subscribe(org, clock, start, timezone=timezone)

    invoicing.close_periods(at(period_end) - invoicing._INSTANT)
    assert invoices_of(org) == []
    assert close(clock, period_end, org) == 1

    [invoice] = invoices_of(org)
    link = invoice.invoice_subscriptions[0]
    assert (link.from_datetime, link.to_datetime) == (at(start), at(period_end))
    assert fee_amounts(invoice) == [("subscription", 1000)]  # a whole month, 31 local days


def test_anniversary_from_january_31_and_catch_up_over_three_periods(clock, org):
    subscribe(org, clock, "2024-01-31T12:00:00", billing_time="anniversary")

    assert close(clock, "2024-04-30T08:00:00", org) == 3

    invoices = invoices_of(org)
    assert [periods(i)[0][1:] for i in invoices] == [
        ("2024-01-31T00:00:00+00:00", "2024-02-29T00:00:00+00:00"),
        ("2024-02-29T00:00:00+00:00", "2024-03-31T00:00:00+00:00"),
        ("2024-03-31T00:00:00+00:00", "2024-04-30T00:00:00+00:00"),
    ]
    assert [i.number[-3:] for i in invoices] == ["001", "002", "003"]
    assert all(fee_amounts(i) == [("subscription", 1000)] for i in invoices)


def test_the_close_run_twice_or_by_the_job_gives_one_invoice(clock, org):
    subscribe(org, clock, "2024-01-01T00:00:00")
    clock[0] = at("2024-02-01T00:00:10")

    run_period_close()
    run_period_close()
    invoicing.close_periods(at("2024-02-01T00:00:20"))

    assert len(invoices_of(org)) == 1


def test_a_rerun_after_a_crash_finds_the_period_billed_by_its_unique_key(clock, org):
    subscription = subscribe(org, clock, "2024-01-01T00:00:00")
    close(clock, "2024-02-01T00:00:10", org)
    # as if the process had died before moving next_invoice_at
    subscription.next_invoice_at = at("2024-02-01T00:00:00")
    db.session.commit()

    clock[0] = at("2024-02-01T00:01:00")
    report = invoicing.close_periods()

    assert report.already_invoiced >= 1
    assert len(invoices_of(org)) == 1
    assert subscription.next_invoice_at == at("2024-03-01T00:00:00")


def test_usage_fees_per_charge_for_the_ended_period(clock, org):
    subscription = subscribe(org, clock, "2024-01-01T00:00:00", charges="usage")
    factories.send_event(org, subscription, at("2024-01-10T10:00:00"), value=4)
    factories.send_event(org, subscription, at("2024-01-31T23:59:00"), value=6)
    factories.send_event(org, subscription, at("2024-02-01T00:00:01"), value=100)  # next period

    close(clock, "2024-02-01T00:05:00", org)

    [invoice] = invoices_of(org)
    assert fee_amounts(invoice) == [("subscription", 1000), ("charge", 500)]
    charge_fee = invoice.fees[1]
    assert (str(charge_fee.units), charge_fee.events_count) == ("10", 2)
    assert invoice.total_amount_cents == 1500


def test_termination_bills_the_partial_period_in_arrears(clock, org):
    subscription = subscribe(org, clock, "2024-01-01T00:00:00", charges="usage")
    factories.send_event(org, subscription, at("2024-01-05T10:00:00"), value=2)
    clock[0] = at("2024-01-10T12:00:00")

    subscription_service.terminate_subscription(org, subscription, factories.TEST_ACTOR)
    db.session.commit()

    [invoice] = invoices_of(org)
    assert periods(invoice) == [
        ("subscription_terminating", "2024-01-01T00:00:00+00:00", "2024-01-10T12:00:00+00:00")
    ]
    assert fee_amounts(invoice) == [("subscription", 323), ("charge", 100)]  # 10/31 days
    assert subscription.next_invoice_at is None
    assert close(clock, "2024-02-01T00:05:00", org) == 0


def test_termination_in_advance_bills_usage_only_and_skip_bills_nothing(clock, org):
    advance = subscribe(org, clock, "2024-01-01T00:00:00", pay_in_advance=True)
    skipped = subscribe(org, clock, "2024-01-01T00:00:00")
    clock[0] = at("2024-01-20T00:00:00")

    subscription_service.terminate_subscription(org, advance, factories.TEST_ACTOR)
    subscription_service.terminate_subscription(
        org, skipped, factories.TEST_ACTOR, on_termination_invoice="skip"
    )
    db.session.commit()

    starting, terminating = invoices_of(org)
    assert fee_amounts(starting) == [("subscription", 1000)]
    assert periods(terminating)[0][0] == "subscription_terminating"
    assert fee_amounts(terminating) == []
    assert terminating.payment_status == "succeeded"  # a zero total


def test_trial_days_are_not_billed(clock, org):
    subscribe(org, clock, "2024-01-01T00:00:00", trial_period=10)

    close(clock, "2024-02-01T00:00:10", org)
    close(clock, "2024-03-01T00:00:10", org)

    first, second = invoices_of(org)
    assert fee_amounts(first) == [("subscription", 677)]  # 21 of 31 days
    assert fee_amounts(second) == [("subscription", 1000)]


def test_upgrade_terminates_with_an_invoice_and_the_new_plan_starts(clock, org):
    old = subscribe(org, clock, "2024-01-01T00:00:00")
    premium = factories.make_plan(org, charges=[], amount_cents=2000)
    clock[0] = at("2024-01-11T09:00:00")

    new = subscription_service.create_subscription(
        org,
        {
            "external_customer_id": old.customer.external_id,
            "plan_code": premium.code,
            "external_id": old.external_id,
        },
        factories.TEST_ACTOR,
    )
    db.session.commit()
    close(clock, "2024-02-01T00:00:10", org)

    terminating, periodic = invoices_of(org)
    assert terminating.invoice_subscriptions[0].subscription_id == old.id
    assert fee_amounts(terminating) == [("subscription", 355)]  # Jan 1-11: 11 of 31 days
    assert periodic.invoice_subscriptions[0].subscription_id == new.id
    assert fee_amounts(periodic) == [("subscription", 1355)]  # Jan 11-31: 21 of 31 days


def test_downgrade_at_period_end_is_billed_by_the_termination(clock, org):
    old = subscribe(org, clock, "2024-01-01T00:00:00", amount_cents=2000)
    basic = factories.make_plan(org, charges=[], amount_cents=1000, pay_in_advance=True)
    clock[0] = at("2024-01-11T09:00:00")
    subscription_service.create_subscription(
        org,
        {
            "external_customer_id": old.customer.external_id,
            "plan_code": basic.code,
            "external_id": old.external_id,
        },
        factories.TEST_ACTOR,
    )
    db.session.commit()

    assert close(clock, "2024-02-01T00:00:10", org) == 0  # left to the termination
    [new] = subscription_service.apply_downgrades()
    db.session.commit()
    assert close(clock, "2024-02-01T00:00:20", org) == 0

    terminating, starting = invoices_of(org)
    assert periods(terminating) == [
        ("subscription_terminating", "2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00")
    ]
    assert fee_amounts(terminating) == [("subscription", 2000)]
    assert starting.invoice_subscriptions[0].subscription_id == new.id
    assert periods(starting)[0][0] == "subscription_starting"
    assert fee_amounts(starting) == [("subscription", 1000)]


def test_grace_period_drafts_then_the_job_finalizes_and_numbers_them(clock, org):
    customer = factories.make_customer(
        org, currency="EUR", billing_configuration={"invoice_grace_period": 3}, net_payment_term=7
    )
    subscription = subscribe(org, clock, "2024-01-01T00:00:00", customer=customer, charges="usage")
    factories.send_event(org, subscription, at("2024-01-20T00:00:00"), value=2)

    close(clock, "2024-02-01T00:00:10", org)
    [draft] = invoices_of(org)
    assert (draft.status, draft.number, draft.sequential_id) == (
        "draft",
        f"{customer.slug}-DRAFT",
        None,
    )
    assert draft.total_amount_cents == 1100
    # webhooks: the draft is announced, its creation waits for the finalization
    [drafted] = db.session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.organization_id == org.id, OutboxEvent.event_type == "invoice.drafted"
        )
    ).all()
    assert drafted.object_type == "invoice"
    assert (drafted.payload["lago_id"], drafted.payload["status"]) == (str(draft.lago_id), "draft")
    assert outbox_events(org, "invoice.created") == 0

    # a late event of January, then a refresh: the draft follows
    clock[0] = at("2024-02-02T10:00:00")
    factories.send_event(org, subscription, at("2024-01-31T10:00:00"), value=4)
    invoicing.refresh_invoice(draft)
    db.session.commit()
    assert draft.total_amount_cents == 1300

    clock[0] = at("2024-02-03T23:59:00")
    run_draft_finalization()
    assert invoices_of(org)[0].status == "draft"
    clock[0] = at("2024-02-04T00:00:00")
    run_draft_finalization()

    [invoice] = invoices_of(org)
    assert (invoice.status, invoice.number, invoice.sequential_id) == (
        "finalized",
        f"{customer.slug}-001",
        1,
    )
    assert invoice.issuing_date.isoformat() == "2024-02-04"
    assert invoice.payment_due_date.isoformat() == "2024-02-11"
    assert (outbox_events(org, "invoice.drafted"), outbox_events(org, "invoice.created")) == (1, 1)
    close(clock, "2024-03-01T00:00:10", org)
    invoicing.finalize_invoice(invoices_of(org)[-1])
    db.session.commit()
    assert [i.number[-3:] for i in invoices_of(org)] == ["001", "002"]


def test_a_zero_total_is_finalized_as_paid(clock, org):
    subscribe(org, clock, "2024-01-01T00:00:00", amount_cents=0)

    close(clock, "2024-02-01T00:00:10", org)

    [invoice] = invoices_of(org)
    assert (invoice.status, invoice.total_amount_cents, invoice.payment_status) == (
        "finalized",
        0,
        "succeeded",
    )


def test_overdue_once_the_due_date_has_passed_in_the_customers_timezone(clock, org):
    customer = factories.make_customer(
        org, currency="EUR", timezone="Asia/Tokyo", net_payment_term=5
    )
    subscribe(org, clock, "2024-01-01T00:00:00", customer=customer)
    close(clock, "2024-02-01T00:00:10", org)  # issued Feb 1 in Tokyo, due Feb 6
    [invoice] = invoices_of(org)
    assert invoice.payment_due_date.isoformat() == "2024-02-06"

    clock[0] = at("2024-02-06T14:59:00")  # Feb 6, 23:59 in Tokyo
    run_overdue_marking()
    assert invoice.payment_overdue is False
    clock[0] = at("2024-02-06T15:00:00")  # Feb 7 in Tokyo
    run_overdue_marking()
    run_overdue_marking()
    assert invoice.payment_overdue is True
    assert outbox_events(org, "invoice.payment_overdue") == 1


def test_the_cli_closes_periods_at_a_given_instant(app, clock, org):
    subscribe(org, clock, "2024-01-01T00:00:00")
    runner = app.test_cli_runner()

    early = runner.invoke(args=["billing", "close-periods", "--at", "2024-01-31T23:00:00"])
    assert early.exit_code == 0 and invoices_of(org) == []
    result = runner.invoke(
        args=["billing", "close-periods", "--at", "2024-03-01T00:00:00", "--organization", org.name]
    )
    bad = runner.invoke(args=["billing", "close-periods", "--at", "tomorrow"])
    unknown = runner.invoke(args=["billing", "close-periods", "--organization", "Nobody Inc"])

    assert result.exit_code == 0, result.output
    assert "invoice(s) created" in result.output
    assert [periods(i)[0][1] for i in invoices_of(org)] == [
        "2024-01-01T00:00:00+00:00",
        "2024-02-01T00:00:00+00:00",
    ]
    assert bad.exit_code != 0 and "not an ISO date" in bad.output
    assert unknown.exit_code != 0 and "no organization named" in unknown.output
