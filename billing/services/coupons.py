"""Coupons and applied coupons (lago-api.md §15), and what they take off invoices.

Coupons: create, update, terminate (the console; applied coupons keep running until used up),
delete (the API's DELETE: the coupon goes and its applied coupons are terminated, as Lago).

Invoices (§10.1: ``sub_total_excluding_taxes = fees - coupons - progressive_billing_credit``):
the customer's active applied coupons, oldest first, each take off the fees it is eligible for
(all, or those of its plans / its metrics' charges) what is left of them after the coupons
before it: a percentage of them, or a fixed amount (a ``once`` coupon its remaining amount,
carried over to later invoices). A coupon never takes more than is left, so an invoice never
goes negative. Each coupon's amount is spread over its fees pro rata, exactly, into
`Fee.precise_coupons_amount_cents` (what taxes are computed on is the amount minus that).

Drafts show the discount (rebuilt at each refresh) and consume nothing. Finalization computes
it again under the customer's row lock (which every finalization takes, see invoicing) and with
the applied coupons' rows locked, then consumes: `amount_cents_remaining` and
`frequency_duration_remaining` go down, a used-up coupon terminates. So a finalized invoice's
coupons never change, and two finalizations cannot take the same amount twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, exists, insert, select
from sqlalchemy.orm import selectinload

from billing.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from billing.ids import new_lago_id
from billing.models import (
    AppliedCoupon,
    Coupon,
    CouponExpiration,
    CouponFrequency,
    CouponStatus,
    CouponTarget,
    CouponType,
    Customer,
    Invoice,
    InvoiceCoupon,
    Organization,
)
from billing.money import parse_decimal, percentage_of, pro_rata
from billing.reference import currency_codes
from billing.services import audit
from billing.services.customers import get_customer, upsert_customer
from billing.services.metrics import Input, get_billable_metric, name_or_code_matches, page_of
from billing.services.organizations import lock_organization
from billing.services.pagination import Page
from billing.services.plans import get_plan
from billing.timeutil import as_utc, now_utc
from extensions import db

ACTIVE = CouponStatus.ACTIVE
TERMINATED = CouponStatus.TERMINATED
COUPON_TYPES = tuple(CouponType)
FREQUENCIES = tuple(CouponFrequency)
EXPIRATIONS = tuple(CouponExpiration)
#: what can still change once a coupon has been applied (Lago's Coupons::UpdateService)
EDITABLE_WHEN_APPLIED = ("name", "description", "expiration", "expiration_at")
_TERMS = (
    "coupon_type", "amount_cents", "amount_currency", "percentage_rate", "frequency",
    "frequency_duration", "reusable",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Input


@dataclass
class CouponInput:
    """A parsed `coupon` payload: the columns given, the limits (None: not given)."""

    values: dict[str, Any]
    plan_codes: list[str] | None = None
    billable_metric_codes: list[str] | None = None


def _given(inp: Input, key: str) -> Any:
    """The raw value of `key` to parse, or None when absent (nothing to do) or null/blank
    (stored as None)."""
    if key not in inp.payload:
        return None
    raw = inp.payload[key]
    if raw in (None, ""):
        inp.values[key] = None
        return None
    return raw


def _instant(inp: Input, key: str) -> None:
    """An ISO-8601 date or datetime (naive = UTC)."""
    if (raw := _given(inp, key)) is None:
        return
    try:
        inp.values[key] = as_utc(datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00")))
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved to UTC
        inp.error(key, "invalid_date")


def _percentage(inp: Input, key: str) -> None:
    if (raw := _given(inp, key)) is None:
        return
    rate = parse_decimal(raw)
    if rate is None:
        inp.error(key, "value_is_invalid")
    elif not Decimal(0) < rate <= Decimal(100):
        inp.error(key, "value_is_out_of_range")
    else:
        inp.values[key] = rate


def _currency(inp: Input, key: str) -> None:
    if (raw := _given(inp, key)) is None:
        return
    if isinstance(raw, str) and raw.upper() in currency_codes():
        inp.values[key] = raw.upper()
    else:
        inp.error(key, "value_is_invalid")


def _terms(inp: Input) -> None:
    """The fields of an application's terms (a coupon's, or an applied coupon's overrides)."""
    inp.integer("amount_cents", nullable=True, minimum=1)
    _currency(inp, "amount_currency")
    _percentage(inp, "percentage_rate")
    inp.choice("frequency", FREQUENCIES)
    inp.integer("frequency_duration", nullable=True, minimum=1, maximum=10_000)


