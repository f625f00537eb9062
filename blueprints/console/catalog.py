"""The catalog in the console: billable metrics and plans with their charges (list, create, edit,
delete). Forms build the same Lago-shaped payloads the API receives; the services validate."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from flask import flash, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import distinct, func, select
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from billing.aggregation import (
    AGGREGATION_TYPES,
    ALL_FILTER_VALUES,
    RECURRING_AGGREGATION_TYPES,
    ROUNDING_FUNCTIONS,
)
from billing.errors import InvariantBroken, NotAllowed, NotFound, ValidationFailed
from billing.models import BillableMetric, Charge, Plan, PlanInterval, Subscription
from billing.money import currency_exponent, from_minor_units, parse_decimal, to_minor_units
from billing.pricing import CHARGE_MODELS
from billing.serializers_plans import PlanCounts
from billing.services import metrics as metric_service
from billing.services import plans as plan_service
from billing.services.metrics import LIVE_SUBSCRIPTION_STATUSES
from blueprints.console import bp
from blueprints.console.forms import Select, TaxCodes, currency_choices, tax_choices
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_organization,
    int_arg,
    owned_or_404,
    redirect_htmx,
    render_htmx,
    requires,
)
from blueprints.console.messages import field_message
from extensions import db

PER_PAGE = 50
#: metrics offered in a charge's select (an organization has tens, not thousands)
METRIC_CHOICES_LIMIT = 500

AGGREGATION_LABELS = {
    "count_agg": "Count",
    "sum_agg": "Sum",
    "max_agg": "Max",
    "unique_count_agg": "Unique count",
    "latest_agg": "Latest",
    "weighted_sum_agg": "Weighted sum",
}
ROUNDING_LABELS = {"round": "Round", "ceil": "Round up (ceil)", "floor": "Round down (floor)"}
INTERVAL_LABELS = {
    PlanInterval.WEEKLY: "Weekly",
    PlanInterval.MONTHLY: "Monthly",
    PlanInterval.QUARTERLY: "Quarterly",
    PlanInterval.SEMIANNUAL: "Semiannual",
    PlanInterval.YEARLY: "Yearly",
}
CHARGE_MODEL_LABELS = {
    "standard": "Standard",
    "graduated": "Graduated",
    "volume": "Volume",
    "package": "Package",
    "percentage": "Percentage",
}
if not (set(CHARGE_MODEL_LABELS) == set(CHARGE_MODELS)):
    raise InvariantBroken("expected set(CHARGE_MODEL_LABELS) == set(CHARGE_MODELS)")
if not (set(AGGREGATION_LABELS) == set(AGGREGATION_TYPES)):
    raise InvariantBroken("expected set(AGGREGATION_LABELS) == set(AGGREGATION_TYPES)")

#: each charge model's fields besides the tiers: (property, label, kind) — kind "amount" is a
#: decimal string, "int" a whole number; blanks are left out (the service fills its defaults)
MODEL_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "standard": (("amount", "Price per unit", "amount"),),
    "package": (
        ("amount", "Price per package", "amount"),
        ("package_size", "Package size (units)", "int"),
        ("free_units", "Free units", "int"),
    ),
    "percentage": (
        ("rate", "Rate (%)", "amount"),
        ("fixed_amount", "Fixed fee per transaction", "amount"),
        ("free_units_per_events", "Free events", "int"),
        ("free_units_per_total_aggregation", "Free amount", "amount"),
        ("per_transaction_min_amount", "Minimum per transaction", "amount"),
        ("per_transaction_max_amount", "Maximum per transaction", "amount"),
    ),
    "graduated": (),
    "volume": (),
}
CHARGE_FIELD_HINTS = {
    "free_units": "Units not billed each period.",
    "fixed_amount": "Added to each paid event.",
    "free_units_per_events": "First events of the period not billed. Blank: none.",
    "free_units_per_total_aggregation": "First amount of the period not billed. Blank: none.",
    "per_transaction_min_amount": "Blank: no minimum.",
    "per_transaction_max_amount": "Blank: no maximum.",
}
TIER_FIELDS = ("from_value", "to_value", "per_unit_amount", "flat_amount")
TIERED_MODELS = ("graduated", "volume")
#: a charge's own fields, shown in every row whatever its model
ROW_FIELDS = ("billable_metric_id", "charge_model", "invoice_display_name", "pay_in_advance")

MESSAGES = {
    ("code", "value_already_exist"): "Another one already uses this code.",
    ("field_name", "value_is_mandatory"): "Every aggregation except Count needs a field name.",
    ("recurring", "not_compatible_with_aggregation_type"): (
        "Only Sum, Unique count and Weighted sum metrics can be recurring."
    ),
    ("aggregation_type", "value_is_invalid"): "Choose an aggregation from the list.",
    ("rounding_function", "value_is_invalid"): "Choose a rounding from the list.",
    ("rounding_precision", "value_is_invalid"): "Enter a whole number of decimals.",
    ("rounding_precision", "value_is_out_of_range"): "Enter a number of decimals from 0 to 15.",
    ("trial_period", "value_is_out_of_range"): "Enter a number of days of 0 or more.",
    ("filters", "value_is_invalid"): "Each filter needs a key and at least one value.",
    ("filters", "value_is_mandatory"): "Each filter needs a key and at least one value.",
    ("filters", "value_already_exist"): "Each filter key can appear only once.",
    ("values", "value_is_invalid"): (
        "Choose at least one value, among the metric's own, for one of the keys."
    ),
    ("values", "value_already_exist"): "Another filter of this charge matches the same values.",
    ("interval", "value_is_invalid"): "Choose an interval from the list.",
    ("interval", "value_is_immutable"): "The interval is locked while subscriptions use the plan.",
    ("amount_currency", "value_is_immutable"): (
        "The currency is locked while subscriptions use the plan."
    ),
    ("pay_in_advance", "value_is_immutable"): (
        "When the base amount is billed is locked while subscriptions use the plan."
    ),
    ("pay_in_advance", "not_supported"): (
        "Charges cannot be billed in advance yet: their usage would never be billed. Bill them "
        "at the end of the period."
    ),
    ("charge_model", "invalid_aggregation_type_or_charge_model"): (
        "Volume charges cannot be billed in advance."
    ),
    ("billable_metric_id", "value_is_immutable"): (
        "A charge's metric cannot change: remove the charge and add a new one."
    ),
    ("amount_currency", "value_is_invalid"): "Choose a currency from the list.",
    ("amount_currency", "value_is_mandatory"): "Choose a currency.",
    ("amount", "value_is_invalid"): "Enter an amount such as 19.99.",
    ("trial_period", "value_is_invalid"): "Enter a whole number of days.",
    ("billable_metric_id", "value_is_mandatory"): "Choose a metric.",
    ("billable_metric_id", "value_is_invalid"): "Choose a metric from the list.",
    ("billable_metric_id", "billable_metric_not_found"): "Choose a metric from the list.",
    ("charge_model", "value_is_invalid"): "Choose a charge model from the list.",
    ("package_size", "invalid_package_size"): "Enter a whole number of units above 0.",
    ("free_units", "invalid_free_units"): "Enter a whole number of units (0 or more).",
    ("free_units_per_events", "invalid_free_units_per_events"): (
        "Enter a whole number of events above 0, or leave it blank."
    ),
    ("per_transaction_max_amount", "per_transaction_max_lower_than_per_transaction_min"): (
        "The maximum must not be lower than the minimum."
    ),
    **{
        (f"{model}_ranges", f"{problem}_{model}_ranges"): message
        for model in TIERED_MODELS
        for problem, message in (
            (
                "invalid",
                "Tiers start at 0, each one starts right after the previous one ends "
                "(to + 1), and only the last one is open-ended.",
            ),
            ("missing", "Add at least one tier."),
        )
    },  # fmt: skip
}
CODE_MESSAGES = {
    "value_is_immutable": "This is locked while subscriptions use it.",
    "plan_has_active_subscriptions": (
        "This plan has active or pending subscriptions: terminate them before deleting it."
    ),
    "invalid_amount": "Enter an amount of 0 or more, such as 0.05.",
    "invalid_rate": "Enter a percentage of 0 or more, such as 2.5.",
    "invalid_fixed_amount": "Enter an amount of 0 or more, such as 0.30.",
    "invalid_free_units_per_total_aggregation": "Enter an amount of 0 or more, or leave it blank.",
    "not_a_whole_number": "Enter a whole number.",
}


def catalog_message(field_name: str, code: str) -> str:
    return (
        MESSAGES.get((field_name, code))
        or CODE_MESSAGES.get(code)
        or field_message(field_name, code)
    )


@bp.context_processor
def catalog_labels() -> dict[str, Any]:
    return {
        "aggregation_labels": AGGREGATION_LABELS,
        "charge_model_labels": CHARGE_MODEL_LABELS,
        "interval_labels": INTERVAL_LABELS,
        "charge_field_hints": CHARGE_FIELD_HINTS,
    }


@dataclass
class SearchQuery:
    """A catalog list's search and page, read from and written back to the URL."""

    endpoint: str
    q: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, endpoint: str, args: MultiDict[str, str]) -> SearchQuery:
        return cls(
            endpoint,
            q=args.get("q", "").strip()[:200],
            page=max(1, int_arg(args.get("page"), 1)),
        )

    def url(self, **changes: Any) -> str:
        q, page = changes.get("q", self.q), changes.get("page", self.page)
        pairs = ([("q", q)] if q else []) + ([("page", str(page))] if page != 1 else [])
        return url_for(self.endpoint) + ("?" + urlencode(pairs) if pairs else "")

    @property
    def is_filtered(self) -> bool:
        return bool(self.q)


