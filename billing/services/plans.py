"""Plans with their charges, charge filters and metadata (lago-api.md §7).

Input is Lago's `plan` / `charge` / `filter` payload as a plain dict. Every write validates
the whole request first (so a 422 writes nothing), then applies it, flushes and records one
audit entry on the plan. Charge prices are checked by `billing.pricing.validate_properties`.

Error keys say where in the request a value failed: `charges[1].charge_model`,
`charges[0].properties.graduated_ranges`, `charges[0].filters[2].values` (on the nested charge
routes the same keys without the `charges[i].` prefix).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import distinct, exists, func, select
from sqlalchemy.orm import joinedload, selectinload

from billing.aggregation import ALL_FILTER_VALUES
from billing.errors import NotAllowed, NotFound, ValidationFailed
from billing.models import BillableMetric, Charge, ChargeFilter, Organization, Plan, Subscription
from billing.models.plans import PlanInterval
from billing.models.subscriptions import SubscriptionStatus
from billing.pricing import CHARGE_MODELS, validate_properties
from billing.reference import currency_codes
from billing.serializers_plans import PlanCounts, serialize_plan
from billing.services import audit, outbox
from billing.services.customer_input import (
    METADATA_KEY_MAX,
    METADATA_MAX_ITEMS,
    METADATA_VALUE_MAX,
)
from billing.services.metrics import (
    LIVE_SUBSCRIPTION_STATUSES,
    Input,
    name_or_code_matches,
    page_of,
)
from billing.services.organizations import lock_organization
from billing.services.pagination import Page
from billing.services.taxes import taxes_by_codes
from billing.timeutil import now_utc
from extensions import db

INTERVALS = tuple(i.value for i in PlanInterval)
#: what cannot change while subscriptions bill the plan (Lago keeps them silently; we refuse)
IMMUTABLE_WHEN_SUBSCRIBED = ("code", "interval", "amount_currency", "pay_in_advance")
#: charge models Lago refuses to bill in advance
_NOT_IN_ADVANCE = ("volume",)
_NOT_AUDITED = {
    "lago_id", "created_at", "customers_count", "active_subscriptions_count",
    "draft_invoices_count", "parent_id", "pending_deletion", "fixed_charges",
    "usage_thresholds", "taxes", "minimum_commitment", "bill_fixed_charges_monthly",
}  # fmt: skip


# --- lookup ------------------------------------------------------------------------------


def _plan_query(organization: Organization) -> Any:
    return (
        select(Plan)
        .where(Plan.organization_id == organization.id, Plan.deleted_at.is_(None))
        .options(
            selectinload(Plan.charges).selectinload(Charge.filters),
            selectinload(Plan.charges).joinedload(Charge.billable_metric),
            selectinload(Plan.charges).selectinload(Charge.taxes),
            selectinload(Plan.taxes),
        )
    )


def find_plan(organization: Organization, code: str) -> Plan | None:
    return db.session.scalar(_plan_query(organization).where(Plan.code == code))


def get_plan(organization: Organization, code: str) -> Plan:
    """The organization's live plan with this code; NotFound otherwise."""
    plan = find_plan(organization, code)
    if plan is None:
        raise NotFound("plan")
    return plan


def list_plans(
    organization: Organization, page: int = 1, per_page: int = 100, search: str | None = None
) -> Page[Plan]:
    """The organization's live plans, newest first; `search` matches name or code."""
    query = name_or_code_matches(_plan_query(organization), search, Plan.name, Plan.code)
    return page_of(query.order_by(Plan.created_at.desc(), Plan.id.asc()), page, per_page)


def plan_counts(plans: list[Plan]) -> dict[int, PlanCounts]:
    """plan id → its customers and active subscriptions (one query for a whole page)."""
    if not plans:
        return {}
    rows = db.session.execute(
        select(
            Subscription.plan_id,
            func.count(distinct(Subscription.customer_id)),
            func.count(Subscription.id),
        )
        .where(
            Subscription.plan_id.in_([p.id for p in plans]),
            Subscription.status == SubscriptionStatus.ACTIVE,
        )
        .group_by(Subscription.plan_id)
    )
    return {plan_id: PlanCounts(customers, active) for plan_id, customers, active in rows}