def parse_coupon(payload: dict[str, Any], current: Coupon | None = None) -> CouponInput:
    """Check a `coupon` payload (create, or update of `current`); ValidationFailed with
    Lago's field codes."""
    errors: dict[str, list[str]] = {}
    inp = Input(payload, errors)
    inp.text("name")
    inp.text("code", code=True)
    inp.text("description", max_length=10_000)
    inp.choice("coupon_type", COUPON_TYPES)
    _terms(inp)
    inp.boolean("reusable")
    inp.choice("expiration", EXPIRATIONS)
    _instant(inp, "expiration_at")
    values = inp.values
    stored = _columns(current) if current is not None else {}
    if current is None:
        values.setdefault("frequency", CouponFrequency.ONCE)
        values.setdefault("expiration", CouponExpiration.NO_EXPIRATION)
        values.setdefault("reusable", True)
    merged = stored | values
    inp.require("name", "code", "coupon_type", current=stored)
    if merged.get("coupon_type") == CouponType.FIXED_AMOUNT:
        inp.require("amount_cents", "amount_currency", current=stored)
        values["percentage_rate"] = None
    elif merged.get("coupon_type") == CouponType.PERCENTAGE:
        inp.require("percentage_rate", current=stored)
        values["amount_cents"] = values["amount_currency"] = None
    if merged.get("frequency") == CouponFrequency.RECURRING:
        inp.require("frequency_duration", current=stored)
    elif "frequency" in values:
        values["frequency_duration"] = None
    if merged.get("expiration") == CouponExpiration.TIME_LIMIT:
        inp.require("expiration_at", current=stored)
        at = values.get("expiration_at")
        if at is not None and at <= now_utc():
            inp.error("expiration_at", "invalid_date")
    elif "expiration" in values:
        values["expiration_at"] = None
    parsed = CouponInput(values)
    applies_to = payload.get("applies_to")
    if "applies_to" in payload and applies_to is not None:
        if not isinstance(applies_to, dict):
            inp.error("applies_to", "value_is_invalid")
        else:
            limits = Input(applies_to, errors)
            limits.string_list("plan_codes")
            limits.string_list("billable_metric_codes")
            parsed.plan_codes = limits.values.get("plan_codes")
            parsed.billable_metric_codes = limits.values.get("billable_metric_codes")
    if errors:
        raise ValidationFailed(errors)
    return parsed