class ConfirmDeleteForm(FlaskForm):
    confirm = BooleanField("I understand that this cannot be undone", validators=[DataRequired()])


def confirm_delete(
    record: Any,
    kind: str,
    back: str,
    consequences: list[str],
    delete: Callable[[], None],
    done: str | None = None,
) -> ResponseReturnValue:
    """The no-JS confirmation page (GET, or a POST without the box ticked); htmx's hx-confirm
    posts `confirm=y` directly. Deleting goes to `done` (by default the record's list)."""
    form = ConfirmDeleteForm()
    if request.method == "POST" and form.validate():
        try:
            delete()
        except (ValidationFailed, NotAllowed) as exc:
            db.session.rollback()
            details = exc.details if isinstance(exc, ValidationFailed) else {"base": [exc.code]}
            for path, code in _error_paths(details):
                flash(catalog_message(".".join(path), code), "error")
            return redirect_htmx(back)
        db.session.commit()
        flash(f"{kind} “{record.name}” deleted.", "success")
        return redirect_htmx(
            done
            or url_for("console.metrics" if isinstance(record, BillableMetric) else "console.plans")
        )
    status = 422 if request.method == "POST" else 200
    return render_template(
        "console/catalog_delete.html",
        record=record,
        kind=kind,
        form=form,
        back=back,
        consequences=consequences,
    ), status