def plan_has_live_subscriptions(plan: Plan) -> bool:
    """Whether an active or pending subscription is on the plan."""
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    Subscription.plan_id == plan.id,
                    Subscription.status.in_(LIVE_SUBSCRIPTION_STATUSES),
                )
            )
        )
    )


def get_charge(plan: Plan, code: str) -> Charge:
    """The plan's live charge with this code; NotFound (`charge_not_found`) otherwise."""
    for charge in plan.charges:
        if charge.code == code:
            return charge
    raise NotFound("charge")


def list_charges(plan: Plan, page: int = 1, per_page: int = 100) -> Page[Charge]:
    """The plan's live charges in creation order."""
    query = (
        select(Charge)
        .where(Charge.plan_id == plan.id, Charge.deleted_at.is_(None))
        .options(
            selectinload(Charge.filters),
            joinedload(Charge.billable_metric),
            selectinload(Charge.taxes),
        )
        .order_by(Charge.created_at.asc(), Charge.id.asc())
    )
    return page_of(query, page, per_page)


def get_charge_filter(charge: Charge, lago_id: str) -> ChargeFilter:
    """The charge's live filter with this lago_id; NotFound (`charge_filter_not_found`)."""
    for charge_filter in charge.filters:
        if str(charge_filter.lago_id) == lago_id:
            return charge_filter
    raise NotFound("charge_filter")


def list_charge_filters(charge: Charge, page: int = 1, per_page: int = 100) -> Page[ChargeFilter]:
    query = (
        select(ChargeFilter)
        .where(ChargeFilter.charge_id == charge.id, ChargeFilter.deleted_at.is_(None))
        .order_by(ChargeFilter.created_at.asc(), ChargeFilter.id.asc())
    )
    return page_of(query, page, per_page)


# --- input -------------------------------------------------------------------------------


@dataclass
class ChargeInput:
    """One charge of a request: the stored charge it updates (None: a new one), its metric,
    the columns to write, and its filters (None: leave them alone)."""

    existing: Charge | None
    metric: BillableMetric
    columns: dict[str, Any]
    filters: list[dict[str, Any]] | None = None


@dataclass
class PlanInput:
    columns: dict[str, Any] = field(default_factory=dict)
    #: None when the payload has no `charges` key (keep the charges as they are)
    charges: list[ChargeInput] | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


def _find_metric(organization: Organization, payload: dict[str, Any]) -> BillableMetric | None:
    """The live metric named by `billable_metric_id` (lago_id) or `billable_metric_code`;
    None when neither is given; NotFound when the one given does not exist."""
    lago_id, code = payload.get("billable_metric_id"), payload.get("billable_metric_code")
    if lago_id in (None, "") and code in (None, ""):
        return None
    query = select(BillableMetric).where(
        BillableMetric.organization_id == organization.id, BillableMetric.deleted_at.is_(None)
    )
    if lago_id not in (None, ""):
        try:
            query = query.where(BillableMetric.lago_id == uuid.UUID(str(lago_id)))
        except ValueError:
            raise NotFound("billable_metric") from None
    else:
        query = query.where(BillableMetric.code == str(code))
    metric = db.session.scalar(query)
    if metric is None:
        raise NotFound("billable_metric")
    return metric


def _validated_properties(
    charge_model: str, properties: Any, data: Input, key: str
) -> dict[str, Any] | None:
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        data.error(key, "value_is_invalid")
        return None
    normalized, errors = validate_properties(charge_model, properties)
    for name, codes in errors.items():
        for code in codes:
            data.error(name if name.startswith(key) else f"{key}.{name}", code)
    return None if errors else normalized


