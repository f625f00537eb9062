"""Credit notes (lago-api.md §14): what a finalized invoice can still credit or refund, creation
with Lago's validations, estimate, refund status, void; the credit they give the customer's
later invoices; the credit note of the unused days of a subscription paid in advance that is
terminated or upgraded mid-period.

Amounts (Lago's): each item credits part of one fee, taxes excluded; the credit note's taxes are
the items' share of their fees' taxes; its total (items + taxes) is split into a credit (a
balance the customer's next invoices consume), a refund (only of what was paid) and an offset
(taken off what is still due on the credited invoice itself: `Invoice.offset_amount_cents`;
an invoice whose amount due falls to 0 that way is paid, as Lago's credit note settlement).
Voiding a credit note voids its credit balance only (Lago's): its offset, like its consumed
credit and its refund, stays.

Credit feeds later invoices: while an invoice is a draft its `credit_notes_amount_cents` shows
the deduction expected from the customer's available credit notes in its currency; when it is
finalized that credit is consumed for real (oldest credit note first, rows locked), never more
than the invoice's total including taxes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import joinedload, selectinload

from billing.errors import InvariantBroken, NotAllowed, NotFound, ValidationFailed
from billing.models import (
    CreditNote,
    CreditNoteItem,
    CreditNoteReason,
    CreditStatus,
    Customer,
    Fee,
    FeeType,
    Invoice,
    InvoiceCredit,
    InvoiceStatus,
    Organization,
    PaymentStatus,
    RefundStatus,
    Subscription,
)
from billing.money import from_minor_units, round_minor_units, to_minor_units
from billing.periods import Period, local_date, local_midnight
from billing.services import audit, outbox
from billing.services.pagination import Page
from billing.services.search import document_matches
from billing.timeutil import now_utc
from extensions import db

REASONS = tuple(CreditNoteReason)
CREDIT_STATUSES = tuple(CreditStatus)
REFUND_STATUSES = tuple(RefundStatus)


# ---------------------------------------------------------------------------------------------
# What an invoice can still credit


def fee_taxes_share(fee: Fee, amount_cents: int) -> Decimal:
    """The taxes (exact, minor units) of crediting `amount_cents` of `fee`: its share of the
    fee's taxes. The one place that knows how a credit note is taxed (fees carry their taxes
    in `taxes_amount_cents`; until taxes exist that is 0)."""
    fee_taxes = getattr(fee, "taxes_amount_cents", 0) or 0
    if not fee.amount_cents or not fee_taxes:
        return Decimal(0)
    return Decimal(amount_cents) * Decimal(fee_taxes) / Decimal(fee.amount_cents)


def credited_by_fee(invoice: Invoice) -> dict[int, int]:
    """fee id → the amount its credit notes (voided ones too, as Lago) have credited."""
    rows = db.session.execute(
        select(CreditNoteItem.fee_id, func.sum(CreditNoteItem.amount_cents))
        .join(CreditNote, CreditNote.id == CreditNoteItem.credit_note_id)
        .where(CreditNote.invoice_id == invoice.id)
        .group_by(CreditNoteItem.fee_id)
    )
    return {fee_id: int(amount) for fee_id, amount in rows}


def creditable_by_fee(invoice: Invoice) -> dict[int, int]:
    """fee id → what is left to credit of it (its amount minus its credit notes' items)."""
    credited = credited_by_fee(invoice)
    return {fee.id: max(0, fee.amount_cents - credited.get(fee.id, 0)) for fee in invoice.fees}


@dataclass
class InvoiceCreditState:
    """What an invoice's credit notes have taken so far, and what is left to take."""

    credited_cents: int
    refunded_cents: int
    offset_cents: int
    #: the taxes of the invoice's credit notes so far
    taxes_cents: int
    #: fees plus taxes minus coupons: what credit notes can cover in all
    fee_total_cents: int
    paid_cents: int
    #: what is still due on the invoice (total − paid − offsets)
    due_cents: int

    @property
    def creditable_cents(self) -> int:
        """What a new credit note can take at most (credit + refund + offset)."""
        return max(
            0, self.fee_total_cents - self.credited_cents - self.refunded_cents - self.offset_cents
        )

    @property
    def refundable_cents(self) -> int:
        """What a new credit note can refund at most: what was paid, less earlier refunds."""
        return max(0, min(self.paid_cents - self.refunded_cents, self.creditable_cents))

    @property
    def offsettable_cents(self) -> int:
        """What a new credit note can offset at most (Lago's): what is still due on the
        invoice, within what is left to credit of it."""
        return max(0, min(self.due_cents, self.creditable_cents))


def invoice_credit_state(invoice: Invoice) -> InvoiceCreditState:
    credited, refunded, offset, taxes = db.session.execute(
        select(
            func.coalesce(func.sum(CreditNote.credit_amount_cents), 0),
            func.coalesce(func.sum(CreditNote.refund_amount_cents), 0),
            func.coalesce(func.sum(CreditNote.offset_amount_cents), 0),
            func.coalesce(func.sum(CreditNote.taxes_amount_cents), 0),
        ).where(CreditNote.invoice_id == invoice.id)
    ).one()
    paid = (
        invoice.total_paid_amount_cents if invoice.payment_status == PaymentStatus.SUCCEEDED else 0
    )
    return InvoiceCreditState(
        credited_cents=int(credited),
        refunded_cents=int(refunded),
        offset_cents=int(offset),
        taxes_cents=int(taxes),
        fee_total_cents=invoice.sub_total_including_taxes_amount_cents,
        paid_cents=paid,
        due_cents=invoice.total_due_amount_cents,
    )


def creditable(invoice: Invoice) -> bool:
    """Whether a credit note can be created on the invoice (finalized, something left)."""
    return (
        invoice.status == InvoiceStatus.FINALIZED
        and invoice_credit_state(invoice).creditable_cents > 0
    )


# ---------------------------------------------------------------------------------------------
# Input


@dataclass
class CreditNoteDraft:
    """A credit note computed from its input, before it is stored."""

    invoice: Invoice
    items: list[tuple[Fee, int]]
    reason: str = CreditNoteReason.OTHER
    description: str | None = None
    credit_amount_cents: int = 0
    refund_amount_cents: int = 0
    offset_amount_cents: int = 0
    sub_total_cents: int = 0
    taxes_cents: int = 0
    state: InvoiceCreditState | None = None
    metadata: dict[str, str | None] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total_cents(self) -> int:
        return self.sub_total_cents + self.taxes_cents

    @property
    def taxes_rate(self) -> float:
        if not self.sub_total_cents:
            return 0.0
        return float(round(Decimal(self.taxes_cents) * 100 / Decimal(self.sub_total_cents), 2))


def _amount(raw: Any, name: str, errors: dict[str, list[str]], *, code: str) -> int:
    """A non-negative integer amount of the input (absent or null is 0)."""
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        errors[name] = ["value_is_invalid"]
        return 0
    try:
        value = int(raw) if not isinstance(raw, float) or raw.is_integer() else None
    except ValueError:
        value = None
    if value is None:
        errors[name] = ["value_is_invalid"]
        return 0
    if value < 0:
        errors[name] = [code]
        return 0
    return value


#: metadata limits (as the customer's, lago-api.md deviations)
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 255


def _metadata(raw: Any, errors: dict[str, list[str]]) -> dict[str, str | None]:
    """Lago's credit note metadata: an object of string keys to text (or null) values."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors["metadata"] = ["value_is_invalid"]
        return {}
    if len(raw) > METADATA_MAX_KEYS:
        errors["metadata"] = ["invalid_count"]
        return {}
    metadata: dict[str, str | None] = {}
    for key, value in raw.items():
        if not key.strip() or len(key) > METADATA_KEY_MAX:
            errors["metadata"] = ["value_is_invalid" if not key.strip() else "value_is_too_long"]
            continue
        if value is not None and (isinstance(value, (bool, dict, list))):
            errors["metadata"] = ["value_is_invalid"]
            continue
        text = None if value is None else str(value)
        if text is not None and len(text) > METADATA_VALUE_MAX:
            errors["metadata"] = ["value_is_too_long"]
            continue
        metadata[key] = text
    return metadata


def parse_metadata(raw: Any) -> dict[str, str | None]:
    """`raw` as credit note metadata; ValidationFailed with Lago's codes otherwise."""
    errors: dict[str, list[str]] = {}
    metadata = _metadata(raw, errors)
    if errors:
        raise ValidationFailed(errors)
    return metadata


def set_metadata(
    credit_note: CreditNote, metadata: dict[str, str | None], actor: audit.Actor
) -> CreditNote:
    """Replace the credit note's metadata (merging is the caller's dict union)."""
    before = dict(credit_note.metadata_ or {})
    if metadata == before:
        return credit_note
    credit_note.metadata_ = dict(metadata)
    credit_note.updated_at = now_utc()
    db.session.flush()
    _record(credit_note, "credit_note.updated", actor, {"metadata": [before, metadata]})
    return credit_note


def _items(invoice: Invoice, raw: Any, errors: dict[str, list[str]]) -> list[tuple[Fee, int]]:
    """The items' fees (of this invoice: NotFound fee otherwise) and amounts."""
    if raw is None:
        errors["items"] = ["value_is_mandatory"]
        return []
    if not isinstance(raw, list):
        errors["items"] = ["must_be_an_array"]
        return []
    if not raw:
        errors["items"] = ["value_is_mandatory"]
        return []
    fees = {str(fee.lago_id): fee for fee in invoice.fees}
    items = []
    for item in raw:
        if not isinstance(item, dict):
            errors["items"] = ["value_is_invalid"]
            continue
        fee = fees.get(str(item.get("fee_id") or "").lower())
        if fee is None:
            raise NotFound("fee")
        amount = _amount(item.get("amount_cents"), "amount_cents", errors, code="invalid_value")
        items.append((fee, amount))
    return items


def build_credit_note(invoice: Invoice, data: dict[str, Any]) -> CreditNoteDraft:
    """The credit note `data` asks for on `invoice`, with Lago's validation errors in
    `errors` (empty when it may be created). NotAllowed for an invoice that is not finalized,
    NotFound for a fee that is not one of the invoice's."""
    if invoice.status != InvoiceStatus.FINALIZED:
        raise NotAllowed("invalid_type_or_status")
    errors: dict[str, list[str]] = {}
    reason = data.get("reason") or CreditNoteReason.OTHER
    if reason not in REASONS:
        errors["reason"] = ["value_is_invalid"]
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        errors["description"] = ["value_is_invalid"]
        description = None
    items = _items(invoice, data.get("items"), errors)
    metadata = _metadata(data.get("metadata"), errors)
    credit = _amount(
        data.get("credit_amount_cents"), "credit_amount_cents", errors, code="value_is_out_of_range"
    )
    refund = _amount(
        data.get("refund_amount_cents"), "refund_amount_cents", errors, code="value_is_out_of_range"
    )
    offset = _amount(
        data.get("offset_amount_cents"), "offset_amount_cents", errors, code="value_is_out_of_range"
    )
    draft = CreditNoteDraft(
        invoice=invoice,
        items=items,
        reason=str(reason),
        description=description,
        credit_amount_cents=credit,
        refund_amount_cents=refund,
        offset_amount_cents=offset,
        metadata=metadata,
        errors=errors,
    )
    _compute(draft)
    if not errors:
        _validate(draft)
    return draft


def _compute(draft: CreditNoteDraft) -> None:
    """The draft's amounts: its items, their taxes (the fees' share, rounded once), and what
    the invoice's credit notes took before. A credit note that takes everything the fees have
    left takes exactly the taxes left, so the invoice's credit notes add up to its total to
    the cent (the shares of several notes could round one cent over; Lago adjusts the same)."""
    invoice = draft.invoice
    draft.sub_total_cents = sum(amount for _, amount in draft.items)
    draft.state = invoice_credit_state(invoice)
    asked: dict[int, int] = defaultdict(int)
    for fee, amount in draft.items:
        asked[fee.id] += amount
    left = creditable_by_fee(invoice)
    takes_all = bool(draft.items) and all(
        asked.get(fee_id, 0) == cents for fee_id, cents in left.items()
    )
    if takes_all:
        draft.taxes_cents = max(0, invoice.taxes_amount_cents - draft.state.taxes_cents)
        return
    taxes = sum((fee_taxes_share(fee, amount) for fee, amount in draft.items), Decimal(0))
    draft.taxes_cents = round_minor_units(taxes)


def _validate(draft: CreditNoteDraft) -> None:
    """Lago's CreditNotes::ValidateItemService and ValidateService, on exact integers."""
    errors = draft.errors
    state = draft.state
    if state is None:
        raise InvariantBroken("expected state is not None")
    left = creditable_by_fee(draft.invoice)
    asked: dict[int, int] = defaultdict(int)
    for fee, amount in draft.items:
        asked[fee.id] += amount
    if any(amount > left.get(fee_id, 0) for fee_id, amount in asked.items()):
        errors["amount_cents"] = ["higher_than_remaining_fee_amount"]
    split = draft.credit_amount_cents + draft.refund_amount_cents + draft.offset_amount_cents
    if split != draft.total_cents:
        errors["base"] = ["does_not_match_item_amounts"]
    if draft.refund_amount_cents > 0:
        if draft.invoice.payment_status != PaymentStatus.SUCCEEDED:
            errors["refund_amount_cents"] = ["cannot_refund_unpaid_invoice"]
        elif draft.refund_amount_cents > state.paid_cents - state.refunded_cents:
            errors["refund_amount_cents"] = ["higher_than_remaining_invoice_amount"]
    if draft.credit_amount_cents > (
        state.fee_total_cents - state.credited_cents - state.offset_cents
    ):
        errors["credit_amount_cents"] = ["higher_than_remaining_invoice_amount"]
    if draft.offset_amount_cents > 0:
        if draft.invoice.invoice_type == "credit":
            # a wallet top-up is cancelled by voiding it, not settled by a credit note
            errors["offset_amount_cents"] = ["cannot_credit_invoice"]
        elif draft.offset_amount_cents > state.offsettable_cents:
            errors["offset_amount_cents"] = ["higher_than_remaining_invoice_amount"]
    if draft.total_cents > state.creditable_cents:
        errors.setdefault("base", []).append("higher_than_remaining_invoice_amount")


# ---------------------------------------------------------------------------------------------
# Estimate, create, update, void


@dataclass
class Estimate:
    """Lago's estimated credit note: the items' amounts and taxes, and the most that can be
    credited, refunded or offset for them."""

    draft: CreditNoteDraft
    max_creditable_cents: int
    max_refundable_cents: int
    max_offsettable_cents: int


def estimate_credit_note(invoice: Invoice, data: dict[str, Any]) -> Estimate:
    """What a credit note of these items would amount to (credit and refund amounts are not
    asked); ValidationFailed for items above what the fees have left."""
    draft = build_credit_note(invoice, {"items": data.get("items")})
    draft.errors.pop("base", None)  # the split is the caller's next choice
    draft.errors.pop("credit_amount_cents", None)
    if draft.errors:
        raise ValidationFailed(draft.errors)
    state = draft.state
    if state is None:
        raise InvariantBroken("expected state is not None")
    creditable_total = min(draft.total_cents, state.creditable_cents)
    return Estimate(
        draft=draft,
        max_creditable_cents=creditable_total,
        max_refundable_cents=min(creditable_total, max(0, state.paid_cents - state.refunded_cents)),
        max_offsettable_cents=(
            0 if invoice.invoice_type == "credit" else min(creditable_total, state.due_cents)
        ),
    )


def _lock(credit_note: CreditNote) -> None:
    """Lock the credit note's row and read its committed state (its balance may have moved)."""
    db.session.execute(
        select(CreditNote.id).where(CreditNote.id == credit_note.id).with_for_update()
    )
    db.session.refresh(credit_note)


def _lock_invoice(invoice: Invoice) -> None:
    """Serializes the credit notes of one invoice (their amounts and numbers)."""
    db.session.execute(select(Invoice.id).where(Invoice.id == invoice.id).with_for_update())


def create_credit_note(invoice: Invoice, data: dict[str, Any], actor: audit.Actor) -> CreditNote:
    """A credit note on a finalized invoice (lago-api.md §14); ValidationFailed with Lago's
    codes when the amounts do not add up or exceed what is left, nothing written then."""
    _lock_invoice(invoice)
    # what is due (paid, offset) as committed: another credit note may have offset it since
    db.session.refresh(invoice)
    draft = build_credit_note(invoice, data)
    if draft.errors:
        raise ValidationFailed(draft.errors)
    return _store(draft, actor)


def _store(draft: CreditNoteDraft, actor: audit.Actor) -> CreditNote:
    invoice = draft.invoice
    now = now_utc()
    customer = invoice.customer
    sequence = (
        db.session.scalar(
            select(func.max(CreditNote.sequential_id)).where(CreditNote.invoice_id == invoice.id)
        )
        or 0
    ) + 1
    credit_note = CreditNote(
        organization_id=invoice.organization_id,
        customer_id=invoice.customer_id,
        customer=customer,
        invoice=invoice,
        sequential_id=sequence,
        number=f"{invoice.number}-CN{sequence:03d}",
        issuing_date=local_date(now, customer.applicable_timezone),
        reason=draft.reason,
        description=draft.description,
        # Lago's: available even when all is refunded (its balance is 0 then)
        credit_status=CreditStatus.AVAILABLE,
        refund_status=RefundStatus.PENDING if draft.refund_amount_cents else None,
        currency=invoice.currency,
        sub_total_excluding_taxes_amount_cents=draft.sub_total_cents,
        taxes_amount_cents=draft.taxes_cents,
        total_amount_cents=draft.total_cents,
        credit_amount_cents=draft.credit_amount_cents,
        refund_amount_cents=draft.refund_amount_cents,
        offset_amount_cents=draft.offset_amount_cents,
        balance_amount_cents=draft.credit_amount_cents,
        metadata_=draft.metadata,
        created_at=now,
        updated_at=now,
        items=[
            CreditNoteItem(fee=fee, amount_cents=amount, currency=invoice.currency, created_at=now)
            for fee, amount in draft.items
        ],
    )
    db.session.add(credit_note)
    db.session.flush()
    _record(
        credit_note,
        "credit_note.created",
        actor,
        {
            "credit_amount_cents": [None, credit_note.credit_amount_cents],
            "refund_amount_cents": [None, credit_note.refund_amount_cents],
            "offset_amount_cents": [None, credit_note.offset_amount_cents],
            "reason": [None, credit_note.reason],
        },
    )
    _emit(credit_note, "credit_note.created")
    if credit_note.offset_amount_cents:
        _offset(invoice, credit_note.offset_amount_cents, actor)
    return credit_note


def _offset(invoice: Invoice, amount: int, actor: audit.Actor) -> None:
    """Take `amount` off what is still due on the invoice (its row is locked by the caller);
    once nothing is due it is paid, through the invoice's own payment status change (its
    audit entry, its invoice.payment_status_updated event, not overdue any more)."""
    from billing.services import invoicing  # noqa: PLC0415  (cycle)

    invoice.offset_amount_cents += amount
    invoice.updated_at = now_utc()
    db.session.flush()
    if invoice.total_due_amount_cents == 0 and invoice.payment_status != PaymentStatus.SUCCEEDED:
        invoicing.update_invoice(invoice, {"payment_status": PaymentStatus.SUCCEEDED}, actor)


def update_credit_note(
    credit_note: CreditNote, data: dict[str, Any], actor: audit.Actor
) -> CreditNote:
    """Change the refund status and/or replace the metadata (Lago's
    CreditNotes::UpdateService)."""
    metadata = parse_metadata(data["metadata"]) if "metadata" in data else None
    if "refund_status" in data:
        _update_refund_status(credit_note, data["refund_status"], actor)
    if metadata is not None:
        set_metadata(credit_note, metadata, actor)
    return credit_note


def _update_refund_status(credit_note: CreditNote, status: Any, actor: audit.Actor) -> None:
    if status not in REFUND_STATUSES:
        raise ValidationFailed({"refund_status": ["value_is_invalid"]})
    if credit_note.refund_amount_cents == 0:
        raise ValidationFailed({"refund_status": ["cannot_refund_credit_note"]})
    if status == credit_note.refund_status:
        return
    before = credit_note.refund_status
    now = now_utc()
    credit_note.refund_status = status
    credit_note.refunded_at = now if status == RefundStatus.SUCCEEDED else None
    credit_note.updated_at = now
    db.session.flush()
    _record(
        credit_note, "credit_note.refund_status_updated", actor, {"refund_status": [before, status]}
    )


def void_credit_note(credit_note: CreditNote, actor: audit.Actor) -> CreditNote:
    """Void what is left of the credit (Lago: only a credit note with a balance left; 405
    no_voidable_amount otherwise). What was consumed or refunded stays."""
    _lock(credit_note)
    if not credit_note.voidable:
        raise NotAllowed("no_voidable_amount")
    before = credit_note.balance_amount_cents
    now = now_utc()
    credit_note.credit_status = CreditStatus.VOIDED
    credit_note.balance_amount_cents = 0
    credit_note.voided_at = now
    credit_note.updated_at = now
    db.session.flush()
    _record(credit_note, "credit_note.voided", actor, {"balance_amount_cents": [before, 0]})
    return credit_note


def void_invoice(invoice: Invoice, options: dict[str, Any], actor: audit.Actor) -> Invoice:
    """`POST /invoices/{id}/void` with Lago's options: with the `generate_credit_note` key
    (true or false) even a paid invoice can be voided; when true, `credit_amount` and
    `refund_amount` (cents) become a credit note on the invoice spread over its fees in
    proportion to what each has left. Without the key, a plain void."""
    from billing.services import invoicing  # noqa: PLC0415  (cycle)

    explicit = "generate_credit_note" in options
    if invoice.status != InvoiceStatus.FINALIZED:
        raise NotAllowed("not_voidable")
    if options.get("generate_credit_note") in (True, "true", "1", 1):
        errors: dict[str, list[str]] = {}
        credit = _amount(
            options.get("credit_amount"), "credit_amount", errors, code="value_is_out_of_range"
        )
        refund = _amount(
            options.get("refund_amount"), "refund_amount", errors, code="value_is_out_of_range"
        )
        if errors:
            raise ValidationFailed(errors)
        if credit + refund:
            _credit_voided(invoice, credit, refund, actor)
    return invoicing.void_invoice(invoice, actor, explicit=explicit)


def _credit_voided(invoice: Invoice, credit: int, refund: int, actor: audit.Actor) -> None:
    _lock_invoice(invoice)
    state = invoice_credit_state(invoice)
    errors: dict[str, list[str]] = {}
    if credit > state.fee_total_cents - state.credited_cents or credit + refund > (
        state.creditable_cents
    ):
        errors["credit_amount"] = ["credit_amount_exceeds_available_amount"]
    if refund > state.refundable_cents:
        errors["refund_amount"] = ["refund_amount_exceeds_available_amount"]
    if errors:
        raise ValidationFailed(errors)
    draft = CreditNoteDraft(
        invoice=invoice,
        items=_spread(invoice, credit + refund),
        reason=CreditNoteReason.OTHER,
        description="Credit note created when the invoice was voided",
    )
    _compute(draft)
    # the taxes of the spread items are rounded once: the credit absorbs that cent
    draft.refund_amount_cents = min(refund, draft.total_cents)
    draft.credit_amount_cents = draft.total_cents - draft.refund_amount_cents
    _store(draft, actor)


def _spread(invoice: Invoice, total_cents: int) -> list[tuple[Fee, int]]:
    """Items (taxes excluded) whose total with their taxes is `total_cents`, spread over the
    fees in proportion to what each has left (taxes included); the largest remainders take
    the cents that rounding leaves."""
    left = creditable_by_fee(invoice)
    fees = [fee for fee in invoice.fees if left.get(fee.id)]
    whole = sum(
        (Decimal(left[fee.id]) + fee_taxes_share(fee, left[fee.id]) for fee in fees), Decimal(0)
    )
    if not whole:
        return []
    # a fee's share of the total with taxes is total × (left + its taxes) / whole; before
    # its taxes that is total × left / whole
    exact = {fee.id: Decimal(total_cents) * left[fee.id] / whole for fee in fees}
    cents = {fee.id: min(int(exact[fee.id]), left[fee.id]) for fee in fees}
    target = round_minor_units(sum(exact.values(), Decimal(0)))
    by_remainder = sorted(fees, key=lambda fee: exact[fee.id] - int(exact[fee.id]), reverse=True)
    for fee in by_remainder[: max(0, target - sum(cents.values()))]:
        cents[fee.id] += 1
    return [(fee, cents[fee.id]) for fee in fees if cents[fee.id]]


# ---------------------------------------------------------------------------------------------
# Credit for later invoices


def _available_query(customer_ids: Sequence[int]) -> Any:
    return (
        select(CreditNote)
        .where(
            CreditNote.customer_id.in_(sorted(set(customer_ids))),
            CreditNote.credit_status == CreditStatus.AVAILABLE,
            CreditNote.balance_amount_cents > 0,
        )
        .order_by(CreditNote.created_at, CreditNote.id)
    )


def _set_credit(invoice: Any, amount: int) -> None:
    invoice.credit_notes_amount_cents = amount
    invoice.total_amount_cents = (
        invoice.sub_total_including_taxes_amount_cents
        - amount
        - invoice.prepaid_credit_amount_cents
    )


def _deductible(invoice: Any) -> int:
    return max(
        0, invoice.sub_total_including_taxes_amount_cents - invoice.prepaid_credit_amount_cents
    )


def apply_expected_credit(invoices: Sequence[Any]) -> None:
    """Show on each (draft or new) invoice the deduction its customer's available credit notes
    in its currency would make, without consuming anything (one query for all of them)."""
    if not invoices:
        return
    balances: dict[tuple[int, str], int] = defaultdict(int)
    rows = db.session.execute(
        select(
            CreditNote.customer_id, CreditNote.currency, func.sum(CreditNote.balance_amount_cents)
        )
        .where(
            CreditNote.customer_id.in_(sorted({invoice.customer_id for invoice in invoices})),
            CreditNote.credit_status == CreditStatus.AVAILABLE,
            CreditNote.balance_amount_cents > 0,
        )
        .group_by(CreditNote.customer_id, CreditNote.currency)
    )
    for customer_id, currency, balance in rows:
        balances[(customer_id, currency)] = int(balance)
    for invoice in invoices:
        key = (invoice.customer_id, invoice.currency)
        amount = min(balances.get(key, 0), _deductible(invoice))
        balances[key] = balances.get(key, 0) - amount
        _set_credit(invoice, amount)


def consume_credit(invoices: Sequence[Any]) -> None:
    """At finalization: each invoice takes its customer's available credit in its currency,
    oldest credit note first, up to its total including taxes; the credit notes' rows are
    locked (PostgreSQL) and their balances decremented, a spent one becomes `consumed`.
    `invoices` are inserted already (models or the bulk close's plain objects)."""
    if not invoices:
        return
    query = _available_query([invoice.customer_id for invoice in invoices])
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    by_key: dict[tuple[int, str], list[CreditNote]] = defaultdict(list)
    for credit_note in db.session.scalars(query):
        by_key[(credit_note.customer_id, credit_note.currency)].append(credit_note)
    now = now_utc()
    for invoice in invoices:
        wanted = _deductible(invoice)
        taken = 0
        for credit_note in by_key.get((invoice.customer_id, invoice.currency), []):
            amount = min(credit_note.balance_amount_cents, wanted - taken)
            if amount <= 0:
                continue
            credit_note.balance_amount_cents -= amount
            if credit_note.balance_amount_cents == 0:
                credit_note.credit_status = CreditStatus.CONSUMED
            credit_note.updated_at = now
            db.session.add(
                InvoiceCredit(
                    invoice_id=invoice.id,
                    credit_note_id=credit_note.id,
                    amount_cents=amount,
                    currency=invoice.currency,
                    created_at=now,
                )
            )
            taken += amount
        _set_credit(invoice, taken)
    db.session.flush()


def recredit(invoice: Invoice) -> None:
    """A voided invoice gives back the credit it consumed (Lago's CreditNotes::RecreditService):
    each credit note's balance grows again and it is available again, unless it was voided."""
    now = now_utc()
    for credit in invoice_credits(invoice):
        credit_note = credit.credit_note
        _lock(credit_note)
        if credit_note.credit_status == CreditStatus.VOIDED:
            continue
        credit_note.balance_amount_cents += credit.amount_cents
        credit_note.credit_status = CreditStatus.AVAILABLE
        credit_note.updated_at = now
    db.session.flush()


def consumptions(credit_note: CreditNote) -> list[InvoiceCredit]:
    """The invoices that consumed the credit note's credit, oldest first."""
    return list(
        db.session.scalars(
            select(InvoiceCredit)
            .where(InvoiceCredit.credit_note_id == credit_note.id)
            .order_by(InvoiceCredit.id)
            .options(joinedload(InvoiceCredit.invoice))
        )
    )


def invoice_credits(invoice: Invoice) -> list[InvoiceCredit]:
    """The credit notes' credits an invoice consumed."""
    return list(
        db.session.scalars(
            select(InvoiceCredit)
            .where(InvoiceCredit.invoice_id == invoice.id)
            .order_by(InvoiceCredit.id)
            .options(joinedload(InvoiceCredit.credit_note).joinedload(CreditNote.invoice))
        )
    )


# ---------------------------------------------------------------------------------------------
# Termination and upgrade


def credit_unused_days(
    subscription: Subscription, actor: audit.Actor, *, upgrade: bool = False
) -> CreditNote | None:
    """Lago's CreditNotes::CreateFromTermination: a subscription paid in advance and ended
    mid-period gets a credit note for its base fee's unused days (after the termination day;
    an upgrade's termination day too), prorated by local days like the fee, less what credit
    notes have credited of that fee already. With `on_termination_credit_note` = refund, what
    was paid is refunded instead; skip: nothing. A fee still on a draft is credited when the
    draft is finalized (`credit_terminated_subscriptions`)."""
    if not subscription.plan.pay_in_advance or subscription.terminated_at is None:
        return None
    fee = db.session.scalar(
        select(Fee)
        .join(Invoice, Invoice.id == Fee.invoice_id)
        .where(
            Fee.subscription_id == subscription.id,
            Fee.fee_type == FeeType.SUBSCRIPTION,
            Invoice.status != InvoiceStatus.VOIDED,
        )
        .order_by(Fee.created_at.desc(), Fee.id.desc())
        .limit(1)
    )
    if fee is None or fee.invoice.status != InvoiceStatus.FINALIZED:
        return None
    return _credit_unused(subscription, fee, actor, upgrade=upgrade)


def credit_terminated_subscriptions(invoice: Invoice, actor: audit.Actor) -> list[CreditNote]:
    """After a draft is finalized: the unused-days credit of its base fees in advance whose
    subscription was terminated (or upgraded) while the invoice was a draft."""
    notes = []
    for fee in invoice.fees:
        subscription = fee.subscription
        if (
            fee.fee_type != FeeType.SUBSCRIPTION
            or not fee.pay_in_advance
            or subscription is None
            or subscription.terminated_at is None
        ):
            continue
        upgraded = db.session.scalar(
            select(
                exists().where(
                    Subscription.previous_subscription_id == subscription.id,
                    Subscription.started_at == subscription.terminated_at,
                )
            )
        )
        note = _credit_unused(subscription, fee, actor, upgrade=bool(upgraded))
        if note is not None:
            notes.append(note)
    return notes


def _credit_unused(
    subscription: Subscription, fee: Fee, actor: audit.Actor, *, upgrade: bool
) -> CreditNote | None:
    from billing.services.invoicing import base_fee_share  # noqa: PLC0415  (cycle)

    plan = subscription.plan
    terminated_at = subscription.terminated_at
    mode = subscription.on_termination_credit_note or "credit"
    if mode == "skip" or terminated_at is None or not fee.amount_cents:
        return None
    if fee.from_datetime is None or fee.to_datetime is None:
        return None
    tz = subscription.customer.applicable_timezone
    day = local_date(terminated_at, tz)
    unused_from = local_midnight(day if upgrade else day + timedelta(days=1), tz)
    unused = Period(max(unused_from, fee.from_datetime), fee.to_datetime)
    if unused.start >= unused.end:
        return None
    precise = from_minor_units(plan.amount_cents, plan.amount_currency) * base_fee_share(
        subscription, unused
    )
    invoice = fee.invoice
    _lock_invoice(invoice)
    credited = credited_by_fee(invoice).get(fee.id, 0)
    amount = min(
        to_minor_units(precise, plan.amount_currency) - credited, fee.amount_cents - credited
    )
    if amount <= 0:
        return None
    draft = CreditNoteDraft(
        invoice=invoice,
        items=[(fee, amount)],
        reason=CreditNoteReason.ORDER_CHANGE if upgrade else CreditNoteReason.ORDER_CANCELLATION,
    )
    _compute(draft)
    state = draft.state
    if state is None:
        raise InvariantBroken("expected state is not None")
    total = draft.total_cents
    if total > state.creditable_cents:  # earlier credit notes took the invoice's total already
        return None
    refund = min(total, max(0, state.paid_cents - state.refunded_cents)) if mode == "refund" else 0
    draft.refund_amount_cents = refund
    draft.credit_amount_cents = total - refund
    return _store(draft, actor)


# ---------------------------------------------------------------------------------------------
# Lookups and lists


def get_credit_note(organization: Organization, lago_id: str) -> CreditNote:
    """The organization's credit note with this lago id; NotFound else."""
    try:
        key = uuid.UUID(str(lago_id))
    except ValueError:
        raise NotFound("credit_note") from None
    credit_note = db.session.scalar(
        select(CreditNote).where(
            CreditNote.organization_id == organization.id, CreditNote.lago_id == key
        )
    )
    if credit_note is None:
        raise NotFound("credit_note")
    return credit_note


@dataclass
class CreditNoteFilters:
    """Filters of `GET /credit_notes` (lago-api.md §14); None and empty lists mean "any"."""

    external_customer_id: str | None = None
    customer_id: int | None = None
    invoice_id: int | None = None
    issuing_date_from: date | None = None
    issuing_date_to: date | None = None
    search_term: str | None = None
    currency: str | None = None
    reasons: list[str] = field(default_factory=list)
    credit_statuses: list[str] = field(default_factory=list)
    refund_statuses: list[str] = field(default_factory=list)
    invoice_number: str | None = None
    amount_from: int | None = None
    amount_to: int | None = None
    #: self-billed credit notes do not exist here: True matches nothing
    self_billed: bool | None = None


def list_credit_notes(
    organization: Organization,
    filters: CreditNoteFilters,
    *,
    page: int = 1,
    per_page: int = 100,
) -> Page[CreditNote]:
    """One page of the organization's credit notes, newest first, with the total count."""
    conditions: list[Any] = [CreditNote.organization_id == organization.id]
    if filters.self_billed:
        return Page([], 0, page, per_page)
    if filters.customer_id is not None:
        conditions.append(CreditNote.customer_id == filters.customer_id)
    if filters.invoice_id is not None:
        conditions.append(CreditNote.invoice_id == filters.invoice_id)
    if filters.external_customer_id is not None:
        conditions.append(
            CreditNote.customer_id.in_(
                Customer.ids_with_external_id(organization.id, filters.external_customer_id)
            )
        )
    if filters.issuing_date_from is not None:
        conditions.append(CreditNote.issuing_date >= filters.issuing_date_from)
    if filters.issuing_date_to is not None:
        conditions.append(CreditNote.issuing_date <= filters.issuing_date_to)
    if filters.currency is not None:
        conditions.append(CreditNote.currency == filters.currency)
    if filters.reasons:
        conditions.append(CreditNote.reason.in_(filters.reasons))
    if filters.credit_statuses:
        conditions.append(CreditNote.credit_status.in_(filters.credit_statuses))
    if filters.refund_statuses:
        conditions.append(CreditNote.refund_status.in_(filters.refund_statuses))
    if filters.invoice_number:
        conditions.append(
            CreditNote.invoice_id.in_(
                select(Invoice.id).where(
                    Invoice.organization_id == organization.id,
                    Invoice.number == filters.invoice_number,
                )
            )
        )
    if filters.amount_from is not None:
        conditions.append(CreditNote.total_amount_cents >= filters.amount_from)
    if filters.amount_to is not None:
        conditions.append(CreditNote.total_amount_cents <= filters.amount_to)
    if filters.search_term:
        conditions.append(
            document_matches(
                organization.id, CreditNote.number, CreditNote.customer_id, filters.search_term
            )
        )
    total = db.session.scalar(select(func.count(CreditNote.id)).where(*conditions)) or 0
    offset = (page - 1) * per_page
    if offset >= total:
        return Page([], total, page, per_page)
    items = db.session.scalars(
        select(CreditNote)
        .where(*conditions)
        .order_by(CreditNote.created_at.desc(), CreditNote.id.asc())
        .offset(offset)
        .limit(per_page)
        .options(
            joinedload(CreditNote.customer),
            joinedload(CreditNote.invoice),
            selectinload(CreditNote.items).joinedload(CreditNoteItem.fee),
        )
    )
    return Page(list(items), total, page, per_page)


# ---------------------------------------------------------------------------------------------
# Audit and outbox


def _emit(credit_note: CreditNote, event_type: str) -> None:
    from billing.serializers_credit_notes import serialize_credit_note  # noqa: PLC0415

    outbox.emit(
        credit_note.organization_id, event_type, "credit_note", serialize_credit_note(credit_note)
    )


def _record(
    credit_note: CreditNote,
    activity_type: str,
    actor: audit.Actor,
    changes: dict[str, Any] | None = None,
) -> None:
    """An entry on the customer's timeline; the label is the credit note's number."""
    audit.record_activity(
        organization_id=credit_note.organization_id,
        actor=actor,
        activity_type=activity_type,
        resource_type="credit_note",
        resource_id=str(credit_note.lago_id),
        resource_label=credit_note.number,
        changes=changes,
        customer_id=credit_note.customer_id,
    )
