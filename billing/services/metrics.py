"""Billable metrics: create, update, soft delete, lookup and listing (lago-api.md §6).

Input is Lago's `billable_metric` payload as a plain dict (the API and the console build the
same dicts). Shapes are checked here; the aggregation rules themselves (which fields each
aggregation type needs, rounding, recurring) live in `billing.aggregation.validate_metric`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, exists, func, or_, select, update

from billing.aggregation import validate_metric
from billing.errors import NotFound, ValidationFailed
from billing.models import BillableMetric, Charge, ChargeFilter, Organization, Plan, Subscription
from billing.models.subscriptions import SubscriptionStatus
from billing.serializers_plans import serialize_billable_metric
from billing.services import audit, outbox
from billing.services.organizations import lock_organization
from billing.services.pagination import Page
from billing.timeutil import now_utc
from extensions import db

# Codes travel unencoded in URL paths (the official SDK does not escape them).
_UNSAFE_CODE = re.compile(r"[/?#%\\\x00-\x1f\x7f]")
#: what Lago lets nobody change once subscriptions bill the metric
IMMUTABLE_WHEN_USED = ("code", "aggregation_type", "field_name", "recurring", "weighted_interval")
#: subscriptions that still bill (or will bill) their plan
LIVE_SUBSCRIPTION_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING)
_METRIC_FIELDS = (
    "name", "code", "description", "aggregation_type", "field_name", "recurring",
    "weighted_interval", "rounding_function", "rounding_precision", "expression", "filters",
)  # fmt: skip
_NOT_AUDITED = {"lago_id", "created_at"}


class Input:
    """Reads one payload object: typed values of the keys present, errors with Lago codes.

    `errors` may be shared by several inputs (a plan and its charges); `prefix` names where
    this object sits in the request (`charges[0].`), so a client sees which item failed.
    """

    def __init__(
        self, payload: dict[str, Any], errors: dict[str, list[str]], prefix: str = ""
    ) -> None:
        self.payload = payload
        self.errors = errors
        self.prefix = prefix
        self.values: dict[str, Any] = {}

    def error(self, key: str, code: str) -> None:
        codes = self.errors.setdefault(self.prefix + key, [])
        if code not in codes:
            codes.append(code)

    def text(self, key: str, max_length: int = 255, *, code: bool = False) -> None:
        """A string (numbers are taken as text); blank and null become None."""
        if key not in self.payload:
            return
        value = self.payload[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if value is not None and not isinstance(value, str):
            self.error(key, "value_is_invalid")
            return
        value = value.strip() if value is not None and value.strip() else None
        if value is not None and len(value) > max_length:
            self.error(key, "value_is_too_long")
        elif value is not None and code and _UNSAFE_CODE.search(value):
            self.error(key, "value_is_invalid")
        else:
            self.values[key] = value

    def boolean(self, key: str, *, nullable: bool = False) -> None:
        if key not in self.payload:
            return
        value = self.payload[key]
        if value in ("true", "1"):
            value = True
        elif value in ("false", "0"):
            value = False
        if isinstance(value, bool) or (value is None and nullable):
            self.values[key] = value
        else:
            self.error(key, "value_is_invalid")

    def integer(
        self, key: str, *, nullable: bool = False, minimum: int = 0, maximum: int = 2**62
    ) -> None:
        """A whole number in range (an integral float or numeric string is accepted)."""
        if key not in self.payload:
            return
        value = self.payload[key]
        if value is None and nullable:
            self.values[key] = None
            return
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, "value_is_invalid")
        elif not minimum <= value <= maximum:
            self.error(key, "value_is_out_of_range")
        else:
            self.values[key] = value

    def choice(self, key: str, choices: Iterable[str], *, nullable: bool = False) -> None:
        if key not in self.payload:
            return
        value = self.payload[key]
        if value in (None, "") and nullable:
            self.values[key] = None
        elif value in (None, ""):
            self.error(key, "value_is_mandatory")
        elif isinstance(value, str) and value in choices:
            self.values[key] = value
        else:
            self.error(key, "value_is_invalid")

    def string_list(self, key: str) -> None:
        """A list of strings; null is the empty list."""
        if key not in self.payload:
            return
        value = self.payload[key]
        if value is None:
            self.values[key] = []
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            self.values[key] = list(value)
        else:
            self.error(key, "value_is_invalid")

    def require(self, *keys: str, current: dict[str, Any] | None = None) -> None:
        """Each key must end up with a value (given now, or already stored in `current`)."""
        for key in keys:
            value = self.values[key] if key in self.values else (current or {}).get(key)
            if value is None and self.prefix + key not in self.errors:
                self.error(key, "value_is_mandatory")


def page_of(query: Select[Any], page: int, per_page: int) -> Page[Any]:
    """One page of `query` (already ordered) with the total count of its rows."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    offset = (page - 1) * per_page
    if offset >= (total or 0):
        return Page([], total or 0, page, per_page)
    return Page(
        list(db.session.scalars(query.offset(offset).limit(per_page))), total or 0, page, per_page
    )