def _parse_filters(
    items: Any, metric: BillableMetric, charge_model: str | None, data: Input
) -> list[dict[str, Any]] | None:
    """Charge filters: values must name keys and values of the metric's own filters."""
    if items is None:
        return []
    if not isinstance(items, list):
        data.error("filters", "value_is_invalid")
        return None
    allowed = {f["key"]: set(f["values"]) for f in metric.filters or []}
    parsed: list[dict[str, Any]] = []
    seen: list[dict[str, list[str]]] = []
    for index, item in enumerate(items):
        item_data = Input(
            item if isinstance(item, dict) else {}, data.errors, f"{data.prefix}filters[{index}]."
        )
        if not isinstance(item, dict):
            data.error(f"filters[{index}]", "value_is_invalid")
            continue
        item_data.text("invoice_display_name")
        values = _filter_values(item.get("values"), allowed)
        if values is None:
            item_data.error("values", "value_is_invalid")
        elif values in seen:
            item_data.error("values", "value_already_exist")
        properties = (
            _validated_properties(charge_model, item.get("properties"), item_data, "properties")
            if charge_model in CHARGE_MODELS
            else None
        )
        if values is not None and properties is not None and values not in seen:
            seen.append(values)
            parsed.append({**item_data.values, "values": values, "properties": properties})
    return parsed


def _filter_values(value: Any, allowed: dict[str, set[str]]) -> dict[str, list[str]] | None:
    if not isinstance(value, dict) or not value:
        return None
    result: dict[str, list[str]] = {}
    for key, values in value.items():
        if key not in allowed or not isinstance(values, list) or not values:
            return None
        for v in values:
            if not isinstance(v, str) or (v not in allowed[key] and v != ALL_FILTER_VALUES):
                return None
        result[key] = list(values)
    return result


def parse_charge(
    organization: Organization,
    payload: Any,
    errors: dict[str, list[str]],
    *,
    prefix: str = "",
    existing: Charge | None = None,
) -> ChargeInput | None:
    """Validate one charge payload (new, or a partial update of `existing`)."""
    if not isinstance(payload, dict):
        errors.setdefault(prefix.rstrip(".") or "charge", []).append("value_is_invalid")
        return None
    data = Input(payload, errors, prefix)
    metric = _find_metric(organization, payload)
    if existing is not None:
        if metric is not None and metric.id != existing.billable_metric_id:
            data.error("billable_metric_id", "value_is_immutable")
        metric = existing.billable_metric
    elif metric is None:
        data.error("billable_metric_id", "value_is_mandatory")
    data.text("code", code=True)
    data.choice("charge_model", CHARGE_MODELS)
    data.boolean("pay_in_advance")
    data.boolean("invoiceable")
    data.boolean("prorated")
    data.choice("regroup_paid_fees", ("invoice",), nullable=True)
    data.integer("min_amount_cents")
    data.text("invoice_display_name")
    data.string_list("tax_codes")
    _resolve_tax_codes(organization, data)
    current = _charge_columns(existing) if existing is not None else {}
    data.require("charge_model", current=current)
    model = data.values.get("charge_model", current.get("charge_model"))
    if model in CHARGE_MODELS and (
        "properties" in payload or "charge_model" in data.values or existing is None
    ):
        properties = _validated_properties(
            model, payload.get("properties", current.get("properties")), data, "properties"
        )
        if properties is not None:
            data.values["properties"] = properties
    merged = {**current, **data.values}
    if data.values.get("pay_in_advance") and not (existing is not None and existing.pay_in_advance):
        # Charges are billed at the end of the period only: one billed in advance would never be
        # billed. A charge stored in advance before this refusal may be sent back as it is.
        data.error("pay_in_advance", "not_supported")
    if merged.get("pay_in_advance") and model in _NOT_IN_ADVANCE:
        data.error("charge_model", "invalid_aggregation_type_or_charge_model")
    if merged.get("pay_in_advance") and merged.get("min_amount_cents"):
        data.error("min_amount_cents", "not_compatible_with_pay_in_advance")
    filters = None
    if metric is not None and "filters" in payload:
        filters = _parse_filters(payload["filters"], metric, model, data)
    elif metric is not None and existing is not None and "charge_model" in data.values:
        # A new model prices the kept filters too.
        _parse_filters(
            [{"values": f.values, "properties": f.properties} for f in existing.filters],
            metric,
            model,
            data,
        )
    if metric is None or any(key.startswith(prefix) for key in errors):
        return None
    return ChargeInput(existing, metric, data.values, filters)