def _columns(coupon: Coupon) -> dict[str, Any]:
    return {
        key: getattr(coupon, key)
        for key in (
            "name", "code", "description", "coupon_type", "amount_cents", "amount_currency",
            "percentage_rate", "frequency", "frequency_duration", "reusable", "expiration",
            "expiration_at",
        )
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Coupons


def find_coupon(organization: Organization, code: str) -> Coupon | None:
    return db.session.scalar(
        select(Coupon)
        .where(
            Coupon.organization_id == organization.id,
            Coupon.code == code,
            Coupon.deleted_at.is_(None),
        )
        .options(selectinload(Coupon.targets))
    )


def get_coupon(organization: Organization, code: str) -> Coupon:
    """The organization's live coupon with this code; NotFound otherwise."""
    coupon = find_coupon(organization, code)
    if coupon is None:
        raise NotFound("coupon")
    return coupon


def list_coupons(
    organization: Organization,
    page: int = 1,
    per_page: int = 100,
    *,
    search: str | None = None,
    status: str | None = None,
) -> Page[Coupon]:
    """The organization's live coupons, newest first; `search` matches name or code."""
    query = select(Coupon).where(
        Coupon.organization_id == organization.id, Coupon.deleted_at.is_(None)
    )
    if status:
        query = query.where(Coupon.status == status)
    query = name_or_code_matches(query, search, Coupon.name, Coupon.code)
    query = query.options(selectinload(Coupon.targets))
    return page_of(query.order_by(Coupon.created_at.desc(), Coupon.id.asc()), page, per_page)


def coupon_applied(coupon: Coupon) -> bool:
    return bool(db.session.scalar(select(exists().where(AppliedCoupon.coupon_id == coupon.id))))


def create_coupon(
    organization: Organization, payload: dict[str, Any], actor: audit.Actor
) -> Coupon:
    """A new coupon; its code must be free among the organization's live coupons."""
    parsed = parse_coupon(payload)
    lock_organization(organization)
    if find_coupon(organization, parsed.values["code"]) is not None:
        raise Conflict("code")
    now = now_utc()
    coupon = Coupon(organization_id=organization.id, created_at=now, updated_at=now)
    for key, value in parsed.values.items():
        setattr(coupon, key, value)
    _set_limits(organization, coupon, parsed)
    db.session.add(coupon)
    db.session.flush()
    _record(coupon, "coupon.created", actor, audit.diff({}, _audited(coupon)))
    return coupon


def update_coupon(
    organization: Organization, coupon: Coupon, payload: dict[str, Any], actor: audit.Actor
) -> Coupon:
    """Change the fields present; once applied, only its name, description and expiry (the
    terms and limits of an applied coupon are ignored, as Lago)."""
    parsed = parse_coupon(payload, coupon)
    before = _audited(coupon)
    applied = coupon_applied(coupon)
    values = parsed.values
    if applied:
        values = {key: value for key, value in values.items() if key in EDITABLE_WHEN_APPLIED}
    lock_organization(organization)
    new_code = values.get("code", coupon.code)
    if new_code != coupon.code and find_coupon(organization, new_code) is not None:
        raise Conflict("code")
    for key, value in values.items():
        setattr(coupon, key, value)
    if not applied:
        _set_limits(organization, coupon, parsed)
    coupon.updated_at = now_utc()
    db.session.flush()
    changes = audit.diff(before, _audited(coupon))
    if changes:
        _record(coupon, "coupon.updated", actor, changes)
    return coupon


def _set_limits(organization: Organization, coupon: Coupon, parsed: CouponInput) -> None:
    """The plans and metrics it is limited to (unknown codes: 404 as Lago)."""
    if parsed.plan_codes is None and parsed.billable_metric_codes is None:
        return
    targets = []
    for code in dict.fromkeys(parsed.plan_codes or []):
        targets.append(CouponTarget(plan=get_plan(organization, code)))
    for code in dict.fromkeys(parsed.billable_metric_codes or []):
        targets.append(CouponTarget(billable_metric=get_billable_metric(organization, code)))
    if coupon.id is not None:
        coupon.targets.clear()
        db.session.flush()
    coupon.targets = targets
    coupon.limited_plans = bool(parsed.plan_codes)
    coupon.limited_billable_metrics = bool(parsed.billable_metric_codes)


def terminate_coupon(coupon: Coupon, actor: audit.Actor) -> Coupon:
    """Nobody can apply it any more; the applied coupons run until used up (the console's
    terminate, Lago's Coupons::TerminateService). NotAllowed when terminated already."""
    if coupon.status != ACTIVE:
        raise NotAllowed("coupon_not_active")
    coupon.status = TERMINATED
    coupon.terminated_at = coupon.updated_at = now_utc()
    db.session.flush()
    _record(coupon, "coupon.terminated", actor)
    return coupon


def delete_coupon(organization: Organization, coupon: Coupon, actor: audit.Actor) -> Coupon:
    """The API's DELETE: the coupon is terminated and deleted (its code is free again) and
    its active applied coupons are terminated (Lago's Coupons::DestroyService)."""
    now = now_utc()
    if coupon.status == ACTIVE:
        coupon.status = TERMINATED
        coupon.terminated_at = now
    coupon.deleted_at = coupon.updated_at = now
    for applied in _active_applications(AppliedCoupon.coupon_id == coupon.id):
        applied.terminate(now)
        _record_applied(applied, "applied_coupon.terminated", actor)
    db.session.flush()
    _record(coupon, "coupon.deleted", actor)
    return coupon


def _audited(coupon: Coupon) -> dict[str, Any]:
    values = _columns(coupon)
    values["percentage_rate"] = (
        str(coupon.percentage_rate) if coupon.percentage_rate is not None else None
    )
    values["expiration_at"] = (
        coupon.expiration_at.isoformat() if coupon.expiration_at is not None else None
    )
    values["plan_codes"] = [plan.code for plan in coupon.plans]
    values["billable_metric_codes"] = [metric.code for metric in coupon.billable_metrics]
    return values


def _record(
    coupon: Coupon, activity_type: str, actor: audit.Actor, changes: dict[str, Any] | None = None
) -> None:
    audit.record_activity(
        organization_id=coupon.organization_id,
        actor=actor,
        activity_type=activity_type,
        resource_type="coupon",
        resource_id=str(coupon.lago_id),
        resource_label=coupon.code,
        changes=changes,
    )


# ---------------------------------------------------------------------------------------------
# Applied coupons


def apply_coupon(
    organization: Organization, payload: dict[str, Any], actor: audit.Actor
) -> AppliedCoupon:
    """Apply a coupon to a customer (Lago's AppliedCoupons::CreateService), with the coupon's
    terms or the overrides given. 404 for an unknown customer or a coupon that cannot be
    applied (unknown, terminated, expired); 422 for a coupon in another currency than the
    customer's, a non-reusable coupon applied twice, or bad overrides."""
    errors: dict[str, list[str]] = {}
    inp = Input(payload, errors)
    inp.text("external_customer_id")
    inp.text("coupon_code")
    _terms(inp)
    inp.require("external_customer_id", "coupon_code")
    if errors:
        raise ValidationFailed(errors)
    overrides = inp.values
    customer = get_customer(organization, overrides["external_customer_id"])
    coupon = find_coupon(organization, overrides["coupon_code"])
    now = now_utc()
    if coupon is None or coupon.status != ACTIVE or coupon.expired(now):
        raise NotFound("coupon")
    # Serializes applications to one customer (the reusable check) with the other writers.
    lock_organization(organization)
    applied = AppliedCoupon(
        organization_id=organization.id,
        coupon=coupon,
        customer=customer,
        status=ACTIVE,
        created_at=now,
        updated_at=now,
    )
    for key in _TERMS[1:6]:
        value = overrides[key] if overrides.get(key) is not None else getattr(coupon, key)
        setattr(applied, key, value)
    if coupon.coupon_type == CouponType.FIXED_AMOUNT:
        applied.percentage_rate = None
        applied.amount_cents_remaining = (
            applied.amount_cents if applied.frequency == CouponFrequency.ONCE else None
        )
    else:
        applied.amount_cents = applied.amount_currency = None
    if applied.frequency == CouponFrequency.RECURRING:
        if applied.frequency_duration is None:
            raise ValidationFailed({"frequency_duration": ["value_is_mandatory"]})
        applied.frequency_duration_remaining = applied.frequency_duration
    else:
        applied.frequency_duration = None
    if not coupon.reusable and db.session.scalar(
        select(
            exists().where(
                AppliedCoupon.coupon_id == coupon.id, AppliedCoupon.customer_id == customer.id
            )
        )
    ):
        raise ValidationFailed({"coupon": ["coupon_is_not_reusable"]})
    if applied.amount_currency is not None:
        if customer.currency is None:
            customer, _created = upsert_customer(
                organization,
                {"external_id": customer.external_id, "currency": applied.amount_currency},
                actor,
            )
        elif customer.currency != applied.amount_currency:
            raise ValidationFailed({"currency": ["currencies_does_not_match"]})
    db.session.add(applied)
    db.session.flush()
    _record_applied(applied, "applied_coupon.created", actor, _applied_audit(applied))
    return applied


def _applied_audit(applied: AppliedCoupon) -> dict[str, Any]:
    return audit.diff(
        {},
        {
            "coupon_code": applied.coupon.code,
            "amount_cents": applied.amount_cents,
            "amount_currency": applied.amount_currency,
            "percentage_rate": (
                str(applied.percentage_rate) if applied.percentage_rate is not None else None
            ),
            "frequency": applied.frequency,
            "frequency_duration": applied.frequency_duration,
        },
    )


def _record_applied(
    applied: AppliedCoupon,
    activity_type: str,
    actor: audit.Actor,
    changes: dict[str, Any] | None = None,
) -> None:
    """On the customer's timeline; the label is the coupon's code."""
    audit.record_activity(
        organization_id=applied.organization_id,
        actor=actor,
        activity_type=activity_type,
        resource_type="applied_coupon",
        resource_id=str(applied.lago_id),
        resource_label=applied.coupon.code,
        changes=changes,
        customer_id=applied.customer_id,
    )


@dataclass
class AppliedCouponFilters:
    external_customer_id: str | None = None
    #: one customer's (the console's tab)
    customer_id: int | None = None
    status: str | None = None
    coupon_codes: list[str] = field(default_factory=list)


def list_applied_coupons(
    organization: Organization,
    filters: AppliedCouponFilters,
    page: int = 1,
    per_page: int = 100,
) -> Page[AppliedCoupon]:
    """The organization's applied coupons (of live customers), newest first."""
    query = (
        select(AppliedCoupon)
        .join(Customer, Customer.id == AppliedCoupon.customer_id)
        .where(AppliedCoupon.organization_id == organization.id)
    )
    if filters.customer_id is not None:
        query = query.where(AppliedCoupon.customer_id == filters.customer_id)
    else:
        query = query.where(Customer.deleted_at.is_(None))
    if filters.external_customer_id is not None:
        query = query.where(Customer.external_id == filters.external_customer_id)
    if filters.status:
        query = query.where(AppliedCoupon.status == filters.status)
    if filters.coupon_codes:
        query = query.join(Coupon, Coupon.id == AppliedCoupon.coupon_id).where(
            Coupon.code.in_(filters.coupon_codes)
        )
    query = query.options(
        selectinload(AppliedCoupon.coupon),
        selectinload(AppliedCoupon.customer),
        selectinload(AppliedCoupon.credits).selectinload(InvoiceCoupon.invoice),
    )
    return page_of(
        query.order_by(AppliedCoupon.created_at.desc(), AppliedCoupon.id.asc()), page, per_page
    )


def get_applied_coupon(customer: Customer, lago_id: str) -> AppliedCoupon:
    """The customer's applied coupon with this lago id; NotFound (applied_coupon) else."""
    try:
        key = uuid.UUID(str(lago_id))
    except ValueError:
        raise NotFound("applied_coupon") from None
    applied = db.session.scalar(
        select(AppliedCoupon).where(
            AppliedCoupon.customer_id == customer.id, AppliedCoupon.lago_id == key
        )
    )
    if applied is None:
        raise NotFound("applied_coupon")
    return applied


def remove_applied_coupon(applied: AppliedCoupon, actor: audit.Actor) -> AppliedCoupon:
    """Terminate an applied coupon (its row locked, so no finalization is consuming it at the
    same time); a terminated one is 405 applied_coupon_not_active."""
    _lock([applied.id])
    db.session.refresh(applied)
    applied.terminate()
    db.session.flush()
    _record_applied(applied, "applied_coupon.terminated", actor)
    return applied


def terminate_customer_coupons(customer: Customer, actor: audit.Actor) -> list[AppliedCoupon]:
    """Terminate every active coupon applied to the customer (what deleting it does)."""
    applied_coupons = _active_applications(AppliedCoupon.customer_id == customer.id)
    _lock([applied.id for applied in applied_coupons])
    now = now_utc()
    for applied in applied_coupons:
        applied.terminate(now)
        _record_applied(applied, "applied_coupon.terminated", actor)
    db.session.flush()
    return applied_coupons


def active_applied_coupons(customer: Customer) -> list[AppliedCoupon]:
    """The customer's active applied coupons, oldest first (the order invoices use them)."""
    return _active_applications(AppliedCoupon.customer_id == customer.id)


def _active_applications(*conditions: Any) -> list[AppliedCoupon]:
    return list(
        db.session.scalars(
            select(AppliedCoupon)
            .where(AppliedCoupon.status == ACTIVE, *conditions)
            .order_by(AppliedCoupon.created_at, AppliedCoupon.id)
            .options(selectinload(AppliedCoupon.coupon).selectinload(Coupon.targets))
        )
    )


def _lock(ids: Sequence[int]) -> None:
    """Row locks on these applied coupons, in id order (PostgreSQL; SQLite has one writer).

    FOR NO KEY UPDATE: it excludes the other writers of the row (a finalization, a removal)
    but not the key-share locks that referencing it takes (a draft's credit line inserted by a
    refresh), which a finalization holding the customer's lock would otherwise deadlock on."""
    if ids and db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            select(AppliedCoupon.id)
            .where(AppliedCoupon.id.in_(sorted(ids)))
            .order_by(AppliedCoupon.id)
            .with_for_update(key_share=True)
        )