# --- billable metrics ------------------------------------------------------------------------


class MetricForm(FlaskForm):
    """A billable metric; filters come as rows filters-N-key / filters-N-values."""

    name = StringField("Name", validators=[Length(max=255)])
    code = StringField("Code", validators=[Length(max=255)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    aggregation_type = Select("Aggregation", list(AGGREGATION_LABELS.items()))
    field_name = StringField("Field name", validators=[Length(max=255)])
    recurring = BooleanField("Recurring: units carry over to the next period")
    rounding_function = Select(
        "Rounding", [("", "No rounding"), *((f, ROUNDING_LABELS[f]) for f in ROUNDING_FUNCTIONS)]
    )
    rounding_precision = IntegerField(
        "Rounding precision (decimals)", validators=[Optional(), NumberRange(0, 15)]
    )


def metric_or_404(lago_id: uuid.UUID) -> BillableMetric:
    return owned_or_404(BillableMetric, lago_id, live=True)


def _indexed_rows(form: MultiDict[str, str], prefix: str) -> list[int]:
    """The N of the `prefix-N-…` names in a form, in order."""
    pattern = re.compile(rf"^{prefix}-(\d+)-")
    return sorted({int(m.group(1)) for name in form if (m := pattern.match(name))})


def _metric_filter_rows(form: MultiDict[str, str]) -> list[dict[str, str]]:
    """Filter rows `filters-N-key` / `filters-N-values` (comma-separated); blank rows skipped."""
    rows = []
    for i in _indexed_rows(form, "filters"):
        key = form.get(f"filters-{i}-key", "").strip()
        values = form.get(f"filters-{i}-values", "").strip()
        if key or values:
            rows.append({"key": key, "values": values})
    return rows


def _metric_payload(form: MetricForm, filter_rows: list[dict[str, str]]) -> dict[str, Any]:
    data = form.data
    aggregation = data["aggregation_type"]
    return {
        "name": (data["name"] or "").strip(),
        "code": (data["code"] or "").strip(),
        "description": (data["description"] or "").strip() or None,
        "aggregation_type": aggregation,
        "field_name": (data["field_name"] or "").strip() or None,
        "recurring": bool(data["recurring"]) and aggregation in RECURRING_AGGREGATION_TYPES,
        "weighted_interval": "seconds" if aggregation == "weighted_sum_agg" else None,
        "rounding_function": data["rounding_function"] or None,
        "rounding_precision": data["rounding_precision"] if data["rounding_function"] else None,
        "filters": [
            {
                "key": row["key"],
                "values": [v.strip() for v in row["values"].split(",") if v.strip()],
            }
            for row in filter_rows
        ],
    }


def _render_metric_form(
    form: MetricForm,
    metric: BillableMetric | None,
    status: int,
    filter_rows: list[dict[str, str]],
    unplaced: list[str] | None = None,
    filter_errors: list[str] | None = None,
) -> ResponseReturnValue:
    return render_htmx(
        "console/metric_form.html",
        "console/_metric_form.html",
        status=status,
        form=form,
        metric=metric,
        filter_rows=filter_rows,
        unplaced=unplaced or [],
        filter_errors=filter_errors or [],
        recurring_types=RECURRING_AGGREGATION_TYPES,
        locked=metric_lock(metric),
    )


@bp.get("/billable-metrics")
def metrics() -> ResponseReturnValue:
    """Billable metrics, newest first; htmx requests (live search, paging) get the table only."""
    query = SearchQuery.from_args("console.metrics", request.args)
    page = metric_service.list_billable_metrics(
        current_organization(), query.page, PER_PAGE, search=query.q or None
    )
    return render_htmx("console/metrics.html", "console/_metric_table.html", query=query, page=page)


@bp.route("/billable-metrics/new", methods=["GET", "POST"])
@requires("write")
def new_metric() -> ResponseReturnValue:
    """Create a billable metric."""
    form = MetricForm()
    if request.method == "GET":
        return _render_metric_form(form, None, 200, [])
    return _save_metric(form, None)


@bp.route("/billable-metrics/<uuid:lago_id>/edit", methods=["GET", "POST"])
@requires("write")
def edit_metric(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Edit a billable metric."""
    metric = metric_or_404(lago_id)
    if request.method == "GET":
        form = MetricForm(obj=metric)
        form.rounding_function.data = metric.rounding_function or ""
        rows = [{"key": f["key"], "values": ", ".join(f["values"])} for f in metric.filters or []]
        return _render_metric_form(form, metric, 200, rows)
    return _save_metric(MetricForm(), metric)


def _save_metric(form: MetricForm, metric: BillableMetric | None) -> ResponseReturnValue:
    organization = current_organization()
    if metric is not None and metric_lock(metric):
        # Shown read-only (disabled fields are not posted): keep the stored values.
        form.code.data, form.field_name.data = metric.code, metric.field_name or ""
        form.aggregation_type.data, form.recurring.data = metric.aggregation_type, metric.recurring
    filter_rows = _metric_filter_rows(request.form)
    if not form.validate():
        return _render_metric_form(form, metric, 422, filter_rows)
    payload = _metric_payload(form, filter_rows)
    try:
        if metric is None:
            metric = metric_service.create_billable_metric(organization, payload, agent_actor())
            notice = f"Billable metric “{metric.name}” created."
        else:
            metric_service.update_billable_metric(organization, metric, payload, agent_actor())
            notice = "Billable metric saved."
    except ValidationFailed as exc:
        db.session.rollback()
        details = dict(exc.details)
        filter_errors = [
            catalog_message("filters", code)
            for key in [k for k in details if k.startswith("filters")]
            for code in details.pop(key)
        ]
        unplaced = apply_errors(form, details, catalog_message)
        return _render_metric_form(form, metric, 422, filter_rows, unplaced, filter_errors)
    db.session.commit()
    flash(notice, "success")
    return redirect_htmx(url_for("console.metric", lago_id=metric.lago_id))


@bp.get("/billable-metrics/<uuid:lago_id>")
def metric(lago_id: uuid.UUID) -> ResponseReturnValue:
    """One billable metric and the plans that charge for it."""
    metric = metric_or_404(lago_id)
    return render_template("console/metric.html", metric=metric, plans=plans_charging(metric))


def plans_charging(metric: BillableMetric) -> list[Plan]:
    """The live plans with a charge on this metric, by name."""
    return list(
        db.session.scalars(
            select(Plan)
            .where(
                Plan.organization_id == metric.organization_id,
                Plan.deleted_at.is_(None),
                Plan.charges.any(billable_metric_id=metric.id),
            )
            .order_by(Plan.name)
        )
    )


@bp.get("/billable-metrics/filter-row")
def metric_filter_row() -> ResponseReturnValue:
    """One empty filter row for the metric form (htmx appends it)."""
    index = max(0, int_arg(request.args.get("index"), 0))
    return render_template("console/_metric_filter_row_added.html", index=index, row={})


@bp.route("/billable-metrics/<uuid:lago_id>/delete", methods=["GET", "POST"])
@requires("write")
def delete_metric(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Confirm, then delete a billable metric (the service refuses one still charged for)."""
    metric = metric_or_404(lago_id)
    return confirm_delete(
        metric,
        "Billable metric",
        url_for("console.metric", lago_id=metric.lago_id),
        [
            *(
                [
                    f"Its charges are removed from {len(plans)} plan(s): "
                    + ", ".join(p.name for p in plans)
                    + "."
                ]  # fmt: skip
                if (plans := plans_charging(metric))
                else []
            ),
            f"The code “{metric.code}” can be used again by a new metric.",
            "Events already received are kept.",
        ],
        lambda: metric_service.delete_billable_metric(
            current_organization(), metric, agent_actor()
        ),
    )


# --- plans -----------------------------------------------------------------------------------


class PlanForm(FlaskForm):
    """A plan; charges come as rows charges-N-… (see `ChargeRow`)."""

    name = StringField("Name", validators=[Length(max=255)])
    code = StringField("Code", validators=[Length(max=255)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    interval = Select("Billing interval", list(INTERVAL_LABELS.items()))
    amount_currency = Select("Currency", currency_choices())
    amount = StringField("Base amount", validators=[Length(max=40)])
    pay_in_advance = BooleanField("Bill the base amount at the start of the period")
    trial_period = IntegerField(
        "Trial period (days)", validators=[Optional(), NumberRange(0, 3650)]
    )
    tax_codes = TaxCodes()


@dataclass
class Prices:
    """The price fields of a charge or of one of its filters, as typed (strings), with their
    errors by field. Both read and render them the same way under their own name prefix."""

    charge_model: str = "standard"
    properties: dict[str, str] = field(default_factory=dict)
    tiers: list[dict[str, str]] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        raise NotImplementedError

    @property
    def fields(self) -> tuple[tuple[str, str, str], ...]:
        return MODEL_FIELDS.get(self.charge_model, ())

    @property
    def is_tiered(self) -> bool:
        return self.charge_model in TIERED_MODELS

    @property
    def prices_blank(self) -> bool:
        """Nothing typed: no property, and tiers with no bound or price besides the first 0."""
        typed_tiers = any(
            tier[name] for tier in self.tiers for name in TIER_FIELDS if name != "from_value"
        )
        return not any(self.properties.values()) and not typed_tiers

    def add_error(self, field_name: str, message: str) -> None:
        self.errors.setdefault(field_name, []).append(message)

    def read_prices(self, form: MultiDict[str, str]) -> None:
        """Every model's property fields (a change of model keeps what was typed) and tiers."""
        p = self.prefix
        self.properties = {
            name: form.get(p + name, "").strip()
            for fields in MODEL_FIELDS.values()
            for name, _label, _kind in fields
        }
        for t in _indexed_rows(form, re.escape(p) + "tiers"):
            tier = {name: form.get(f"{p}tiers-{t}-{name}", "").strip() for name in TIER_FIELDS}
            if any(tier.values()):
                self.tiers.append(tier)

    def load_prices(self, charge_model: str, stored: dict[str, Any] | None) -> None:
        """The stored properties of a charge or filter, as the form shows them."""
        properties = dict(stored or {})
        ranges = properties.pop(f"{charge_model}_ranges", None) or []
        self.charge_model = charge_model
        self.properties = {k: "" if v is None else str(v) for k, v in properties.items()}
        self.tiers = [
            {k: "" if tier.get(k) is None else str(tier.get(k)) for k in TIER_FIELDS}
            for tier in ranges
        ]

    def ensure_tiers(self) -> None:
        """A tiered model always shows at least one (open-ended) tier to fill in."""
        if self.is_tiered and not self.tiers:
            self.tiers.append({"from_value": "0", "to_value": "", "per_unit_amount": "",
                               "flat_amount": ""})  # fmt: skip

    def add_tier(self) -> None:
        """Close the last tier where it is and open a new one right after it."""
        self.ensure_tiers()
        last = self.tiers[-1]
        start = _whole(last["to_value"])
        self.tiers.append(
            {
                "from_value": str(start + 1) if isinstance(start, int) else "",
                "to_value": "",
                "per_unit_amount": "",
                "flat_amount": "",
            }  # fmt: skip
        )

    def properties_payload(self) -> dict[str, Any]:
        """Lago's properties: amounts as decimal strings, counts as integers, blanks left out."""
        properties: dict[str, Any] = {}
        for name, _label, kind in self.fields:
            raw = self.properties.get(name, "")
            if raw:
                properties[name] = _whole(raw) if kind == "int" else raw
        if self.is_tiered:
            properties[f"{self.charge_model}_ranges"] = [
                {
                    "from_value": _whole(tier["from_value"]),
                    "to_value": _whole(tier["to_value"]) if tier["to_value"] else None,
                    "per_unit_amount": tier["per_unit_amount"] or "0",
                    "flat_amount": tier["flat_amount"] or "0",
                }
                for tier in self.tiers
            ]
        return properties

    def place_error(self, name: str, message_code: str) -> None:
        """A service error on one of the price fields (a tier's amount goes to the tiers)."""
        if name in ("per_unit_amount", "flat_amount"):
            name = f"{self.charge_model}_ranges"
        self.add_error(name, catalog_message(name, message_code))

    @property
    def shown_fields(self) -> set[str]:
        return {f"{self.charge_model}_ranges", *(name for name, _label, _kind in self.fields)}


@dataclass
class FilterRow(Prices):
    """One price filter of a charge: the metric's filter values it matches
    ({key: [values]}, `ALL_FILTER_VALUES` for any value) and its own prices."""

    charge_index: int = 0
    index: int = 0
    invoice_display_name: str = ""
    values: dict[str, list[str]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"charges-{self.charge_index}-filters-{self.index}-"

    @property
    def is_blank(self) -> bool:
        return (
            not any(self.values.values()) and not self.invoice_display_name and (self.prices_blank)
        )

    @property
    def add_tier_action(self) -> str:
        return f"add_tier:{self.charge_index}:{self.index}"

    @property
    def add_tier_args(self) -> dict[str, Any]:
        return {"index": self.charge_index, "add_filter_tier": self.index}

    @property
    def other_errors(self) -> list[str]:
        shown = {"values", "invoice_display_name", *self.shown_fields}
        return [m for name, messages in self.errors.items() if name not in shown for m in messages]

    @classmethod
    def from_form(cls, form: MultiDict[str, str], charge: ChargeRow, index: int) -> FilterRow:
        row = cls(charge_model=charge.charge_model, charge_index=charge.index, index=index)
        p = row.prefix
        row.invoice_display_name = form.get(p + "invoice_display_name", "").strip()
        for name in form:
            if name.startswith(p + "values-"):
                chosen = [v for v in form.getlist(name) if v]
                if chosen:
                    row.values[name.removeprefix(p + "values-")] = chosen
        row.read_prices(form)
        return row

    @classmethod
    def from_filter(cls, charge_filter: Any, charge: ChargeRow, index: int) -> FilterRow:
        row = cls(
            charge_index=charge.index,
            index=index,
            invoice_display_name=charge_filter.invoice_display_name or "",
            values={key: list(values) for key, values in (charge_filter.values or {}).items()},
        )
        row.load_prices(charge.charge_model, charge_filter.properties)
        return row

    def value_choices(self, metric_filters: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        """Each key with the values to tick: the metric's, then any this filter holds that the
        metric no longer lists (they round-trip, and the service says what is wrong)."""
        choices = [(item["key"], list(item["values"])) for item in metric_filters]
        choices += [(key, []) for key in self.values if key not in dict(choices)]
        return [
            (
                key,
                offered
                + [
                    v
                    for v in self.values.get(key, [])
                    if v not in offered and v != ALL_FILTER_VALUES
                ],
            )
            for key, offered in choices
        ]

    def payload(self) -> dict[str, Any]:
        return {
            "invoice_display_name": self.invoice_display_name or None,
            "values": self.values,
            "properties": self.properties_payload(),
        }


@dataclass
class ChargeRow(Prices):
    """One charge of the plan form, as typed (strings), with its errors by field."""

    index: int = 0
    id: str = ""
    code: str = ""
    billable_metric_id: str = ""
    pay_in_advance: bool = False
    invoice_display_name: str = ""
    tax_codes: list[str] = field(default_factory=list)
    filters: list[FilterRow] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"charges-{self.index}-"

    @property
    def is_blank(self) -> bool:
        return not self.billable_metric_id and not any(self.properties.values())

    @property
    def add_tier_action(self) -> str:
        return f"add_tier:{self.index}"

    @property
    def add_tier_args(self) -> dict[str, Any]:
        return {"index": self.index, "add_tier": 1}

    @property
    def next_filter_index(self) -> int:
        return max((f.index for f in self.filters), default=-1) + 1

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(f.errors for f in self.filters)

    @property
    def other_errors(self) -> list[str]:
        """Errors of no field shown in the row (code…), shown at its top."""
        shown = {*ROW_FIELDS, *self.shown_fields}
        return [m for name, messages in self.errors.items() if name not in shown for m in messages]

    @classmethod
    def from_form(cls, form: MultiDict[str, str], index: int) -> ChargeRow:
        p = f"charges-{index}-"
        model = form.get(p + "charge_model", "standard")
        row = cls(
            index=index,
            id=form.get(p + "id", ""),
            code=form.get(p + "code", ""),
            billable_metric_id=form.get(p + "billable_metric_id", ""),
            charge_model=model if model in MODEL_FIELDS else "standard",
            pay_in_advance=form.get(p + "pay_in_advance") == "y",
            invoice_display_name=form.get(p + "invoice_display_name", "").strip(),
            tax_codes=form.getlist(p + "tax_codes"),
        )
        row.read_prices(form)
        row.filters = [
            FilterRow.from_form(form, row, j) for j in _indexed_rows(form, re.escape(p) + "filters")
        ]
        return row

    @classmethod
    def from_charge(cls, charge: Any, index: int) -> ChargeRow:
        row = cls(
            index=index,
            id=str(charge.lago_id),
            code=charge.code or "",
            billable_metric_id=str(charge.billable_metric.lago_id),
            pay_in_advance=charge.pay_in_advance,
            invoice_display_name=charge.invoice_display_name or "",
            tax_codes=charge.tax_codes,
        )
        row.load_prices(charge.charge_model, charge.properties)
        row.filters = [FilterRow.from_filter(f, row, j) for j, f in enumerate(charge.filters)]
        return row

    def add_filter(self) -> FilterRow:
        added = FilterRow(
            charge_model=self.charge_model, charge_index=self.index, index=self.next_filter_index
        )
        self.filters.append(added)
        return added

    def ensure_tiers(self) -> None:
        super().ensure_tiers()
        for charge_filter in self.filters:
            charge_filter.ensure_tiers()

    def drop_blank_filters(self) -> None:
        """Filter rows left empty are not sent (nor are they counted in error positions)."""
        self.filters = [f for f in self.filters if not f.is_blank]

    def payload(self) -> dict[str, Any]:
        """The Lago charge with its filters (all of them: filters left out are removed)."""
        charge: dict[str, Any] = {
            "billable_metric_id": self.billable_metric_id,
            "charge_model": self.charge_model,
            "pay_in_advance": self.pay_in_advance,
            "invoice_display_name": self.invoice_display_name or None,
            "properties": self.properties_payload(),
            "filters": [f.payload() for f in self.filters],
            "tax_codes": self.tax_codes,
        }
        if self.id:
            charge["id"] = self.id
        if self.code:
            charge["code"] = self.code
        return charge


def _whole(raw: str) -> int | str:
    """A whole number as int; anything else as typed (the service refuses it with its code)."""
    return int(raw) if re.fullmatch(r"-?\d{1,15}", raw) else raw


def charge_rows(form: MultiDict[str, str]) -> list[ChargeRow]:
    return [ChargeRow.from_form(form, i) for i in _indexed_rows(form, "charges")]


def _error_paths(details: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, code) of each error in nested details: {"charges": {"0": {"amount": [..]}}},
    {"charges.0.properties.amount": [..]} and {"charges[0][amount]": [..]} alike."""
    if isinstance(details, dict):
        for key, value in details.items():
            yield from _error_paths(value, path + tuple(re.findall(r"[^.\[\]]+", str(key))))
    elif isinstance(details, list):
        for value in details:
            yield from _error_paths(value, path)
    else:
        yield path, str(details)


CHARGE_ERROR_FIELDS = {
    "billable_metric_id", "charge_model", "pay_in_advance", "invoice_display_name",
    "graduated_ranges", "volume_ranges", "per_unit_amount", "flat_amount",
    *(name for fields in MODEL_FIELDS.values() for name, _label, _kind in fields),
}  # fmt: skip


def place_plan_errors(form: PlanForm, rows: list[ChargeRow], details: dict[str, Any]) -> list[str]:
    """Put the service's errors next to the plan's fields and the right charge's fields; return
    the messages that belong nowhere in particular."""
    unplaced: list[str] = []
    plan_errors: dict[str, list[str]] = {}
    for path, code in _error_paths(details):
        if len(path) >= 2 and path[0] == "charges" and path[1].isdigit():
            position = int(path[1])
            target: Prices | None = rows[position] if position < len(rows) else None
            rest = path[2:]
            if rest[:1] == ("filters",) and len(rest) >= 2 and rest[1].isdigit():
                # `charges[0].filters[1].values`: filters as sent, blank rows left out.
                filters = target.filters if isinstance(target, ChargeRow) else []
                target = filters[int(rest[1])] if int(rest[1]) < len(filters) else None
                rest = rest[2:]
            names = [p for p in rest if p != "properties" and not p.isdigit()]
            name = names[0] if names else "base"
            if target is not None:
                target.place_error(name, code)
            else:
                unplaced.append(catalog_message(name, code))
        elif len(path) == 1 and path[0] in CHARGE_ERROR_FIELDS and len(rows) == 1:
            # A flat error about charge properties: unambiguous with one charge only.
            rows[0].add_error(path[0], catalog_message(path[0], code))
        else:
            key = "amount" if path[:1] == ("amount_cents",) else ".".join(path) or "base"
            plan_errors.setdefault(key, []).append(code)
    unplaced += apply_errors(form, plan_errors, catalog_message)
    return unplaced


def _amount_cents(form: PlanForm | Any) -> int | None:
    """The base amount, typed in major units, as exact minor units (never through a float);
    an error on the form when it cannot be exact."""
    currency = form.amount_currency.data or ""
    amount = parse_decimal(form.amount.data or "0")
    try:
        exponent = currency_exponent(currency)
    except ValueError:
        return None  # the service reports the currency itself
    if amount is None or amount < 0:
        form.amount.errors = [*form.amount.errors, "Enter an amount of 0 or more, such as 19.99."]
        return None
    if amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        decimals = (
            f"{exponent} decimal{'s' if exponent != 1 else ''}" if exponent else "no decimals"
        )
        form.amount.errors = [*form.amount.errors, f"{currency} amounts have {decimals}."]
        return None
    return to_minor_units(amount, currency)


def _plan_payload(form: PlanForm, rows: list[ChargeRow], amount_cents: int | None) -> dict:
    data = form.data
    return {
        "name": (data["name"] or "").strip(),
        "code": (data["code"] or "").strip(),
        "description": (data["description"] or "").strip() or None,
        "interval": data["interval"],
        "amount_cents": amount_cents,
        "amount_currency": data["amount_currency"],
        "pay_in_advance": bool(data["pay_in_advance"]),
        "trial_period": data["trial_period"] or 0,
        "tax_codes": data["tax_codes"] or [],
        "charges": [row.payload() for row in rows],
    }


def _metric_context() -> dict[str, Any]:
    """The metrics a charge may price (select options) and each one's filters (the keys and
    values a charge filter chooses from), by lago_id; the taxes a charge may have."""
    page = metric_service.list_billable_metrics(current_organization(), 1, METRIC_CHOICES_LIMIT)
    return {
        "tax_choices": tax_choices(current_organization()),
        "metric_choices": [(str(m.lago_id), f"{m.name} ({m.code})") for m in page.items],
        "metric_filters": {str(m.lago_id): m.filters or [] for m in page.items},
        "all_filter_values": ALL_FILTER_VALUES,
    }


def _lock_reason(counts: dict[str, int]) -> str:
    """Why immutable fields are locked, from live subscriptions by status ('' when they are not)."""
    active, pending = counts.get("active", 0), counts.get("pending", 0)
    if not active and not pending:
        return ""
    parts = [f"{active} active"] if active else []
    parts += [f"{pending} pending"] if pending else []
    plural = "s" if active + pending != 1 else ""
    return f"Locked: used by {' and '.join(parts)} subscription{plural}."


def _live_subscription_counts(*conditions: Any) -> dict[str, int]:
    rows = db.session.execute(
        select(Subscription.status, func.count(distinct(Subscription.id)))
        .where(Subscription.status.in_(LIVE_SUBSCRIPTION_STATUSES), *conditions)
        .group_by(Subscription.status)
    )
    return {str(status): count for status, count in rows}


def plan_lock(plan: Plan | None) -> str:
    """Why the plan's code, interval, currency and billing timing cannot change ('' if they can:
    the service refuses changes while active or pending subscriptions use the plan)."""
    if plan is None:
        return ""
    return _lock_reason(_live_subscription_counts(Subscription.plan_id == plan.id))


def metric_lock(metric: BillableMetric | None) -> str:
    """Why the metric's code and aggregation cannot change ('' if they can)."""
    if metric is None:
        return ""
    return _lock_reason(
        _live_subscription_counts(
            Subscription.plan_id == Charge.plan_id,
            Charge.billable_metric_id == metric.id,
            Charge.deleted_at.is_(None),
        )
    )


def _render_plan_form(
    form: PlanForm,
    plan: Plan | None,
    status: int,
    rows: list[ChargeRow],
    unplaced: list[str] | None = None,
) -> ResponseReturnValue:
    for row in rows:
        row.ensure_tiers()
    form.tax_codes.choices = tax_choices(current_organization())
    return render_htmx(
        "console/plan_form.html",
        "console/_plan_form.html",
        status=status,
        form=form,
        plan=plan,
        charges=rows,
        next_index=max((row.index for row in rows), default=-1) + 1,
        unplaced=unplaced or [],
        locked=plan_lock(plan),
        **_metric_context(),
    )


def plan_or_404(lago_id: uuid.UUID) -> Plan:
    return owned_or_404(Plan, lago_id, live=True)


@bp.get("/plans")
def plans() -> ResponseReturnValue:
    """Plans, newest first; htmx requests (live search, paging) get the table only."""
    query = SearchQuery.from_args("console.plans", request.args)
    page = plan_service.list_plans(
        current_organization(), query.page, PER_PAGE, search=query.q or None
    )
    return render_htmx(
        "console/plans.html",
        "console/_plan_table.html",
        query=query,
        page=page,
        counts=plan_service.plan_counts(page.items),
    )


@bp.route("/plans/new", methods=["GET", "POST"])
@requires("write")
def new_plan() -> ResponseReturnValue:
    """Create a plan with its charges."""
    form = PlanForm()
    if request.method == "GET":
        form.amount_currency.data = current_organization().default_currency or ""
        form.amount.data = "0"
        return _render_plan_form(form, None, 200, [])
    return _save_plan(form, None)


@bp.route("/plans/<uuid:lago_id>/edit", methods=["GET", "POST"])
@requires("write")
def edit_plan(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Edit a plan and its charges (charges left out of the form are removed)."""
    plan = plan_or_404(lago_id)
    if request.method == "GET":
        form = PlanForm(obj=plan)
        form.amount.data = str(from_minor_units(plan.amount_cents, plan.amount_currency))
        rows = [ChargeRow.from_charge(c, i) for i, c in enumerate(plan.charges)]
        return _render_plan_form(form, plan, 200, rows)
    return _save_plan(PlanForm(), plan)


def _save_plan(form: PlanForm, plan: Plan | None) -> ResponseReturnValue:
    """Without JavaScript, the form's "add charge", "add tier" and "update fields" buttons post
    it back here: the form comes back with the change, nothing is saved."""
    organization = current_organization()
    if plan is not None and plan_lock(plan):
        # Shown read-only (disabled fields are not posted): keep the stored values.
        form.code.data, form.interval.data = plan.code, plan.interval
        form.amount_currency.data = plan.amount_currency
        form.pay_in_advance.data = plan.pay_in_advance
    rows = charge_rows(request.form)
    action = request.form.get("form_action", "")
    if action:
        _apply_form_action(action, rows)
        return _render_plan_form(form, plan, 200, rows)
    rows = [row for row in rows if not row.is_blank or row.id]
    for row in rows:
        row.drop_blank_filters()
    valid = form.validate()
    amount_cents = _amount_cents(form)
    payload = _plan_payload(form, rows, amount_cents)
    if not valid or form.amount.errors:
        # Show the charges' errors too, not one batch after another: the service's checks
        # alone, which write nothing.
        try:
            details = plan_service.parse_plan_input(organization, payload, plan).errors
        except NotFound:
            details = {}
        details = {k: v for k, v in details.items() if k.startswith("charges")}
        unplaced = place_plan_errors(form, rows, details)
        return _render_plan_form(form, plan, 422, rows, unplaced)
    try:
        if plan is None:
            plan = plan_service.create_plan(organization, payload, agent_actor())
            notice = f"Plan “{plan.name}” created."
        else:
            plan_service.update_plan(organization, plan, payload, agent_actor())
            notice = "Plan saved."
    except ValidationFailed as exc:
        db.session.rollback()
        unplaced = place_plan_errors(form, rows, exc.details)
        return _render_plan_form(form, plan, 422, rows, unplaced)
    except NotFound as exc:
        db.session.rollback()
        what = "tax" if exc.resource == "tax" else "metric"
        unplaced = [f"A chosen {what} no longer exists: choose another one."]
        return _render_plan_form(form, plan, 422, rows, unplaced)
    db.session.commit()
    flash(notice, "success")
    return redirect_htmx(url_for("console.plan", lago_id=plan.lago_id))


def _apply_form_action(action: str, rows: list[ChargeRow]) -> None:
    """A no-JS button's change: `add_charge`, `add_filter:<charge>`, `add_tier:<charge>` or
    `add_tier:<charge>:<filter>` (anything else, e.g. `refresh`, just re-renders)."""
    verb, _, where = action.partition(":")
    charge_index, _, filter_index = where.partition(":")
    if verb == "add_charge":
        rows.append(ChargeRow(index=max((r.index for r in rows), default=-1) + 1))
    for row in rows:
        if str(row.index) != charge_index:
            continue
        if verb == "add_filter":
            row.add_filter()
        elif verb == "add_tier" and not filter_index:
            row.add_tier()
        elif verb == "add_tier":
            for charge_filter in row.filters:
                if str(charge_filter.index) == filter_index:
                    charge_filter.add_tier()


@bp.get("/plans/charge-row")
def charge_row() -> ResponseReturnValue:
    """One charge row, re-rendered from the values sent: a new empty row (`index`), the row
    with another metric's filters or another charge model's fields, or with one more tier
    (`add_tier` on the charge, `add_filter_tier=<n>` on one of its filters)."""
    index = max(0, int_arg(request.args.get("index"), 0))
    row = ChargeRow.from_form(request.args, index)
    if request.args.get("add_tier"):
        row.add_tier()
    elif "add_filter_tier" in request.args:
        _apply_form_action(f"add_tier:{index}:{request.args['add_filter_tier']}", [row])
    row.ensure_tiers()
    template = "console/_charge_row_added.html" if request.args.get("new") else None
    return render_template(
        template or "console/_charge_row.html",
        charge=row,
        next_index=index + 1,
        **_metric_context(),
    )


@bp.get("/plans/charge-filter-row")
def charge_filter_row() -> ResponseReturnValue:
    """One new, empty filter row for charge `index` (htmx appends it), priced by the charge's
    model (`charges-<index>-charge_model`) and offering its metric's filter values."""
    index = max(0, int_arg(request.args.get("index"), 0))
    charge = ChargeRow.from_form(request.args, index)
    charge.filters = []
    charge_filter = charge.add_filter()
    charge_filter.index = max(0, int_arg(request.args.get("filter_index"), 0))
    charge_filter.ensure_tiers()
    return render_template(
        "console/_charge_filter_row_added.html",
        charge=charge,
        charge_filter=charge_filter,
        **_metric_context(),
    )


@bp.get("/plans/<uuid:lago_id>")
def plan(lago_id: uuid.UUID) -> ResponseReturnValue:
    """One plan: its terms and its charges with their prices."""
    plan = plan_or_404(lago_id)
    return render_template(
        "console/plan.html",
        plan=plan,
        counts=plan_service.plan_counts([plan]).get(plan.id, PlanCounts()),
        tier_fields=TIER_FIELDS,
        model_fields=MODEL_FIELDS,
        all_filter_values=ALL_FILTER_VALUES,
    )


@bp.route("/plans/<uuid:lago_id>/delete", methods=["GET", "POST"])
@requires("write")
def delete_plan(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Confirm, then delete a plan."""
    plan = plan_or_404(lago_id)
    return confirm_delete(
        plan,
        "Plan",
        url_for("console.plan", lago_id=plan.lago_id),
        [
            f"The code “{plan.code}” can be used again by a new plan.",
            "New subscriptions can no longer use it.",
        ],
        lambda: plan_service.delete_plan(current_organization(), plan, agent_actor()),
    )