def _charge_columns(charge: Charge) -> dict[str, Any]:
    return {
        name: getattr(charge, name)
        for name in (
            "code", "charge_model", "properties", "pay_in_advance", "invoiceable", "prorated",
            "regroup_paid_fees", "min_amount_cents", "invoice_display_name", "tax_codes",
        )
    }  # fmt: skip


def _resolve_tax_codes(organization: Organization, data: Input) -> None:
    """`tax_codes` given: the taxes they name replace the plan's or charge's (`taxes`);
    NotFound (`tax_not_found`, as Lago) for a code the organization does not have."""
    if "tax_codes" in data.values:
        data.values["taxes"] = taxes_by_codes(organization, data.values.pop("tax_codes"))


def _parse_metadata(value: Any) -> dict[str, str | None] | None:
    """A {key: value} map within Ledgerline's metadata limits; None if it breaks them."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > METADATA_MAX_ITEMS:
        return None
    result: dict[str, str | None] = {}
    for key, item in value.items():
        if not key.strip() or len(key) > METADATA_KEY_MAX:
            return None
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            item = str(item)
        if item is not None and (not isinstance(item, str) or len(item) > METADATA_VALUE_MAX):
            return None
        result[key] = item
    return result


def parse_plan_input(
    organization: Organization, payload: dict[str, Any], plan: Plan | None = None
) -> PlanInput:
    """Validate a plan payload; for an update (`plan` given) absent keys keep their value."""
    result = PlanInput()
    data = Input(payload, result.errors)
    data.text("name")
    data.text("code", code=True)
    data.text("invoice_display_name")
    data.text("description", 10_000)
    data.choice("interval", INTERVALS)
    data.integer("amount_cents")
    if "amount_currency" in payload:
        currency = payload["amount_currency"]
        if currency in (None, ""):
            data.error("amount_currency", "value_is_mandatory")
        elif isinstance(currency, str) and currency.strip().upper() in currency_codes():
            data.values["amount_currency"] = currency.strip().upper()
        else:
            data.error("amount_currency", "value_is_invalid")
    data.boolean("pay_in_advance")
    data.integer("trial_period", maximum=36_500)
    data.boolean("bill_charges_monthly", nullable=True)
    data.string_list("tax_codes")
    _resolve_tax_codes(organization, data)
    if "metadata" in payload:
        metadata = _parse_metadata(payload["metadata"])
        if metadata is None:
            data.error("metadata", "value_is_invalid")
        else:
            data.values["plan_metadata"] = metadata or None
    current = (
        {k: getattr(plan, k) for k in ("name", "code", "interval", "amount_cents")} if plan else {}
    )
    if plan:
        current["amount_currency"] = plan.amount_currency
    data.require("name", "code", "interval", "amount_cents", "amount_currency", current=current)
    result.columns = data.values
    if "charges" in payload:
        result.charges = _parse_plan_charges(organization, payload["charges"], plan, result)
    return result


def _parse_plan_charges(
    organization: Organization, items: Any, plan: Plan | None, result: PlanInput
) -> list[ChargeInput]:
    """Charges by `id` update the plan's charge with that lago_id; the others are new."""
    if items is None:
        return []
    if not isinstance(items, list):
        result.errors["charges"] = ["value_is_invalid"]
        return []
    existing = {str(c.lago_id): c for c in plan.charges} if plan else {}
    parsed: list[ChargeInput] = []
    for index, item in enumerate(items):
        charge_id = item.get("id") if isinstance(item, dict) else None
        charge = existing.pop(str(charge_id), None) if charge_id else None
        charge_input = parse_charge(
            organization, item, result.errors, prefix=f"charges[{index}].", existing=charge
        )
        if charge_input is not None:
            parsed.append(charge_input)
    return parsed