# ---------------------------------------------------------------------------------------------
# Invoices


@dataclass
class _Allowance:
    """What an applied coupon can still take during one computation."""

    applied: AppliedCoupon
    amount_remaining: int | None
    periods_remaining: int | None
    used_up: bool = False


class CouponLedger:
    """The active applied coupons of some customers during one invoicing step, with what each
    can still take. `discount` computes an invoice's coupons; when the invoice is finalized it
    also advances the ledger, so the next invoice of the same customer sees what is left."""

    def __init__(self, applied_coupons: Iterable[AppliedCoupon]) -> None:
        self.by_customer: dict[int, list[_Allowance]] = {}
        for applied in applied_coupons:
            self.by_customer.setdefault(applied.customer_id, []).append(
                _Allowance(
                    applied, applied.amount_cents_remaining, applied.frequency_duration_remaining
                )
            )

    def discount(self, invoice: Any, *, finalizing: bool) -> list[Any]:
        """Set the coupons of `invoice` (an Invoice or a new in-memory one): its fees'
        `precise_coupons_amount_cents`, its `coupons_amount_cents`, and the credit lines
        (plain objects) returned and kept in `invoice.new_coupon_credits`."""
        fees = list(invoice.fees)
        for fee in fees:
            fee.precise_coupons_amount_cents = Decimal(0)
        fees_total = sum(fee.amount_cents for fee in fees)
        taken = 0
        lines = []
        for allowance in self.by_customer.get(invoice.customer_id, []):
            applied = allowance.applied
            if allowance.used_up or applied.status != ACTIVE:
                continue
            if applied.amount_currency is not None and applied.amount_currency != invoice.currency:
                continue  # a fixed amount only discounts invoices in its currency
            eligible = [fee for fee in fees if _eligible(applied.coupon, fee)]
            weights = [fee.amount_cents - fee.precise_coupons_amount_cents for fee in eligible]
            base = min(int(sum(weights, Decimal(0))), fees_total - taken)
            amount = min(self._amount(allowance, base), base)
            if amount <= 0:
                continue
            positive = [(fee, weight) for fee, weight in zip(eligible, weights, strict=True)]
            positive = [(fee, weight) for fee, weight in positive if weight > 0]
            shares = pro_rata(amount, [weight for _fee, weight in positive])
            for (fee, _weight), share in zip(positive, shares, strict=True):
                fee.precise_coupons_amount_cents += share
            before = fees_total - taken
            taken += amount
            lines.append(
                SimpleNamespace(
                    lago_id=new_lago_id(),
                    invoice_id=getattr(invoice, "id", None),
                    applied_coupon_id=applied.id,
                    applied_coupon=applied,
                    amount_cents=amount,
                    currency=invoice.currency,
                    before_amount_cents=before,
                    after_amount_cents=before - amount,
                    created_at=invoice.updated_at or now_utc(),
                )
            )
            if finalizing:
                _use(allowance, amount)
        invoice.coupons_amount_cents = taken
        invoice.new_coupon_credits = lines
        return lines

    @staticmethod
    def _amount(allowance: _Allowance, base: int) -> int:
        applied = allowance.applied
        if applied.percentage_rate is not None:
            return percentage_of(base, applied.percentage_rate)
        if applied.frequency == CouponFrequency.ONCE:
            return allowance.amount_remaining or 0
        return applied.amount_cents or 0