def name_or_code_matches(
    query: Select[Any], search: str | None, name: Any, code: Any
) -> Select[Any]:
    """`query` narrowed to rows whose name or code contains `search` (any case)."""
    if not search or not search.strip():
        return query
    pattern = f"%{search.strip().lower()}%"
    return query.where(or_(func.lower(name).like(pattern), func.lower(code).like(pattern)))


# --- lookup ------------------------------------------------------------------------------


def find_billable_metric(organization: Organization, code: str) -> BillableMetric | None:
    return db.session.scalar(
        select(BillableMetric).where(
            BillableMetric.organization_id == organization.id,
            BillableMetric.code == code,
            BillableMetric.deleted_at.is_(None),
        )
    )


def get_billable_metric(organization: Organization, code: str) -> BillableMetric:
    """The organization's live metric with this code; NotFound otherwise."""
    metric = find_billable_metric(organization, code)
    if metric is None:
        raise NotFound("billable_metric")
    return metric


def list_billable_metrics(
    organization: Organization, page: int = 1, per_page: int = 100, search: str | None = None
) -> Page[BillableMetric]:
    """The organization's live metrics, newest first; `search` matches name or code."""
    query = select(BillableMetric).where(
        BillableMetric.organization_id == organization.id, BillableMetric.deleted_at.is_(None)
    )
    query = name_or_code_matches(query, search, BillableMetric.name, BillableMetric.code)
    return page_of(
        query.order_by(BillableMetric.created_at.desc(), BillableMetric.id.asc()), page, per_page
    )


def metric_in_use(metric: BillableMetric) -> bool:
    """Whether a live or pending subscription is billed through a charge on this metric."""
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    Charge.billable_metric_id == metric.id,
                    Charge.deleted_at.is_(None),
                    Subscription.plan_id == Charge.plan_id,
                    Subscription.status.in_(LIVE_SUBSCRIPTION_STATUSES),
                )
            )
        )
    )


# --- writes ------------------------------------------------------------------------------