# --- writes ------------------------------------------------------------------------------


def _audited(plan: Plan) -> dict[str, Any]:
    return {k: v for k, v in serialize_plan(plan).items() if k not in _NOT_AUDITED}


def _record(
    organization: Organization,
    plan: Plan,
    actor: audit.Actor,
    event: str,
    before: dict[str, Any] | None,
) -> None:
    """Audit + outbox for a plan write; an update that changed nothing records nothing."""
    db.session.flush()
    db.session.expire(plan, ["charges"])
    changes = audit.diff(before or {}, _audited(plan)) if event != "plan.deleted" else {}
    if event == "plan.updated" and not changes:
        return
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type=event,
        resource_type="plan",
        resource_id=str(plan.lago_id),
        resource_label=plan.name,
        changes=changes,
    )
    outbox.emit(
        organization.id, event, "plan", serialize_plan(plan, plan_counts([plan]).get(plan.id))
    )


def _charge_code(metric: BillableMetric, taken: set[str]) -> str:
    """Lago derives a missing charge code from the metric's; made unique in the plan."""
    code, n = metric.code, 1
    while code in taken:
        n += 1
        code = f"{metric.code}_{n}"
    return code


def _assign_charge_codes(
    charges: list[ChargeInput], kept: list[Charge], *, in_plan: bool = True
) -> None:
    """Refuse a code used twice in the plan; give each new charge without a code one."""
    taken = {c.code for c in kept}
    errors: dict[str, list[str]] = {}
    for index, c in enumerate(charges):
        code = c.columns.get("code") or (c.existing.code if c.existing else None)
        if code is None:
            continue
        c.columns["code"] = code
        if code in taken:
            errors[f"charges[{index}].code" if in_plan else "code"] = ["value_already_exist"]
        taken.add(code)
    for c in charges:
        if c.columns.get("code") is None:
            c.columns["code"] = _charge_code(c.metric, taken)
            taken.add(c.columns["code"])
    if errors:
        raise ValidationFailed(errors)


def _apply_charges(plan: Plan, charges: list[ChargeInput], remove: list[Charge]) -> None:
    now = now_utc()
    for removed in remove:
        _delete_charge_rows(removed, now)
    db.session.flush()
    for charge_input in charges:
        charge = charge_input.existing
        if charge is None:
            charge = Charge(
                plan_id=plan.id,
                billable_metric_id=charge_input.metric.id,
                billable_metric=charge_input.metric,
                properties={},
            )
            db.session.add(charge)
        for name, value in charge_input.columns.items():
            setattr(charge, name, value)
        if charge_input.filters is not None:
            db.session.flush()
            _sync_filters(charge, charge_input.filters)
    db.session.flush()


def _sync_filters(charge: Charge, filters: list[dict[str, Any]]) -> None:
    """Filters with the same values are updated, new ones created, the others removed."""
    existing = list(charge.filters) if charge.id is not None else []
    now = now_utc()
    for item in filters:
        row = next((f for f in existing if f.values == item["values"]), None)
        if row is None:
            row = ChargeFilter(charge_id=charge.id)
            db.session.add(row)
        else:
            existing.remove(row)
        for name, value in item.items():
            setattr(row, name, value)
    for row in existing:
        row.deleted_at = now
    db.session.flush()
    db.session.expire(charge, ["filters"])


def _delete_charge_rows(charge: Charge, now: Any) -> None:
    charge.deleted_at = now
    for charge_filter in charge.filters:
        charge_filter.deleted_at = now


def create_plan(organization: Organization, data: dict[str, Any], actor: audit.Actor) -> Plan:
    """Create a plan with its charges; ValidationFailed or NotFound (nothing written) otherwise."""
    parsed = parse_plan_input(organization, data)
    if parsed.errors:
        raise ValidationFailed(parsed.errors)
    charges = parsed.charges or []
    _assign_charge_codes(charges, [])
    lock_organization(organization)
    if find_plan(organization, parsed.columns["code"]) is not None:
        raise ValidationFailed({"code": ["value_already_exist"]})
    plan = Plan(organization_id=organization.id, **parsed.columns)
    db.session.add(plan)
    db.session.flush()
    _apply_charges(plan, charges, [])
    _record(organization, plan, actor, "plan.created", None)
    return plan