def _eligible(coupon: Coupon, fee: Any) -> bool:
    """Whether the coupon's limits let it discount the fee (no limits: every fee)."""
    if not coupon.limited_plans and not coupon.limited_billable_metrics:
        return True
    subscription = fee.subscription
    plan_ids = {target.plan_id for target in coupon.targets}
    if coupon.limited_plans and subscription is not None and subscription.plan_id in plan_ids:
        return True
    if coupon.limited_billable_metrics and fee.charge is not None:
        metric_ids = {target.billable_metric_id for target in coupon.targets}
        if fee.charge.billable_metric_id in metric_ids:
            return True
    return False


def _use(allowance: _Allowance, amount: int) -> None:
    applied = allowance.applied
    if applied.frequency == CouponFrequency.ONCE:
        if allowance.amount_remaining is not None:
            allowance.amount_remaining -= amount
        allowance.used_up = not allowance.amount_remaining
    elif applied.frequency == CouponFrequency.RECURRING:
        allowance.periods_remaining = (allowance.periods_remaining or 1) - 1
        allowance.used_up = allowance.periods_remaining == 0


def _consume(credits: Iterable[Any], at: datetime) -> None:
    """What finalized invoices took, off their (locked) applied coupons, in order."""
    for credit in credits:
        applied: AppliedCoupon = credit.applied_coupon
        if applied.status != ACTIVE:
            continue
        if applied.frequency == CouponFrequency.ONCE:
            if applied.amount_cents_remaining is not None:
                applied.amount_cents_remaining = max(
                    0, applied.amount_cents_remaining - credit.amount_cents
                )
            if not applied.amount_cents_remaining:
                applied.terminate(at)
        elif applied.frequency == CouponFrequency.RECURRING:
            applied.frequency_duration_remaining = max(
                0, (applied.frequency_duration_remaining or 1) - 1
            )
            if applied.frequency_duration_remaining == 0:
                applied.terminate(at)
        applied.updated_at = at