def parse_metric_input(
    payload: dict[str, Any], current: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The columns a metric payload sets, and its errors. `current` holds the stored values
    of an update: absent keys keep them, and the merged metric is what gets validated."""
    errors: dict[str, list[str]] = {}
    data = Input(payload, errors)
    data.text("name")
    data.text("code", code=True)
    data.text("description", 10_000)
    data.text("aggregation_type", 32)
    data.text("field_name")
    data.boolean("recurring")
    data.text("weighted_interval", 16)
    data.text("rounding_function", 8)
    data.integer("rounding_precision", nullable=True, minimum=-15, maximum=15)
    data.text("expression", 10_000)
    if "filters" in payload:
        data.values["filters"] = payload["filters"] or []
    data.require("aggregation_type", current=current)
    merged = {**(current or {}), **data.values}
    checked = set(errors)
    for key, codes in validate_metric(merged).items():
        for code in codes:
            if key not in checked:
                data.error(key, code)
    if errors:
        return {}, errors
    columns = data.values
    if "filters" in columns:
        columns["filters"] = [
            {"key": item["key"].strip(), "values": list(item["values"])}
            for item in columns["filters"]
        ]
    if merged.get("aggregation_type") == "count_agg":
        columns["field_name"] = None
    if merged.get("aggregation_type") == "weighted_sum_agg" and not merged.get("weighted_interval"):
        columns["weighted_interval"] = "seconds"
    return columns, errors


def _stored(metric: BillableMetric) -> dict[str, Any]:
    return {name: getattr(metric, name) for name in _METRIC_FIELDS}


def _audited(metric: BillableMetric) -> dict[str, Any]:
    serialized = serialize_billable_metric(metric)
    return {k: v for k, v in serialized.items() if k not in _NOT_AUDITED}


def _record(
    organization: Organization,
    metric: BillableMetric,
    actor: audit.Actor,
    event: str,
    changes: dict[str, Any] | None = None,
) -> None:
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type=event,
        resource_type="billable_metric",
        resource_id=str(metric.lago_id),
        resource_label=metric.name,
        changes=changes,
    )
    outbox.emit(organization.id, event, "billable_metric", serialize_billable_metric(metric))


def create_billable_metric(
    organization: Organization, data: dict[str, Any], actor: audit.Actor
) -> BillableMetric:
    """Create a metric from Lago's payload; ValidationFailed (nothing written) otherwise."""
    columns, errors = parse_metric_input(data)
    if errors:
        raise ValidationFailed(errors)
    lock_organization(organization)
    if find_billable_metric(organization, columns["code"]) is not None:
        raise ValidationFailed({"code": ["value_already_exist"]})
    metric = BillableMetric(organization_id=organization.id, **{"filters": [], **columns})
    db.session.add(metric)
    db.session.flush()
    _record(
        organization, metric, actor, "billable_metric.created", audit.diff({}, _audited(metric))
    )
    return metric


def update_billable_metric(
    organization: Organization, metric: BillableMetric, data: dict[str, Any], actor: audit.Actor
) -> BillableMetric:
    """Change the keys present in `data`.

    Lago silently keeps code, aggregation type and field name once subscriptions use the
    metric; here changing them is refused instead (`value_is_immutable`), so a client never
    believes a change happened that did not.
    """
    columns, errors = parse_metric_input(data, current=_stored(metric))
    if errors:
        raise ValidationFailed(errors)
    changed = [k for k in IMMUTABLE_WHEN_USED if k in columns and columns[k] != getattr(metric, k)]
    if changed and metric_in_use(metric):
        raise ValidationFailed({k: ["value_is_immutable"] for k in changed})
    lock_organization(organization)
    new_code = columns.get("code", metric.code)
    if new_code != metric.code and find_billable_metric(organization, new_code) is not None:
        raise ValidationFailed({"code": ["value_already_exist"]})
    before = _audited(metric)
    for name, value in columns.items():
        setattr(metric, name, value)
    db.session.flush()
    changes = audit.diff(before, _audited(metric))
    if changes:
        _record(organization, metric, actor, "billable_metric.updated", changes)
    return metric


def delete_billable_metric(
    organization: Organization, metric: BillableMetric, actor: audit.Actor
) -> BillableMetric:
    """Soft-delete the metric and, as Lago does, the charges that price it (and their filters):
    plans keep their other charges, and the code is free to reuse."""
    now = now_utc()
    metric.deleted_at = now
    charge_ids = select(Charge.id).where(
        Charge.billable_metric_id == metric.id, Charge.deleted_at.is_(None)
    )
    plan_ids = list(db.session.scalars(select(Charge.plan_id).where(Charge.id.in_(charge_ids))))
    db.session.execute(
        update(ChargeFilter)
        .where(ChargeFilter.charge_id.in_(charge_ids), ChargeFilter.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Charge)
        .where(Charge.billable_metric_id == metric.id, Charge.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    for plan in db.session.scalars(select(Plan).where(Plan.id.in_(plan_ids))):
        db.session.expire(plan, ["charges"])
    _record(organization, metric, actor, "billable_metric.deleted")
    return metric