def update_plan(
    organization: Organization, plan: Plan, data: dict[str, Any], actor: audit.Actor
) -> Plan:
    """Change the keys present in `data`. With `charges`, Lago's semantics: an item whose `id`
    is one of the plan's charges updates it, other items are new charges, and the plan's
    charges left out are removed. Code, interval, currency and pay_in_advance are refused
    (`value_is_immutable`) while active or pending subscriptions use the plan."""
    parsed = parse_plan_input(organization, data, plan)
    if parsed.errors:
        raise ValidationFailed(parsed.errors)
    changed = [
        k
        for k in IMMUTABLE_WHEN_SUBSCRIBED
        if k in parsed.columns and parsed.columns[k] != getattr(plan, k)
    ]
    if changed and plan_has_live_subscriptions(plan):
        raise ValidationFailed({k: ["value_is_immutable"] for k in changed})
    lock_organization(organization)
    new_code = parsed.columns.get("code", plan.code)
    if new_code != plan.code and find_plan(organization, new_code) is not None:
        raise ValidationFailed({"code": ["value_already_exist"]})
    before = _audited(plan)
    if parsed.charges is not None:
        listed = {c.existing.id for c in parsed.charges if c.existing is not None}
        _assign_charge_codes(parsed.charges, [])
        _apply_charges(plan, parsed.charges, [c for c in plan.charges if c.id not in listed])
    for name, value in parsed.columns.items():
        setattr(plan, name, value)
    _record(organization, plan, actor, "plan.updated", before)
    return plan


def delete_plan(organization: Organization, plan: Plan, actor: audit.Actor) -> Plan:
    """Soft-delete a plan nobody is subscribed to.

    Lago marks the plan pending_deletion and terminates its subscriptions in the background.
    Terminating means billing each subscription's last period, so Ledgerline refuses instead
    (405 `plan_has_active_subscriptions`) while an active or pending subscription uses it:
    terminate those first, then delete. The charges stay attached for past invoices.
    """
    if plan_has_live_subscriptions(plan):
        raise NotAllowed("plan_has_active_subscriptions")
    plan.deleted_at = now_utc()
    _record(organization, plan, actor, "plan.deleted", None)
    return plan


# --- charges and filters through the nested routes ---------------------------------------


def create_charge(
    organization: Organization, plan: Plan, data: dict[str, Any], actor: audit.Actor
) -> Charge:
    """Add one charge to the plan."""
    errors: dict[str, list[str]] = {}
    charge_input = parse_charge(organization, data, errors)
    if errors or charge_input is None:
        raise ValidationFailed(errors)
    _assign_charge_codes([charge_input], list(plan.charges), in_plan=False)
    before = _audited(plan)
    _apply_charges(plan, [charge_input], [])
    _record(organization, plan, actor, "plan.updated", before)
    return get_charge(plan, charge_input.columns["code"])


def update_charge(
    organization: Organization, plan: Plan, charge: Charge, data: dict[str, Any], actor: audit.Actor
) -> Charge:
    """Change the keys present in `data` on one of the plan's charges."""
    errors: dict[str, list[str]] = {}
    charge_input = parse_charge(organization, data, errors, existing=charge)
    if errors or charge_input is None:
        raise ValidationFailed(errors)
    others = [c for c in plan.charges if c.id != charge.id]
    _assign_charge_codes([charge_input], others, in_plan=False)
    before = _audited(plan)
    _apply_charges(plan, [charge_input], [])
    _record(organization, plan, actor, "plan.updated", before)
    return get_charge(plan, charge.code)