def apply_to_invoice(invoice: Invoice, *, finalizing: bool) -> None:
    """(Re)compute the coupons of an invoice in the session (refresh, finalization), storing
    its credit lines. `finalizing`: the caller holds the customer's row lock; the applied
    coupons are locked too, and what the invoice takes is consumed. The caller then sets the
    invoice's totals before anything is flushed (its amount relations are check constraints)."""
    if finalizing:
        applied_coupons = active_applied_coupons(invoice.customer)
        _lock([applied.id for applied in applied_coupons])
        for applied in applied_coupons:
            db.session.refresh(applied)
    else:
        applied_coupons = active_applied_coupons(invoice.customer)
    if invoice.coupon_credits:
        invoice.coupon_credits.clear()
        db.session.flush()  # old lines go first: the (invoice, applied coupon) pair is unique
    lines = CouponLedger(applied_coupons).discount(invoice, finalizing=finalizing)
    invoice.coupon_credits = [
        InvoiceCoupon(
            lago_id=line.lago_id,
            applied_coupon_id=line.applied_coupon_id,
            applied_coupon=line.applied_coupon,
            amount_cents=line.amount_cents,
            currency=line.currency,
            before_amount_cents=line.before_amount_cents,
            after_amount_cents=line.after_amount_cents,
            created_at=line.created_at,
        )
        for line in lines
    ]
    if finalizing:
        _consume(lines, now_utc())


