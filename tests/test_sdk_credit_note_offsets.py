"""Contract test: a credit note offset through the official Lago SDK (lago-python-client
1.55.0): the estimate's max_offsettable_amount_cents, a create with offset_amount_cents, and
the invoice's total_offsetted_credit_note_amount_cents and total_due_amount_cents."""

from __future__ import annotations

from typing import Any

import pytest
from lago_python_client.models.credit_note import CreditNote, CreditNoteEstimate, Item, Items

from tests.test_sdk_contract import api_error
from tests.test_sdk_credit_notes import billed_acme

pytestmark = pytest.mark.live


def test_offset_through_the_sdk(live_server: Any) -> None:
    client, invoice, fee_id = billed_acme(live_server)
    items = Items(__root__=[Item(fee_id=fee_id, amount_cents=400)])

    estimate = client.credit_notes.estimate(
        CreditNoteEstimate(invoice_id=invoice.lago_id, items=items)
    )
    created = client.credit_notes.create(
        CreditNote(
            invoice_id=invoice.lago_id,
            reason="order_change",
            credit_amount_cents=100,
            offset_amount_cents=300,
            items=items,
        )
    )
    after = client.invoices.find(invoice.lago_id)
    too_much = api_error(
        lambda: client.credit_notes.create(
            CreditNote(
                invoice_id=invoice.lago_id,
                offset_amount_cents=701,
                items=Items(__root__=[Item(fee_id=fee_id, amount_cents=701)]),
            )
        )
    )

    assert invoice.total_due_amount_cents == 1000
    assert estimate.max_offsettable_amount_cents == 400
    assert created is not None
    assert (
        created.offset_amount_cents,
        created.credit_amount_cents,
        created.balance_amount_cents,
        created.total_amount_cents,
    ) == (300, 100, 100, 400)
    assert (after.total_offsetted_credit_note_amount_cents, after.total_due_amount_cents,
            after.payment_status) == (300, 700, "pending")  # fmt: skip
    assert too_much.status_code == 422
    assert too_much.response["error_details"] == {
        "amount_cents": ["higher_than_remaining_fee_amount"],
        "offset_amount_cents": ["higher_than_remaining_invoice_amount"],
        "base": ["higher_than_remaining_invoice_amount"],
    }