def delete_charge(
    organization: Organization, plan: Plan, charge: Charge, actor: audit.Actor
) -> Charge:
    """Remove one charge (and its filters) from the plan."""
    before = _audited(plan)
    _apply_charges(plan, [], [charge])
    _record(organization, plan, actor, "plan.updated", before)
    return charge


def create_charge_filter(
    organization: Organization, plan: Plan, charge: Charge, data: dict[str, Any], actor: audit.Actor
) -> ChargeFilter:
    """Add one filter to a charge; its values must not repeat another filter's."""
    kept = [{"values": f.values, "properties": f.properties} for f in charge.filters]
    return _write_filters(organization, plan, charge, [*kept, data], actor, len(kept))


def update_charge_filter(
    organization: Organization,
    plan: Plan,
    charge: Charge,
    charge_filter: ChargeFilter,
    data: dict[str, Any],
    actor: audit.Actor,
) -> ChargeFilter:
    """Change one filter's display name, properties or values."""
    items: list[dict[str, Any]] = []
    position = 0
    for index, f in enumerate(charge.filters):
        item = {
            "invoice_display_name": f.invoice_display_name,
            "values": f.values,
            "properties": f.properties,
        }
        if f.id == charge_filter.id:
            item.update({k: v for k, v in data.items() if k in item})
            position = index
        items.append(item)
    return _write_filters(organization, plan, charge, items, actor, position)


def delete_charge_filter(
    organization: Organization,
    plan: Plan,
    charge: Charge,
    charge_filter: ChargeFilter,
    actor: audit.Actor,
) -> ChargeFilter:
    before = _audited(plan)
    charge_filter.deleted_at = now_utc()
    db.session.flush()
    db.session.expire(charge, ["filters"])
    _record(organization, plan, actor, "plan.updated", before)
    return charge_filter


def _write_filters(
    organization: Organization,
    plan: Plan,
    charge: Charge,
    items: list[dict[str, Any]],
    actor: audit.Actor,
    position: int,
) -> ChargeFilter:
    errors: dict[str, list[str]] = {}
    data = Input({}, errors)
    filters = _parse_filters(items, charge.billable_metric, charge.charge_model, data)
    if errors or filters is None:
        raise ValidationFailed(
            {key.replace(f"filters[{position}].", "", 1): codes for key, codes in errors.items()}
        )
    before = _audited(plan)
    _sync_filters(charge, filters)
    _record(organization, plan, actor, "plan.updated", before)
    wanted = filters[position]["values"]
    return next(f for f in charge.filters if f.values == wanted)


# --- metadata ----------------------------------------------------------------------------


def _write_metadata(
    organization: Organization, plan: Plan, metadata: dict[str, Any] | None, actor: audit.Actor
) -> dict[str, Any] | None:
    before = _audited(plan)
    plan.plan_metadata = metadata or None
    _record(organization, plan, actor, "plan.updated", before)
    return plan.plan_metadata


def _checked_metadata(value: Any) -> dict[str, Any]:
    metadata = _parse_metadata(value)
    if metadata is None:
        raise ValidationFailed({"metadata": ["value_is_invalid"]})
    return metadata


def replace_plan_metadata(
    organization: Organization, plan: Plan, metadata: Any, actor: audit.Actor
) -> dict[str, Any] | None:
    """Replace the plan's metadata map."""
    return _write_metadata(organization, plan, _checked_metadata(metadata), actor)


def merge_plan_metadata(
    organization: Organization, plan: Plan, metadata: Any, actor: audit.Actor
) -> dict[str, Any] | None:
    """Add or overwrite the given keys, keeping the others."""
    merged = {**(plan.plan_metadata or {}), **_checked_metadata(metadata)}
    return _write_metadata(organization, plan, _checked_metadata(merged), actor)


def delete_plan_metadata(
    organization: Organization, plan: Plan, actor: audit.Actor, key: str | None = None
) -> dict[str, Any] | None:
    """Remove one key (or, without `key`, the whole map)."""
    remaining = {
        k: v for k, v in (plan.plan_metadata or {}).items() if key is not None and k != key
    }
    return _write_metadata(organization, plan, remaining, actor)