def ledger_for_new_invoices(
    customers: Sequence[Customer], finalizing_ids: set[int]
) -> CouponLedger:
    """The ledger of a batch of new invoices: the active applied coupons of `customers`, read in
    one query.

    On PostgreSQL the customers whose invoices are finalized at once (`finalizing_ids`) are
    locked first (as the numbering in `_finalize_new` locks them, in id order) before any
    invoice row references them, then their applied coupons: what the ledger reads cannot
    change before it is consumed, and two closes of one customer's subscriptions wait for
    each other instead of both holding the key-share lock an invoice insert takes on its
    customer while each waits for the other's to lock it."""
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    locked = sorted(finalizing_ids)
    if locked and postgresql:
        db.session.execute(
            select(Customer.id)
            .where(Customer.id.in_(locked))
            .order_by(Customer.id)
            .with_for_update()
        )
    ids = sorted({customer.id for customer in customers})
    applied_ids = list(
        db.session.scalars(
            select(AppliedCoupon.id).where(
                AppliedCoupon.customer_id.in_(ids), AppliedCoupon.status == ACTIVE
            )
        )
    )
    if not applied_ids:
        return CouponLedger([])
    if postgresql:
        _lock(
            [
                applied_id
                for applied_id, customer_id in db.session.execute(
                    select(AppliedCoupon.id, AppliedCoupon.customer_id).where(
                        AppliedCoupon.id.in_(applied_ids)
                    )
                )
                if customer_id in finalizing_ids
            ]
        )
    applied_coupons = _active_applications(AppliedCoupon.id.in_(applied_ids))
    for applied in applied_coupons:
        db.session.refresh(applied)  # read again, now that it is locked
    return CouponLedger(applied_coupons)


_CREDITS: Table = InvoiceCoupon.__table__  # type: ignore[assignment]
_CREDIT_COLUMNS = tuple(column.key for column in _CREDITS.columns if column.key != "id")


def record_new_credits(invoices: Sequence[Any], finalized_ids: set[int]) -> None:
    """Store the credit lines of new invoices (inserted through Core, ids known) and consume
    those of the invoices finalized at their creation (`finalized_ids`)."""
    rows = []
    consumed = []
    for invoice in invoices:
        for line in getattr(invoice, "new_coupon_credits", []):
            line.invoice_id = invoice.id
            rows.append({key: getattr(line, key) for key in _CREDIT_COLUMNS})
            if invoice.id in finalized_ids:
                consumed.append(line)
        invoice.coupon_credits = getattr(invoice, "new_coupon_credits", [])
    if rows:
        db.session.connection().execute(insert(_CREDITS), rows)
    if consumed:
        _consume(consumed, now_utc())
        db.session.flush()
