"""Fault (a): the process closing periods is killed with SIGKILL mid-run and restarted.

A database with a few thousand monthly subscriptions whose period has ended (the period-close
benchmark's seeder: customers, subscriptions and their usage). `flask --app app billing
close-periods` — the function the jobs process runs — is started, SIGKILLed as soon as some
invoices exist, started and killed again, then run to the end. Every subscription must end
with exactly one invoice for the period: no duplicate, no missing one, no invoice without its
fees or its `invoice.created` event, no invoice number used twice.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.faults._support import (
    BACKENDS,
    close_periods,
    fresh_database,
    kill,
    rows,
    scalar,
    seed_period_close,
)

SUBSCRIPTIONS = int(os.environ.get("FAULTS_SUBSCRIPTIONS", "3000"))
KILLS = 2


def invoices(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM invoices"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_period_close_leaves_exactly_one_invoice_per_subscription(backend, tmp_path):
    with fresh_database(backend, tmp_path) as url:
        started = time.monotonic()
        _, at = seed_period_close(url, SUBSCRIPTIONS)
        print(f"\n[{backend}] seeded {SUBSCRIPTIONS} subscriptions in "
              f"{time.monotonic() - started:.0f} s; closing periods at {at}")  # fmt: skip
        seen_at_kill = []
        for round_ in range(KILLS):
            before = invoices(url)
            process = close_periods(url, at)
            # kill as soon as this run has committed invoices of its own (a batch or more)
            while invoices(url) == before:
                assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
                time.sleep(0.05)
            kill(process.pid)
            process.wait()
            process.stdout.close()  # type: ignore[union-attr]
            seen_at_kill.append(invoices(url))
            print(f"  run {round_ + 1}: SIGKILL with {seen_at_kill[-1]} invoices committed "
                  f"(exit {process.returncode})")  # fmt: skip
            assert process.returncode == -9
        assert seen_at_kill[-1] < SUBSCRIPTIONS, "the kills came too late to test anything"

        final = close_periods(url, at)
        output = final.communicate(timeout=600)[0].decode()
        assert final.returncode == 0, output
        print(f"  restarted to the end: {output.strip().splitlines()[-1]}")
        again = close_periods(url, at)
        output = again.communicate(timeout=600)[0].decode()
        assert again.returncode == 0, output
        assert output.strip().splitlines()[-1].startswith("0 invoice(s) created")

        subscriptions = scalar(url, "SELECT count(*) FROM subscriptions")
        invoiced = scalar(url, "SELECT count(DISTINCT subscription_id) FROM invoice_subscriptions")
        periods = scalar(url, "SELECT count(*) FROM invoice_subscriptions")
        duplicates = rows(
            url,
            "SELECT subscription_id, from_datetime FROM invoice_subscriptions "
            "GROUP BY subscription_id, from_datetime HAVING count(*) > 1",
        )
        without_fees = scalar(
            url,
            "SELECT count(*) FROM invoices i "
            "WHERE NOT EXISTS (SELECT 1 FROM fees f WHERE f.invoice_id = i.id)",
        )
        numbers = scalar(url, "SELECT count(DISTINCT number) FROM invoices")
        created = scalar(url, "SELECT count(*) FROM outbox_events "
                              "WHERE event_type = 'invoice.created'")  # fmt: skip
        total = invoices(url)
        print(f"  checked: {subscriptions} subscriptions, {total} invoices, {invoiced} "
              f"subscriptions invoiced, {periods} invoiced periods, {len(duplicates)} "
              f"duplicates, {without_fees} invoices without fees, {numbers} distinct numbers, "
              f"{created} invoice.created events")  # fmt: skip
        assert subscriptions == SUBSCRIPTIONS
        assert total == SUBSCRIPTIONS
        assert invoiced == SUBSCRIPTIONS
        assert periods == SUBSCRIPTIONS
        assert duplicates == []
        assert without_fees == 0
        assert numbers == SUBSCRIPTIONS
        assert created == SUBSCRIPTIONS
