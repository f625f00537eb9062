"""The OpenAPI 3.1 description of /api/v1 (and the inbound /hooks), built from plain data.

`build_spec()` returns the document served at `GET /api/v1/openapi.json` and rendered at
`GET /api/v1/docs`. It is written by hand, next to the code it describes, and checked two ways:
tests/test_openapi.py compares its operations with the app's URL map, and tests/test_api_fuzz.py
has schemathesis call every operation on a live server and validate each answer against it.

To describe a new route: add one `Operation(...)` to `OPERATIONS` (in its tag's section), with
its query `params`, its request `body` schema and its `ok` response (`one("root", ref("X"))` or
`listed("roots", ref("X"))`); put a new object shape in `SCHEMAS`. The error answers follow from
the operation: 401 always, 404 when the path has a parameter or it takes a body (or
`not_found=True`), 400 and 422 when it takes a body, 422 when it takes query parameters (or
`validates=True`), 405 with `not_allowed=True`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Schema helpers


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """The schema, or null (OpenAPI 3.1: a type list; a `$ref` goes through anyOf)."""
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    result = dict(schema)
    kind = schema["type"]
    result["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
    if "enum" in schema:
        result["enum"] = [*schema["enum"], None]
    return result


def obj(required: tuple[str, ...] | list[str] = (), **properties: Schema) -> Schema:
    """An object; other keys are allowed (Lago adds fields over time, clients ignore them)."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
UUID: Schema = {"type": "string", "format": "uuid"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
DATE: Schema = {"type": "string", "format": "date"}
#: a decimal number written as a string, as Lago writes units and credit amounts ("3.0")
DECIMAL: Schema = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
CURRENCY: Schema = {"type": "string", "description": "ISO 4217 code", "example": "EUR"}
ANY_OBJECT: Schema = {"type": "object"}
STR_MAP: Schema = {"type": "object", "additionalProperties": STR}
N_STR, N_INT, N_BOOL = nullable(STR), nullable(INT), nullable(BOOL)
N_DATETIME, N_UUID = nullable(DATETIME), nullable(UUID)


def one(root: str, schema: Schema) -> Schema:
    """`{"<root>": {...}}`: the answer of create, show, update, delete and actions."""
    return obj([root], **{root: schema})


def listed(root: str, item: Schema) -> Schema:
    """`{"<roots>": [...], "meta": {...}}`: a paginated list."""
    return obj([root, "meta"], **{root: array(item), "meta": ref("PaginationMeta")})


def unpaginated(root: str, item: Schema) -> Schema:
    return obj([root], **{root: array(item)})


def body(root: str, schema: Schema, example: dict[str, Any] | None = None) -> Schema:
    """A request body wrapped in its singular root key, as Lago's are."""
    wrapped = obj([root], **{root: schema})
    if example is not None:
        wrapped["example"] = {root: example}
    return wrapped


# ---------------------------------------------------------------------------------------------
# Parameters


def query(name: str, schema: Schema | None = None, description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "schema": schema or STR}
    if description:
        param["description"] = description
    return param


def query_list(name: str, item: Schema | None = None, description: str = "") -> dict[str, Any]:
    """`name[]=a&name[]=b` (Rails style; a plain comma-separated `name=a,b` works too)."""
    return {
        "name": f"{name}[]",
        "in": "query",
        "schema": array(item or STR),
        "style": "form",
        "explode": True,
        "description": description or f"Any of these values (`{name}[]=a&{name}[]=b`).",
    }


#: an identifier in a path: what the API stores can travel unencoded in a URL path
PATH_SEGMENT: Schema = {"type": "string", "minLength": 1, "pattern": r"^[^/?#%\\\x00-\x1f\x7f]+$"}

PAGINATION = (
    query("page", {"type": "integer", "minimum": 1}, "1-based page number (default 1)."),
    query(
        "per_page",
        {"type": "integer", "minimum": 1},
        "Items per page (default 100, capped by API_PER_PAGE_MAX).",
    ),
)
SEARCH = query("search_term", STR, "Searches names and codes.")


def path_param(name: str, description: str) -> dict[str, Any]:
    schema = UUID if name in ("lago_id", "activity_id") else PATH_SEGMENT
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


PATH_DESCRIPTIONS = {
    "external_id": "The external id given by your system.",
    "code": "The object's unique code.",
    "charge_code": "The charge's code within the plan.",
    "lago_id": "The object's `lago_id` (a UUID made by Ledgerline).",
    "transaction_id": "The event's `transaction_id` (its idempotency key).",
    "applied_coupon_id": "The applied coupon's `lago_id`.",
    "key": "A metadata key.",
    "activity_id": "The activity log entry's `activity_id`.",
}

# ---------------------------------------------------------------------------------------------
# Component schemas: the objects the API answers with, and the error bodies


def _error(status: int, error: str, with_code: bool, code_example: str = "") -> Schema:
    schema = obj(
        ["status", "error", *(["code"] if with_code else [])],
        status={"type": "integer", "const": status},
        error={"type": "string", "example": error},
    )
    if with_code:
        schema["properties"]["code"] = {"type": "string", "example": code_example}
    return schema


TAX = obj(
    ["lago_id", "name", "code", "rate", "created_at"],
    lago_id=UUID,
    name=STR,
    code=STR,
    rate=NUM,
    description=N_STR,
    applied_to_organization=BOOL,
    created_at=DATETIME,
)
APPLIED_TAX = obj(
    ["lago_id", "tax_code", "tax_rate", "amount_cents"],
    lago_id=UUID,
    lago_tax_id=UUID,
    tax_name=STR,
    tax_code=STR,
    tax_rate=NUM,
    tax_description=N_STR,
    amount_cents=INT,
    amount_currency=STR,
    created_at=DATETIME,
)
CUSTOMER_FIELDS: dict[str, Schema] = {
    name: N_STR
    for name in [
        "name",
        "firstname",
        "lastname",
        "email",
        "phone",
        "url",
        "logo_url",
        "legal_name",
        "legal_number",
        "tax_identification_number",
        "address_line1",
        "address_line2",
        "city",
        "state",
        "zipcode",
        "country",
        "currency",
        "timezone",
        "external_salesforce_id",
    ]
}
CUSTOMER = obj(
    ["lago_id", "external_id", "sequential_id", "slug", "applicable_timezone", "created_at"],
    lago_id=UUID,
    external_id=STR,
    sequential_id=INT,
    slug=STR,
    billing_entity_code=N_STR,
    account_type=enum("customer", "partner"),
    customer_type=nullable(enum("company", "individual")),
    **CUSTOMER_FIELDS,
    applicable_timezone=STR,
    net_payment_term=N_INT,
    finalize_zero_amount_invoice=enum("inherit", "skip", "finalize"),
    skip_invoice_custom_sections=BOOL,
    status=enum("active", "inactive", "deleted"),
    created_at=DATETIME,
    updated_at=DATETIME,
    deleted_at=N_DATETIME,
    billing_configuration=obj(
        invoice_grace_period=N_INT,
        payment_provider=N_STR,
        payment_provider_code=N_STR,
        document_locale=N_STR,
        subscription_invoice_issuing_date_anchor=N_STR,
        subscription_invoice_issuing_date_adjustment=N_STR,
    ),
    shipping_address=obj(
        address_line1=N_STR,
        address_line2=N_STR,
        city=N_STR,
        zipcode=N_STR,
        state=N_STR,
        country=N_STR,
    ),
    metadata=array(
        obj(
            ["lago_id", "key", "value", "display_in_invoice", "created_at"],
            lago_id=UUID,
            key=STR,
            value=STR,
            display_in_invoice=BOOL,
            created_at=DATETIME,
        )
    ),
    integration_customers=array(ANY_OBJECT),
    taxes=array(ref("Tax")),
)
CUSTOMER_INPUT = obj(
    ["external_id"],
    external_id=STR,
    **{name: N_STR for name in CUSTOMER_FIELDS},
    account_type=enum("customer", "partner"),
    customer_type=nullable(enum("company", "individual")),
    net_payment_term=N_INT,
    finalize_zero_amount_invoice=nullable(enum("inherit", "skip", "finalize")),
    skip_invoice_custom_sections=N_BOOL,
    billing_configuration=obj(
        invoice_grace_period=N_INT,
        payment_provider=N_STR,
        payment_provider_code=N_STR,
        provider_customer_id=N_STR,
        sync=N_BOOL,
        sync_with_provider=N_BOOL,
        document_locale=N_STR,
        subscription_invoice_issuing_date_anchor=N_STR,
        subscription_invoice_issuing_date_adjustment=N_STR,
    ),
    shipping_address=obj(
        address_line1=N_STR,
        address_line2=N_STR,
        city=N_STR,
        zipcode=N_STR,
        state=N_STR,
        country=N_STR,
    ),
    metadata=nullable(
        array(
            obj(
                ["key", "value"],
                id=N_STR,
                key=STR,
                value=STR,
                display_in_invoice=BOOL,
            )
        )
    ),
    integration_customers=nullable(array(ANY_OBJECT)),
    tax_codes=nullable(array(STR)),
    billing_entity_code=N_STR,
)
METRIC = obj(
    ["lago_id", "name", "code", "aggregation_type", "created_at", "filters"],
    lago_id=UUID,
    name=STR,
    code=STR,
    description=N_STR,
    aggregation_type=STR,
    weighted_interval=N_STR,
    recurring=BOOL,
    rounding_function=N_STR,
    rounding_precision=N_INT,
    created_at=DATETIME,
    field_name=N_STR,
    expression=N_STR,
    filters=array(obj(["key", "values"], key=STR, values=array(STR))),
)
METRIC_INPUT = obj(
    name=STR,
    code=STR,
    description=N_STR,
    aggregation_type=enum(
        "count_agg",
        "sum_agg",
        "max_agg",
        "unique_count_agg",
        "latest_agg",
        "weighted_sum_agg",
    ),
    field_name=N_STR,
    recurring=BOOL,
    weighted_interval=nullable(enum("seconds")),
    rounding_function=nullable(enum("round", "ceil", "floor")),
    rounding_precision=N_INT,
    expression=N_STR,
    filters=nullable(array(obj(["key", "values"], key=STR, values=array(STR)))),
)
CHARGE_FILTER = obj(
    ["lago_id", "properties", "values"],
    lago_id=UUID,
    invoice_display_name=N_STR,
    properties=ANY_OBJECT,
    values={"type": "object", "additionalProperties": array(STR)},
    created_at=DATETIME,
)
CHARGE_FILTER_INPUT = obj(
    invoice_display_name=N_STR,
    properties=ANY_OBJECT,
    values={"type": "object", "additionalProperties": array(STR)},
)
CHARGE_MODELS = ("standard", "graduated", "volume", "package", "percentage")
CHARGE = obj(
    ["lago_id", "lago_billable_metric_id", "billable_metric_code", "charge_model", "created_at"],
    lago_id=UUID,
    lago_billable_metric_id=UUID,
    billable_metric_code=STR,
    code=N_STR,
    invoice_display_name=N_STR,
    created_at=DATETIME,
    charge_model=enum(*CHARGE_MODELS),
    invoiceable=BOOL,
    regroup_paid_fees=N_STR,
    pay_in_advance=BOOL,
    prorated=BOOL,
    min_amount_cents=INT,
    properties=ANY_OBJECT,
    tax_codes=array(STR),
    filters=array(ref("ChargeFilter")),
    taxes=array(ref("Tax")),
)
CHARGE_INPUT = obj(
    id=nullable(UUID),
    billable_metric_id=UUID,
    billable_metric_code=STR,
    code=STR,
    charge_model=enum(*CHARGE_MODELS),
    pay_in_advance={
        **BOOL,
        "description": "Charges are billed in arrears only: `true` is 422 `not_supported` "
        "(a charge stored in advance before may be sent back as it is).",
    },
    invoiceable=BOOL,
    prorated=BOOL,
    invoice_display_name=N_STR,
    min_amount_cents=INT,
    properties=ANY_OBJECT,
    filters=array(CHARGE_FILTER_INPUT),
    tax_codes=array(STR),
)
PLAN = obj(
    ["lago_id", "name", "code", "interval", "amount_cents", "amount_currency", "created_at"],
    lago_id=UUID,
    name=STR,
    invoice_display_name=N_STR,
    created_at=DATETIME,
    code=STR,
    interval=enum("weekly", "monthly", "quarterly", "semiannual", "yearly"),
    description=N_STR,
    amount_cents=INT,
    amount_currency=STR,
    trial_period=NUM,
    pay_in_advance=BOOL,
    bill_charges_monthly=N_BOOL,
    customers_count=INT,
    active_subscriptions_count=INT,
    draft_invoices_count=INT,
    tax_codes=array(STR),
    charges=array(ref("Charge")),
    taxes=array(ref("Tax")),
    metadata=nullable(STR_MAP),
)
PLAN_INPUT = obj(
    name=STR,
    code=STR,
    interval=enum("weekly", "monthly", "quarterly", "semiannual", "yearly"),
    amount_cents=INT,
    amount_currency=CURRENCY,
    pay_in_advance=BOOL,
    invoice_display_name=N_STR,
    description=N_STR,
    trial_period=nullable(NUM),
    bill_charges_monthly=N_BOOL,
    tax_codes=nullable(array(STR)),
    charges=nullable(array(CHARGE_INPUT)),
    metadata=nullable(STR_MAP),
)
SUBSCRIPTION = obj(
    ["lago_id", "external_id", "external_customer_id", "plan_code", "status"],
    lago_id=UUID,
    external_id=STR,
    lago_customer_id=UUID,
    external_customer_id=STR,
    name=N_STR,
    plan_code=STR,
    plan_amount_cents=INT,
    plan_amount_currency=STR,
    status=enum("pending", "active", "terminated", "canceled"),
    billing_time=enum("calendar", "anniversary"),
    subscription_at=N_DATETIME,
    started_at=N_DATETIME,
    trial_ended_at=N_DATETIME,
    ending_at=N_DATETIME,
    terminated_at=N_DATETIME,
    canceled_at=N_DATETIME,
    created_at=DATETIME,
    previous_plan_code=N_STR,
    next_plan_code=N_STR,
    downgrade_plan_date=nullable(DATE),
    current_billing_period_started_at=N_DATETIME,
    current_billing_period_ending_at=N_DATETIME,
    on_termination_credit_note=N_STR,
    on_termination_invoice=N_STR,
    plan=ref("Plan"),
)
SUBSCRIPTION_INPUT = obj(
    external_customer_id=STR,
    plan_code=STR,
    external_id=STR,
    name=N_STR,
    billing_time=enum("calendar", "anniversary"),
    subscription_at=nullable(DATETIME),
    ending_at=nullable(DATETIME),
    on_termination_credit_note=nullable(enum("credit", "refund", "skip")),
    on_termination_invoice=nullable(enum("generate", "skip")),
)
EVENT = obj(
    ["lago_id", "transaction_id", "code", "timestamp", "external_subscription_id"],
    lago_id=UUID,
    transaction_id=STR,
    lago_customer_id=N_UUID,
    code=STR,
    timestamp=DATETIME,
    precise_total_amount_cents=nullable(DECIMAL),
    properties=ANY_OBJECT,
    lago_subscription_id=N_UUID,
    external_subscription_id=STR,
    created_at=DATETIME,
)
EVENT_INPUT = obj(
    ["transaction_id", "external_subscription_id", "code"],
    transaction_id=STR,
    external_subscription_id=STR,
    code=STR,
    timestamp={
        "type": ["integer", "number", "string", "null"],
        "description": "Unix seconds (int, float or numeric string); absent or null is now.",
    },
    properties=nullable(ANY_OBJECT),
    precise_total_amount_cents=nullable({"type": ["string", "number"]}),
)
FILTER_USAGE = obj(
    ["units", "amount_cents", "events_count", "values"],
    units=DECIMAL,
    total_aggregated_units=DECIMAL,
    amount_cents=INT,
    events_count=INT,
    invoice_display_name=N_STR,
    values=nullable(ANY_OBJECT),
)
CHARGE_USAGE = obj(
    ["units", "events_count", "amount_cents", "amount_currency", "charge", "billable_metric"],
    units=DECIMAL,
    total_aggregated_units=DECIMAL,
    events_count=INT,
    amount_cents=INT,
    amount_currency=STR,
    charge=obj(
        ["lago_id", "charge_model"],
        lago_id=UUID,
        code=N_STR,
        charge_model=STR,
        invoice_display_name=N_STR,
    ),
    billable_metric=obj(
        ["lago_id", "name", "code", "aggregation_type"],
        lago_id=UUID,
        name=STR,
        code=STR,
        aggregation_type=STR,
    ),
    filters=array(FILTER_USAGE),
    grouped_usage=array(ANY_OBJECT),
)
CUSTOMER_USAGE = obj(
    [
        "from_datetime",
        "to_datetime",
        "issuing_date",
        "currency",
        "amount_cents",
        "taxes_amount_cents",
        "total_amount_cents",
        "charges_usage",
    ],
    from_datetime=DATETIME,
    to_datetime=DATETIME,
    issuing_date=DATE,
    lago_invoice_id=N_UUID,
    currency=STR,
    amount_cents=INT,
    taxes_amount_cents=INT,
    total_amount_cents=INT,
    charges_usage=array(CHARGE_USAGE),
)
FEE = obj(
    ["lago_id", "amount_cents", "amount_currency", "item"],
    lago_id=UUID,
    lago_charge_id=N_UUID,
    lago_charge_filter_id=N_UUID,
    lago_invoice_id=UUID,
    lago_subscription_id=N_UUID,
    external_subscription_id=N_STR,
    lago_customer_id=UUID,
    external_customer_id=STR,
    amount_cents=INT,
    precise_amount=DECIMAL,
    amount_currency=STR,
    taxes_amount_cents=INT,
    taxes_rate=NUM,
    total_amount_cents=INT,
    units=DECIMAL,
    total_aggregated_units=DECIMAL,
    events_count=N_INT,
    pay_in_advance=BOOL,
    from_date=N_DATETIME,
    to_date=N_DATETIME,
    payment_status=STR,
    created_at=DATETIME,
    item=obj(
        ["type"],
        type=enum("subscription", "charge", "add_on", "credit"),
        code=N_STR,
        name=N_STR,
        lago_item_id=N_STR,
        item_type=STR,
    ),
    applied_taxes=array(APPLIED_TAX),
)
CREDIT = obj(
    ["lago_id", "amount_cents", "item"],
    lago_id=UUID,
    amount_cents=INT,
    amount_currency=STR,
    before_taxes=BOOL,
    item=obj(["type"], lago_item_id=STR, type=STR, code=N_STR, name=N_STR),
    invoice=obj(lago_id=UUID, payment_status=STR),
)
INVOICE = obj(
    [
        "lago_id",
        "sequential_id",
        "number",
        "issuing_date",
        "invoice_type",
        "status",
        "payment_status",
        "currency",
        "total_amount_cents",
        "customer",
    ],
    lago_id=UUID,
    sequential_id=N_INT,
    number=STR,
    issuing_date=DATE,
    payment_due_date=DATE,
    net_payment_term=INT,
    invoice_type=enum("subscription", "add_on", "credit", "one_off"),
    status=enum("draft", "finalized", "voided", "closed"),
    payment_status=enum("pending", "succeeded", "failed"),
    payment_overdue=BOOL,
    currency=STR,
    **{
        f"{name}_amount_cents": INT
        for name in [
            "fees",
            "coupons",
            "taxes",
            "credit_notes",
            "progressive_billing_credit",
            "sub_total_excluding_taxes",
            "sub_total_including_taxes",
            "total",
            "total_due",
            "total_paid",
            "prepaid_credit",
        ]
    },
    file_url=N_STR,
    version_number=INT,
    created_at=DATETIME,
    updated_at=DATETIME,
    voided_at=N_DATETIME,
    customer=ref("Customer"),
    metadata=array(obj(["lago_id", "key", "value"], lago_id=UUID, key=STR, value=STR)),
    applied_taxes=array(APPLIED_TAX),
    billing_periods=array(ANY_OBJECT),
    subscriptions=array(ref("Subscription")),
    fees=array(ref("Fee")),
    credits=array(ref("Credit")),
)
CREDIT_NOTE = obj(
    [
        "lago_id",
        "number",
        "lago_invoice_id",
        "currency",
        "taxes_rate",
        "total_amount_cents",
        "credit_amount_cents",
        "refund_amount_cents",
        "balance_amount_cents",
    ],
    lago_id=UUID,
    sequential_id=INT,
    number=STR,
    lago_invoice_id=UUID,
    invoice_number=STR,
    issuing_date=DATE,
    credit_status=nullable(enum("available", "consumed", "voided")),
    refund_status=nullable(enum("pending", "succeeded", "failed")),
    reason=STR,
    description=N_STR,
    currency=STR,
    taxes_rate=NUM,
    **{
        f"{name}_amount_cents": INT
        for name in [
            "total",
            "taxes",
            "sub_total_excluding_taxes",
            "balance",
            "credit",
            "refund",
            "offset",
            "coupons_adjustment",
        ]
    },
    created_at=DATETIME,
    updated_at=DATETIME,
    file_url=N_STR,
    items=array(
        obj(
            ["lago_id", "amount_cents", "fee"],
            lago_id=UUID,
            amount_cents=INT,
            amount_currency=STR,
            fee=ref("Fee"),
        )
    ),
    customer=ref("Customer"),
    metadata=STR_MAP,
)
CREDIT_NOTE_INPUT = obj(
    ["invoice_id"],
    invoice_id=UUID,
    reason=enum(
        "duplicated_charge",
        "product_unsatisfactory",
        "order_change",
        "order_cancellation",
        "fraudulent_charge",
        "other",
    ),
    description=N_STR,
    credit_amount_cents=INT,
    refund_amount_cents=INT,
    offset_amount_cents=INT,
    items=array(obj(["fee_id", "amount_cents"], fee_id=UUID, amount_cents=INT)),
    metadata=nullable(STR_MAP),
)
ESTIMATED_CREDIT_NOTE = obj(
    ["lago_invoice_id", "currency", "max_creditable_amount_cents", "items"],
    lago_invoice_id=UUID,
    invoice_number=STR,
    currency=STR,
    taxes_amount_cents=INT,
    taxes_rate=NUM,
    sub_total_excluding_taxes_amount_cents=INT,
    max_creditable_amount_cents=INT,
    max_refundable_amount_cents=INT,
    max_offsettable_amount_cents=INT,
    items=array(obj(["amount_cents", "lago_fee_id"], amount_cents=INT, lago_fee_id=UUID)),
)
ADD_ON = obj(
    ["lago_id", "name", "code", "amount_cents", "amount_currency", "created_at"],
    lago_id=UUID,
    name=STR,
    invoice_display_name=N_STR,
    code=STR,
    amount_cents=INT,
    amount_currency=STR,
    description=N_STR,
    created_at=DATETIME,
    taxes=array(ref("Tax")),
)
ADD_ON_INPUT = obj(
    name=STR,
    code=STR,
    amount_cents=INT,
    amount_currency=CURRENCY,
    invoice_display_name=N_STR,
    description=N_STR,
    tax_codes=nullable(array(STR)),
)
COUPON = obj(
    ["lago_id", "name", "code", "created_at", "expiration"],
    lago_id=UUID,
    name=STR,
    code=STR,
    description=N_STR,
    coupon_type=enum("fixed_amount", "percentage"),
    amount_cents=N_INT,
    amount_currency=N_STR,
    percentage_rate=nullable(DECIMAL),
    frequency=enum("once", "recurring", "forever"),
    frequency_duration=N_INT,
    reusable=BOOL,
    limited_plans=BOOL,
    plan_codes=array(STR),
    limited_billable_metrics=BOOL,
    billable_metric_codes=array(STR),
    created_at=DATETIME,
    expiration=enum("no_expiration", "time_limit"),
    expiration_at=N_DATETIME,
    terminated_at=N_DATETIME,
)
COUPON_INPUT = obj(
    name=STR,
    code=STR,
    description=N_STR,
    coupon_type=enum("fixed_amount", "percentage"),
    amount_cents=N_INT,
    amount_currency=N_STR,
    percentage_rate=nullable({"type": ["string", "number"]}),
    frequency=enum("once", "recurring", "forever"),
    frequency_duration=N_INT,
    reusable=BOOL,
    expiration=enum("no_expiration", "time_limit"),
    expiration_at=nullable(DATETIME),
    applies_to=nullable(obj(plan_codes=array(STR), billable_metric_codes=array(STR))),
)
APPLIED_COUPON = obj(
    ["lago_id", "lago_coupon_id", "coupon_code", "external_customer_id", "status"],
    lago_id=UUID,
    lago_coupon_id=UUID,
    coupon_code=STR,
    coupon_name=STR,
    lago_customer_id=UUID,
    external_customer_id=STR,
    status=enum("active", "terminated"),
    amount_cents=N_INT,
    amount_cents_remaining=N_INT,
    amount_currency=N_STR,
    percentage_rate=nullable(DECIMAL),
    frequency=STR,
    frequency_duration=N_INT,
    frequency_duration_remaining=N_INT,
    expiration_at=N_DATETIME,
    created_at=DATETIME,
    terminated_at=N_DATETIME,
    credits=array(ref("Credit")),
)
WALLET = obj(
    ["lago_id", "lago_customer_id", "external_customer_id", "status", "currency"],
    lago_id=UUID,
    lago_customer_id=UUID,
    external_customer_id=STR,
    status=enum("active", "terminated"),
    currency=STR,
    name=N_STR,
    rate_amount=DECIMAL,
    credits_balance=DECIMAL,
    balance_cents=INT,
    consumed_credits=DECIMAL,
    created_at=DATETIME,
    expiration_at=N_DATETIME,
    terminated_at=N_DATETIME,
    ongoing_balance_cents=INT,
    ongoing_usage_balance_cents=INT,
    credits_ongoing_balance=DECIMAL,
    credits_ongoing_usage_balance=DECIMAL,
)
WALLET_INPUT = obj(
    external_customer_id=STR,
    currency=CURRENCY,
    rate_amount={"type": ["string", "number"]},
    name=N_STR,
    paid_credits=nullable({"type": ["string", "number"]}),
    granted_credits=nullable({"type": ["string", "number"]}),
    expiration_at=nullable(DATETIME),
)
WALLET_TRANSACTION = obj(
    ["lago_id", "lago_wallet_id", "status", "transaction_status", "transaction_type"],
    lago_id=UUID,
    lago_wallet_id=UUID,
    lago_invoice_id=N_UUID,
    status=enum("pending", "settled", "failed"),
    transaction_status=enum("purchased", "granted", "voided", "invoiced"),
    transaction_type=enum("inbound", "outbound"),
    amount=DECIMAL,
    amount_cents=INT,
    credit_amount=DECIMAL,
    settled_at=N_DATETIME,
    failed_at=N_DATETIME,
    created_at=DATETIME,
)
WEBHOOK_ENDPOINT = obj(
    ["lago_id", "lago_organization_id", "webhook_url", "signature_algo", "created_at"],
    lago_id=UUID,
    lago_organization_id=UUID,
    webhook_url=STR,
    signature_algo=enum("jwt", "hmac"),
    name=N_STR,
    event_types=nullable(array(STR)),
    created_at=DATETIME,
)
WEBHOOK_ENDPOINT_INPUT = obj(
    webhook_url={"type": "string", "format": "uri"},
    signature_algo=nullable(enum("jwt", "hmac")),
    name=N_STR,
    event_types=nullable(array(STR)),
)
ACTIVITY_LOG = obj(
    ["activity_id", "activity_type", "activity_source", "resource_type", "logged_at"],
    activity_id=UUID,
    activity_type=STR,
    activity_source=enum("api", "front", "system"),
    activity_object=nullable(ANY_OBJECT),
    activity_object_changes=ANY_OBJECT,
    user_email=N_STR,
    resource_id=N_STR,
    resource_type=STR,
    external_customer_id=N_STR,
    external_subscription_id=N_STR,
    logged_at=DATETIME,
    created_at=DATETIME,
    api_key_id=N_STR,
)
MONTH = {**DATETIME, "description": "The first instant of the month (UTC)."}


def with_required(schema: Schema, *names: str) -> Schema:
    """The same input with the fields a creation must give (an update may give any)."""
    return {**schema, "required": list(names)}


SCHEMAS: dict[str, Schema] = {
    "PaginationMeta": obj(
        ["current_page", "total_pages", "total_count"],
        current_page=INT,
        next_page=N_INT,
        prev_page=N_INT,
        total_pages=INT,
        total_count=INT,
    ),
    "Error400": _error(400, "BadRequest: param is missing or the value is empty or invalid", False),
    "Error401": {
        **_error(401, "Unauthorized", False),
        "additionalProperties": False,
    },
    "Error404": _error(404, "Not Found", True, "customer_not_found"),
    "Error405": _error(405, "Method Not Allowed", True, "not_voidable"),
    "Error422": {
        **_error(422, "Unprocessable Entity", True, "validation_errors"),
        "required": ["status", "error", "code", "error_details"],
    },
    "Tax": TAX,
    "TaxInput": obj(
        name=STR,
        code=STR,
        rate={"type": ["string", "number"]},
        description=N_STR,
        applied_to_organization=BOOL,
    ),
    "Customer": CUSTOMER,
    "CustomerInput": CUSTOMER_INPUT,
    "BillableMetric": METRIC,
    "BillableMetricInput": METRIC_INPUT,
    "ChargeFilter": CHARGE_FILTER,
    "ChargeFilterInput": CHARGE_FILTER_INPUT,
    "Charge": CHARGE,
    "ChargeInput": CHARGE_INPUT,
    "Plan": PLAN,
    "PlanInput": PLAN_INPUT,
    "Subscription": SUBSCRIPTION,
    "SubscriptionInput": SUBSCRIPTION_INPUT,
    "Event": EVENT,
    "EventInput": EVENT_INPUT,
    "CustomerUsage": CUSTOMER_USAGE,
    "Fee": FEE,
    "Credit": CREDIT,
    "Invoice": INVOICE,
    "OneOffInvoiceInput": obj(
        ["external_customer_id", "fees"],
        external_customer_id=STR,
        currency=CURRENCY,
        fees=array(
            obj(
                ["add_on_code"],
                add_on_code=STR,
                units={"type": ["string", "number", "null"]},
                unit_amount_cents={"type": ["integer", "null"]},
                description=N_STR,
                invoice_display_name=N_STR,
                tax_codes=nullable(array(STR)),
            )
        ),
    ),
    "InvoiceUpdateInput": obj(
        payment_status=enum("pending", "succeeded", "failed"),
        metadata=array(obj(["key", "value"], id=N_STR, key=STR, value=STR)),
    ),
    "CreditNote": CREDIT_NOTE,
    "CreditNoteInput": CREDIT_NOTE_INPUT,
    "EstimatedCreditNote": ESTIMATED_CREDIT_NOTE,
    "AddOn": ADD_ON,
    "AddOnInput": ADD_ON_INPUT,
    "Coupon": COUPON,
    "CouponInput": COUPON_INPUT,
    "AppliedCoupon": APPLIED_COUPON,
    "AppliedCouponInput": obj(
        ["external_customer_id", "coupon_code"],
        external_customer_id=STR,
        coupon_code=STR,
        amount_cents=N_INT,
        amount_currency=N_STR,
        percentage_rate=nullable({"type": ["string", "number"]}),
        frequency=nullable(enum("once", "recurring", "forever")),
        frequency_duration=N_INT,
    ),
    "Wallet": WALLET,
    "WalletInput": WALLET_INPUT,
    "WalletTransaction": WALLET_TRANSACTION,
    "WalletTransactionInput": obj(
        ["wallet_id"],
        wallet_id=UUID,
        paid_credits=nullable({"type": ["string", "number"]}),
        granted_credits=nullable({"type": ["string", "number"]}),
        voided_credits=nullable({"type": ["string", "number"]}),
    ),
    "WebhookEndpoint": WEBHOOK_ENDPOINT,
    "WebhookEndpointInput": WEBHOOK_ENDPOINT_INPUT,
    "Payment": obj(
        lago_id=UUID,
        invoice_ids=array(UUID),
        invoice_numbers=array(STR),
        amount_cents=INT,
        amount_currency=CURRENCY,
        payment_status=enum("succeeded", "failed", "refunded"),
        type=enum("manual", "provider"),
        reference=STR,
        external_payment_id=N_STR,
        created_at=DATETIME,
        lago_customer_id=UUID,
        external_customer_id=STR,
        paid_at=N_DATETIME,
        method=N_STR,
        refunded_amount_cents=INT,
        provider=N_STR,
    ),
    "PaymentInput": obj(
        ("invoice_id", "amount_cents", "reference"),
        invoice_id=UUID,
        amount_cents={"type": "integer", "minimum": 1, "description": "At most what is due."},
        reference={"type": "string", "maxLength": 40},
        paid_at={
            **DATETIME,
            "description": "ISO 8601 date or date-time, not in the future; absent means now.",
        },
        method=enum("bank_transfer", "card", "cash", "check", "direct_debit", "other"),
    ),
    "ActivityLog": ACTIVITY_LOG,
    "GrossRevenue": obj(
        ["month", "amount_cents", "currency", "invoices_count"],
        month=MONTH,
        amount_cents=INT,
        currency=STR,
        invoices_count=INT,
        billing_entity_id=N_STR,
    ),
    "OverdueBalance": obj(
        ["month", "amount_cents", "currency", "lago_invoice_ids"],
        month=MONTH,
        amount_cents=INT,
        currency=STR,
        lago_invoice_ids=array(UUID),
        billing_entity_id=N_STR,
    ),
    "InvoicedUsage": obj(
        ["month", "code", "amount_cents", "currency"],
        month=MONTH,
        code=STR,
        amount_cents=INT,
        currency=STR,
    ),
    "Mrr": obj(["month", "amount_cents", "currency"], month=MONTH, amount_cents=INT, currency=STR),
    "InvoiceCollection": obj(
        ["month", "payment_status", "invoices_count", "amount_cents", "currency"],
        month=MONTH,
        payment_status=STR,
        invoices_count=INT,
        amount_cents=INT,
        currency=STR,
    ),
}

#: what a creation must give; the `…Input` schemas describe updates (any subset)
CREATE_REQUIRED: dict[str, tuple[str, ...]] = {
    "BillableMetric": ("name", "code", "aggregation_type"),
    "Plan": ("name", "code", "interval", "amount_cents", "amount_currency"),
    "Subscription": ("external_customer_id", "plan_code", "external_id"),
    "Tax": ("name", "code", "rate"),
    "AddOn": ("name", "code", "amount_cents", "amount_currency"),
    "Coupon": ("name", "code", "coupon_type"),
    "Wallet": ("external_customer_id", "currency", "rate_amount"),
    "WebhookEndpoint": ("webhook_url",),
}
for _name, _required in CREATE_REQUIRED.items():
    SCHEMAS[f"{_name}CreateInput"] = with_required(SCHEMAS[f"{_name}Input"], *_required)

# ---------------------------------------------------------------------------------------------
# Operations


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    tag: str
    summary: str
    ok: Schema | None
    params: tuple[dict[str, Any], ...] = ()
    body: Schema | None = None
    #: the body may be absent (Lago's action endpoints are called with none)
    body_optional: bool = False
    description: str = ""
    not_found: bool = False
    validates: bool = False
    not_allowed: bool = False
    public: bool = False
    #: a response that is not JSON: (media type, description)
    raw: tuple[str, str] | None = None
    extra_responses: dict[str, Any] = field(default_factory=dict)


def member_ops(
    path: str, tag: str, noun: str, root: str, schema: str, remove: str = "Delete"
) -> list[Operation]:
    """Retrieve, update (body: the `…Input` schema) and delete one object at `path`."""
    return [
        Operation(
            method,
            path,
            tag,
            f"{summary} {noun}",
            one(root, ref(schema)),
            body=body(root, ref(f"{schema}Input")) if method == "put" else None,
        )
        for method, summary in (("get", "Retrieve"), ("put", "Update"), ("delete", remove))
    ]


def _ops() -> list[Operation]:
    R = ref
    ops: list[Operation] = []
    add = ops.append

    # --- customers
    customer_filters = (
        *PAGINATION,
        query("search_term", STR, "Names, e-mails, external ids, metadata values and CRM ids."),
        query("external_id"),
        query("customer_type", enum("company", "individual")),
        query("has_customer_type", BOOL),
        query_list("account_type", enum("customer", "partner")),
        query_list("currencies"),
        query_list("countries"),
        query_list("states"),
        query_list("zipcodes"),
        query("has_tax_identification_number", BOOL),
    )
    add(
        Operation(
            "post",
            "/customers",
            "Customers",
            "Create or update a customer (upsert by external_id)",
            one("customer", R("Customer")),
            body=body(
                "customer",
                R("CustomerInput"),
                {"external_id": "acme", "name": "Acme", "currency": "EUR", "country": "FR"},
            ),
        )
    )
    add(
        Operation(
            "get",
            "/customers",
            "Customers",
            "List customers",
            listed("customers", R("Customer")),
            customer_filters,
            validates=True,
            not_found=True,
            description="`metadata[<key>]=<value>` filters on metadata too. A "
            "`billing_entity_codes[]` filter is 404 `billing_entity_not_found` "
            "(billing entities are not built).",
        )
    )
    add(Operation("get", "/customers/{external_id}", "Customers", "Retrieve a customer",
                  one("customer", R("Customer"))))  # fmt: skip
    add(
        Operation(
            "delete",
            "/customers/{external_id}",
            "Customers",
            "Delete a customer",
            one("customer", R("Customer")),
            description="Soft delete: subscriptions are terminated, drafts finalized; the "
            "external_id is free again.",
        )
    )
    add(
        Operation(
            "get",
            "/customers/{external_id}/portal_url",
            "Customers",
            "Get the customer's portal link",
            one("customer", obj(["portal_url"], portal_url={"type": "string", "format": "uri"})),
            description="A signed link to the customer portal, valid 12 hours.",
        )
    )
    add(
        Operation(
            "get",
            "/customers/{external_id}/current_usage",
            "Customers",
            "Current usage of a subscription",
            one("customer_usage", R("CustomerUsage")),
            (
                query("external_subscription_id", STR, "The subscription's external id."),
                query("apply_taxes", BOOL, "Include taxes (default true)."),
            ),
            not_allowed=True,
            description="405 `no_active_subscription` when the subscription is not active.",
        )
    )
    add(
        Operation(
            "get",
            "/customers/{external_id}/past_usage",
            "Customers",
            "Usage of invoiced periods",
            listed("usage_periods", R("CustomerUsage")),
            (
                query("external_subscription_id", STR, "Required."),
                query("billable_metric_code"),
                query("periods_count", {"type": "integer", "minimum": 1}),
                *PAGINATION,
            ),
            validates=True,
        )
    )

    # --- billable metrics
    add(
        Operation(
            "post",
            "/billable_metrics",
            "Billable metrics",
            "Create a billable metric",
            one("billable_metric", R("BillableMetric")),
            body=body(
                "billable_metric",
                R("BillableMetricCreateInput"),
                {"name": "API calls", "code": "api_calls", "aggregation_type": "count_agg"},
            ),
        )
    )
    add(Operation("get", "/billable_metrics", "Billable metrics", "List billable metrics",
                  listed("billable_metrics", R("BillableMetric")),
                  (*PAGINATION, SEARCH)))  # fmt: skip
    ops += member_ops(
        "/billable_metrics/{code}",
        "Billable metrics",
        "a billable metric",
        "billable_metric",
        "BillableMetric",
    )

    # --- plans, charges, charge filters, metadata
    add(
        Operation(
            "post",
            "/plans",
            "Plans",
            "Create a plan",
            one("plan", R("Plan")),
            body=body(
                "plan",
                R("PlanCreateInput"),
                {
                    "name": "Startup",
                    "code": "startup",
                    "interval": "monthly",
                    "amount_cents": 10000,
                    "amount_currency": "EUR",
                    "pay_in_advance": True,
                    "charges": [
                        {
                            "billable_metric_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
                            "charge_model": "standard",
                            "properties": {"amount": "0.5"},
                        }
                    ],
                },
            ),
        )
    )
    add(Operation("get", "/plans", "Plans", "List plans", listed("plans", R("Plan")),
                  (*PAGINATION, SEARCH)))  # fmt: skip
    for method, summary in (("get", "Retrieve"), ("put", "Update"), ("delete", "Delete")):
        add(
            Operation(
                method,
                "/plans/{code}",
                "Plans",
                f"{summary} a plan",
                one("plan", R("Plan")),
                body=body("plan", R("PlanInput")) if method == "put" else None,
                not_allowed=method == "delete",
                description="A plan with active or pending subscriptions cannot be deleted."
                if method == "delete"
                else "",
            )
        )
    add(Operation("get", "/plans/{code}/charges", "Plans", "List a plan's charges",
                  listed("charges", R("Charge")), PAGINATION))  # fmt: skip
    add(Operation("post", "/plans/{code}/charges", "Plans", "Add a charge to a plan",
                  one("charge", R("Charge")), body=body("charge", R("ChargeInput"))))  # fmt: skip
    ops += member_ops(
        "/plans/{code}/charges/{charge_code}",
        "Plans",
        "a charge",
        "charge",
        "Charge",
        remove="Remove",
    )
    filters_path = "/plans/{code}/charges/{charge_code}/filters"
    add(Operation("get", filters_path, "Plans", "List a charge's filters",
                  listed("filters", R("ChargeFilter")), PAGINATION))  # fmt: skip
    add(Operation("post", filters_path, "Plans", "Add a filter to a charge",
                  one("filter", R("ChargeFilter")),
                  body=body("filter", R("ChargeFilterInput"))))  # fmt: skip
    for method, summary in (("get", "Retrieve"), ("put", "Update"), ("delete", "Remove")):
        add(
            Operation(
                method,
                filters_path + "/{lago_id}",
                "Plans",
                f"{summary} a charge filter",
                one("filter", R("ChargeFilter")),
                body=body("filter", R("ChargeFilterInput")) if method == "put" else None,
            )
        )
    metadata_answer = one("metadata", nullable(STR_MAP))
    add(Operation("post", "/plans/{code}/metadata", "Plans", "Replace a plan's metadata",
                  metadata_answer, body=body("metadata", STR_MAP)))  # fmt: skip
    add(Operation("patch", "/plans/{code}/metadata", "Plans", "Merge keys into a plan's metadata",
                  metadata_answer, body=body("metadata", STR_MAP)))  # fmt: skip
    add(Operation("delete", "/plans/{code}/metadata", "Plans", "Remove a plan's metadata",
                  metadata_answer))  # fmt: skip
    add(Operation("delete", "/plans/{code}/metadata/{key}", "Plans",
                  "Remove one key of a plan's metadata", metadata_answer))  # fmt: skip

    # --- subscriptions
    status_param = query(
        "status", enum("active", "pending", "terminated", "canceled"), "Default `active`."
    )
    add(
        Operation(
            "post",
            "/subscriptions",
            "Subscriptions",
            "Subscribe a customer to a plan (or change its plan)",
            one("subscription", R("Subscription")),
            body=body(
                "subscription",
                R("SubscriptionCreateInput"),
                {"external_customer_id": "acme", "plan_code": "startup", "external_id": "sub-1"},
            ),
            not_found=True,
            description="An unknown customer is created; an unknown plan is 404 `plan_not_found`.",
        )
    )
    add(
        Operation(
            "get",
            "/subscriptions",
            "Subscriptions",
            "List subscriptions",
            listed("subscriptions", R("Subscription")),
            (
                *PAGINATION,
                query("external_customer_id"),
                query("plan_code"),
                query_list("status", enum("active", "pending", "terminated", "canceled")),
                query("currency"),
            ),
        )
    )
    add(Operation("get", "/subscriptions/{external_id}", "Subscriptions",
                  "Retrieve a subscription", one("subscription", R("Subscription")),
                  (status_param,)))  # fmt: skip
    add(
        Operation(
            "put",
            "/subscriptions/{external_id}",
            "Subscriptions",
            "Update a subscription",
            one("subscription", R("Subscription")),
            (status_param,),
            body=body("subscription", R("SubscriptionInput")),
        )
    )
    add(
        Operation(
            "delete",
            "/subscriptions/{external_id}",
            "Subscriptions",
            "Terminate a subscription",
            one("subscription", R("Subscription")),
            (
                status_param,
                query("on_termination_invoice", enum("generate", "skip")),
                query("on_termination_credit_note", enum("credit", "refund", "skip")),
            ),
            validates=True,
            not_allowed=True,
        )
    )

    # --- events
    add(
        Operation(
            "post",
            "/events",
            "Events",
            "Send a usage event",
            one("event", R("Event")),
            body=body(
                "event",
                R("EventInput"),
                {
                    "transaction_id": "tr_1",
                    "external_subscription_id": "sub-1",
                    "code": "api_calls",
                    "timestamp": 1733011200,
                    "properties": {"region": "eu"},
                },
            ),
            description="Idempotent: an identical replay answers the stored event.",
        )
    )
    add(
        Operation(
            "post",
            "/events/batch",
            "Events",
            "Send up to 100 usage events",
            unpaginated("events", R("Event")),
            body=obj(["events"], events=array(R("EventInput"))),
            description="All or nothing; errors are keyed by the event's index.",
        )
    )
    add(
        Operation(
            "get",
            "/events",
            "Events",
            "List events",
            listed("events", R("Event")),
            (
                *PAGINATION,
                query("external_subscription_id"),
                query("code"),
                query("timestamp_from", DATETIME),
                query("timestamp_to", DATETIME),
            ),
            validates=True,
        )
    )
    add(Operation("get", "/events/{transaction_id}", "Events", "Retrieve an event",
                  one("event", R("Event")),
                  (query("external_subscription_id"),)))  # fmt: skip

    # --- invoices
    invoice_filters = (
        *PAGINATION,
        query_list("status", enum("draft", "finalized", "voided", "closed", "failed", "pending")),
        query_list("payment_status", enum("pending", "succeeded", "failed")),
        query("payment_overdue", BOOL),
        query("invoice_type"),
        query("currency"),
        query("issuing_date_from", DATE),
        query("issuing_date_to", DATE),
        query("amount_from", INT),
        query("amount_to", INT),
        query("search_term"),
        query("partially_paid", BOOL),
        query("payment_dispute_lost", BOOL, "No disputes in Ledgerline: `true` matches nothing."),
        query("self_billed", BOOL, "No self-billing in Ledgerline: `true` matches nothing."),
        query(
            "purchase_order_number",
            STR,
            "No purchase order numbers in Ledgerline: a number matches nothing.",
        ),
        query_list(
            "settlements",
            enum("payment", "credit_note"),
            "Invoices settled (in part) by any of these: a recorded payment, a credit note offset.",
        ),
        query_list(
            "billing_entity_codes",
            STR,
            "404 `billing_entity_not_found` for any code (billing entities are not built).",
        ),
    )
    invoice_list_description = (
        "`metadata[<key>]=<value>` filters on the invoice's metadata (every pair must match; "
        "an empty value means the key is absent)."
    )
    add(
        Operation(
            "post",
            "/invoices",
            "Invoices",
            "Create a one-off invoice (add-ons)",
            one("invoice", R("Invoice")),
            body=body(
                "invoice",
                R("OneOffInvoiceInput"),
                {"external_customer_id": "acme", "fees": [{"add_on_code": "setup", "units": 1}]},
            ),
            not_found=True,
        )
    )
    add(
        Operation(
            "get",
            "/invoices",
            "Invoices",
            "List invoices",
            listed("invoices", R("Invoice")),
            (*invoice_filters, query("external_customer_id")),
            validates=True,
            not_found=True,
            description=invoice_list_description,
        )
    )
    add(Operation("get", "/customers/{external_id}/invoices", "Invoices",
                  "List a customer's invoices", listed("invoices", R("Invoice")),
                  invoice_filters, validates=True, not_found=True,
                  description=invoice_list_description))  # fmt: skip
    add(Operation("get", "/invoices/{lago_id}", "Invoices", "Retrieve an invoice",
                  one("invoice", R("Invoice"))))  # fmt: skip
    add(
        Operation(
            "put",
            "/invoices/{lago_id}",
            "Invoices",
            "Update an invoice's payment status or metadata",
            one("invoice", R("Invoice")),
            body=body("invoice", R("InvoiceUpdateInput")),
            not_allowed=True,
        )
    )
    add(
        Operation(
            "put",
            "/invoices/{lago_id}/finalize",
            "Invoices",
            "Finalize a draft invoice",
            one("invoice", R("Invoice")),
            body=ANY_OBJECT,
            body_optional=True,
        )
    )
    add(
        Operation(
            "put",
            "/invoices/{lago_id}/refresh",
            "Invoices",
            "Refresh a draft invoice",
            one("invoice", R("Invoice")),
            body=ANY_OBJECT,
            body_optional=True,
        )
    )
    add(
        Operation(
            "post",
            "/invoices/{lago_id}/void",
            "Invoices",
            "Void an invoice",
            one("invoice", R("Invoice")),
            body=obj(
                generate_credit_note=BOOL,
                credit_amount=INT,
                refund_amount=INT,
            ),
            body_optional=True,
            not_allowed=True,
            validates=True,
        )
    )
    for suffix in ("download", "download_pdf"):
        add(
            Operation(
                "post",
                f"/invoices/{{lago_id}}/{suffix}",
                "Invoices",
                "Render the invoice's PDF and get its link",
                one("invoice", R("Invoice")),
                body=ANY_OBJECT,
                body_optional=True,
            )
        )

    add(
        Operation(
            "post",
            "/invoices/{lago_id}/resend_email",
            "Invoices",
            "E-mail a finalized invoice again (PDF attached)",
            one("invoice", R("Invoice")),
            body=obj(to=array(STR), cc=array(STR), bcc=array(STR)),
            body_optional=True,
            not_allowed=True,
            description="`to`, `cc` and `bcc` replace the customer's addresses for this "
            "message. A draft or voided invoice is 405 `invalid_status`.",
        )
    )

    # --- payments
    payment_filters = (
        *PAGINATION,
        query("invoice_id", UUID),
        query("external_customer_id"),
    )
    add(
        Operation(
            "post",
            "/payments",
            "Payments",
            "Record a manual payment of a finalized invoice",
            one("payment", R("Payment")),
            body=body(
                "payment",
                R("PaymentInput"),
                {"invoice_id": "1a901a90-1a90-1a90-1a90-1a901a901a90", "amount_cents": 5000,
                 "reference": "Wire 2026-11-30"},
            ),
            not_allowed=True,
            description="A payment above what is due is 422 `amount_cents: greater_than`; "
            "a draft, voided or closed invoice is 405.",
        )
    )  # fmt: skip
    add(
        Operation(
            "get",
            "/payments",
            "Payments",
            "List payments (newest first)",
            listed("payments", R("Payment")),
            payment_filters,
            validates=True,
        )
    )
    add(
        Operation(
            "get",
            "/payments/{lago_id}",
            "Payments",
            "Retrieve a payment",
            one("payment", R("Payment")),
        )
    )
    add(Operation("get", "/customers/{external_id}/payments", "Payments",
                  "List a customer's payments", listed("payments", R("Payment")), PAGINATION,
                  validates=True))  # fmt: skip

    # --- credit notes
    add(
        Operation(
            "post",
            "/credit_notes",
            "Credit notes",
            "Create a credit note",
            one("credit_note", R("CreditNote")),
            body=body("credit_note", R("CreditNoteInput")),
            not_found=True,
            not_allowed=True,
        )
    )
    add(
        Operation(
            "post",
            "/credit_notes/estimate",
            "Credit notes",
            "Estimate a credit note",
            one("estimated_credit_note", R("EstimatedCreditNote")),
            body=body("credit_note", R("CreditNoteInput")),
            not_found=True,
            not_allowed=True,
        )
    )
    add(
        Operation(
            "get",
            "/credit_notes",
            "Credit notes",
            "List credit notes",
            listed("credit_notes", R("CreditNote")),
            (
                *PAGINATION,
                query("external_customer_id"),
                query("issuing_date_from", DATE),
                query("issuing_date_to", DATE),
                query("search_term"),
                query("currency"),
                query_list("reason"),
                query_list("credit_status", enum("available", "consumed", "voided")),
                query_list("refund_status", enum("pending", "succeeded", "failed")),
                query("invoice_number"),
                query("amount_from", INT),
                query("amount_to", INT),
                query("self_billed", BOOL),
            ),
            validates=True,
            not_found=True,
        )
    )
    add(Operation("get", "/credit_notes/{lago_id}", "Credit notes", "Retrieve a credit note",
                  one("credit_note", R("CreditNote"))))  # fmt: skip
    add(
        Operation(
            "put",
            "/credit_notes/{lago_id}",
            "Credit notes",
            "Update a credit note's refund status",
            one("credit_note", R("CreditNote")),
            body=body(
                "credit_note",
                obj(refund_status=enum("pending", "succeeded", "failed"), metadata=STR_MAP),
            ),
        )
    )
    add(
        Operation(
            "put",
            "/credit_notes/{lago_id}/void",
            "Credit notes",
            "Void the credit left on a credit note",
            one("credit_note", R("CreditNote")),
            body=ANY_OBJECT,
            body_optional=True,
            not_allowed=True,
        )
    )
    cn_metadata = one("metadata", STR_MAP)
    add(Operation("post", "/credit_notes/{lago_id}/metadata", "Credit notes",
                  "Replace a credit note's metadata", cn_metadata,
                  body=body("metadata", STR_MAP)))  # fmt: skip
    add(Operation("patch", "/credit_notes/{lago_id}/metadata", "Credit notes",
                  "Merge keys into a credit note's metadata", cn_metadata,
                  body=body("metadata", STR_MAP)))  # fmt: skip
    add(Operation("delete", "/credit_notes/{lago_id}/metadata", "Credit notes",
                  "Remove a credit note's metadata", cn_metadata))  # fmt: skip
    add(Operation("delete", "/credit_notes/{lago_id}/metadata/{key}", "Credit notes",
                  "Remove one key of a credit note's metadata", cn_metadata))  # fmt: skip
    for suffix in ("download", "download_pdf"):
        add(
            Operation(
                "post",
                f"/credit_notes/{{lago_id}}/{suffix}",
                "Credit notes",
                "Render the credit note's PDF and get its link",
                one("credit_note", R("CreditNote")),
                body=ANY_OBJECT,
                body_optional=True,
            )
        )
    add(
        Operation(
            "get",
            "/credit_notes/{lago_id}/pdf",
            "Credit notes",
            "Download the credit note's PDF",
            None,
            raw=("application/pdf", "The PDF, rendered now in the customer's language."),
        )
    )

    # --- taxes
    add(Operation("post", "/taxes", "Taxes", "Create a tax", one("tax", R("Tax")),
                  body=body("tax", R("TaxCreateInput"),
                            {"name": "VAT", "code": "vat_fr", "rate": "20.0"})))  # fmt: skip
    add(Operation("get", "/taxes", "Taxes", "List taxes", listed("taxes", R("Tax")),
                  (*PAGINATION, SEARCH)))  # fmt: skip
    ops += member_ops("/taxes/{code}", "Taxes", "a tax", "tax", "Tax")

    # --- add-ons
    add(Operation("post", "/add_ons", "Add-ons", "Create an add-on", one("add_on", R("AddOn")),
                  body=body("add_on", R("AddOnCreateInput"),
                            {"name": "Setup", "code": "setup", "amount_cents": 50000,
                             "amount_currency": "EUR"})))  # fmt: skip
    add(Operation("get", "/add_ons", "Add-ons", "List add-ons", listed("add_ons", R("AddOn")),
                  (*PAGINATION, SEARCH)))  # fmt: skip
    ops += member_ops("/add_ons/{code}", "Add-ons", "an add-on", "add_on", "AddOn")

    # --- coupons
    add(Operation("post", "/coupons", "Coupons", "Create a coupon", one("coupon", R("Coupon")),
                  body=body("coupon", R("CouponCreateInput"),
                            {"name": "Welcome", "code": "welcome", "coupon_type": "fixed_amount",
                             "amount_cents": 1000, "amount_currency": "EUR",
                             "frequency": "once", "expiration": "no_expiration"}),
                  not_found=True))  # fmt: skip
    add(Operation("get", "/coupons", "Coupons", "List coupons", listed("coupons", R("Coupon")),
                  (*PAGINATION, SEARCH)))  # fmt: skip
    ops += member_ops("/coupons/{code}", "Coupons", "a coupon", "coupon", "Coupon")
    applied_filters = (
        *PAGINATION,
        query("status", enum("active", "terminated")),
        query_list("coupon_code"),
    )
    add(Operation("post", "/applied_coupons", "Coupons", "Apply a coupon to a customer",
                  one("applied_coupon", R("AppliedCoupon")),
                  body=body("applied_coupon", R("AppliedCouponInput")),
                  not_found=True))  # fmt: skip
    add(Operation("get", "/applied_coupons", "Coupons", "List applied coupons",
                  listed("applied_coupons", R("AppliedCoupon")),
                  (*applied_filters, query("external_customer_id")), validates=True))  # fmt: skip
    add(Operation("get", "/customers/{external_id}/applied_coupons", "Coupons",
                  "List a customer's applied coupons",
                  listed("applied_coupons", R("AppliedCoupon")), applied_filters,
                  validates=True))  # fmt: skip
    add(Operation("delete", "/customers/{external_id}/applied_coupons/{applied_coupon_id}",
                  "Coupons", "Remove an applied coupon",
                  one("applied_coupon", R("AppliedCoupon")), not_allowed=True))  # fmt: skip

    # --- wallets
    add(Operation("post", "/wallets", "Wallets", "Create a wallet", one("wallet", R("Wallet")),
                  body=body("wallet", R("WalletCreateInput"),
                            {"external_customer_id": "acme", "currency": "EUR",
                             "rate_amount": "1.0", "paid_credits": "10.0"}),
                  not_found=True))  # fmt: skip
    add(Operation("get", "/wallets", "Wallets", "List wallets", listed("wallets", R("Wallet")),
                  (*PAGINATION, query("external_customer_id"), query("currency")),
                  not_found=True))  # fmt: skip
    ops += member_ops(
        "/wallets/{lago_id}", "Wallets", "a wallet", "wallet", "Wallet", remove="Terminate"
    )
    add(
        Operation(
            "post",
            "/wallet_transactions",
            "Wallets",
            "Top up or void credits",
            unpaginated("wallet_transactions", R("WalletTransaction")),
            body=body("wallet_transaction", R("WalletTransactionInput")),
            not_allowed=True,
        )
    )
    add(
        Operation(
            "get",
            "/wallets/{lago_id}/wallet_transactions",
            "Wallets",
            "List a wallet's transactions",
            listed("wallet_transactions", R("WalletTransaction")),
            (
                *PAGINATION,
                query_list("status", enum("pending", "settled", "failed")),
                query_list(
                    "transaction_status", enum("purchased", "granted", "voided", "invoiced")
                ),
                query_list("transaction_type", enum("inbound", "outbound")),
            ),
            validates=True,
        )
    )
    add(Operation("get", "/wallet_transactions/{lago_id}", "Wallets",
                  "Retrieve a wallet transaction",
                  one("wallet_transaction", R("WalletTransaction"))))  # fmt: skip

    # --- webhooks
    add(
        Operation(
            "post",
            "/webhook_endpoints",
            "Webhooks",
            "Add a webhook endpoint",
            one("webhook_endpoint", R("WebhookEndpoint")),
            body=body(
                "webhook_endpoint",
                R("WebhookEndpointCreateInput"),
                {"webhook_url": "https://example.com/hooks/billing", "signature_algo": "hmac"},
            ),
            description="At most ten per organization; each URL once.",
        )
    )
    add(Operation("get", "/webhook_endpoints", "Webhooks", "List webhook endpoints",
                  listed("webhook_endpoints", R("WebhookEndpoint")), PAGINATION))  # fmt: skip
    ops += member_ops(
        "/webhook_endpoints/{lago_id}",
        "Webhooks",
        "a webhook endpoint",
        "webhook_endpoint",
        "WebhookEndpoint",
    )
    add(Operation("get", "/webhooks/json_public_key", "Webhooks",
                  "Public key that checks `jwt` signatures",
                  one("webhook", obj(["public_key"], public_key=STR))))  # fmt: skip
    add(Operation("get", "/webhooks/public_key", "Webhooks",
                  "Public key that checks `jwt` signatures (plain text)", None,
                  raw=("text/plain", "The base64 of the PEM public key.")))  # fmt: skip

    # --- analytics
    analytics_params = (
        query("currency"),
        query("external_customer_id"),
        query("months", {"type": "integer", "minimum": 1, "maximum": 1200}),
    )
    for path, root, schema, summary in (
        ("gross_revenue", "gross_revenues", "GrossRevenue", "Gross revenue by month"),
        ("overdue_balance", "overdue_balances", "OverdueBalance", "Overdue balance by month"),
        ("invoiced_usage", "invoiced_usages", "InvoicedUsage", "Invoiced usage by month"),
        ("mrr", "mrrs", "Mrr", "Monthly recurring revenue"),
        ("invoice_collection", "invoice_collections", "InvoiceCollection",
         "Invoices by payment status and month"),
    ):  # fmt: skip
        add(
            Operation(
                "get",
                f"/analytics/{path}",
                "Analytics",
                summary,
                unpaginated(root, R(schema)),
                analytics_params,
                validates=True,
            )
        )

    # --- activity logs
    add(
        Operation(
            "get",
            "/activity_logs",
            "Activity logs",
            "List activity logs",
            listed("activity_logs", R("ActivityLog")),
            (
                *PAGINATION,
                query("from_date", STR, "ISO date or date-time."),
                query("to_date", STR, "ISO date or date-time (a date includes the whole day)."),
                query_list("activity_sources", enum("api", "front", "system")),
                query_list("activity_types"),
                query_list("resource_types"),
                query_list("resource_ids"),
                query_list("user_emails"),
                query("external_customer_id"),
                query("external_subscription_id"),
            ),
            validates=True,
        )
    )
    add(Operation("get", "/activity_logs/{activity_id}", "Activity logs",
                  "Retrieve an activity log entry",
                  one("activity_log", R("ActivityLog"))))  # fmt: skip

    # --- this description
    add(Operation("get", "/openapi.json", "Meta", "This OpenAPI description", ANY_OBJECT,
                  public=True))  # fmt: skip
    add(Operation("get", "/docs", "Meta", "This description as a readable page", None,
                  public=True, raw=("text/html", "The API reference.")))  # fmt: skip
    return ops


OPERATIONS: list[Operation] = _ops()

#: the inbound customer hook: outside /api/v1, signed with the organization's inbound secret
HOOK_PATHS: dict[str, Any] = {
    "/hooks/customers": {
        "post": {
            "tags": ["Inbound hooks"],
            "operationId": "hooks_customers",
            "summary": "Create or update a customer from your backend or CRM (signed)",
            "description": "Authenticated by an HMAC signature of the raw body with the "
            "organization's inbound secret (see billing/services/inbound.py). "
            "`X-Ledgerline-Delivery` makes a delivery idempotent: a repeat gets the first answer.",
            "security": [],
            "parameters": [
                {"name": name, "in": "header", "required": True, "schema": STR}
                for name in (
                    "X-Ledgerline-Organization",
                    "X-Ledgerline-Signature",
                    "X-Ledgerline-Delivery",
                )
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("CustomerInput")}},
            },
            "responses": {
                "200": {
                    "description": "The customer.",
                    "content": {"application/json": {"schema": one("customer", ref("Customer"))}},
                },
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "413": {
                    "description": "The body is over the limit.",
                    "content": {"application/json": {"schema": ref("ErrorAny")}},
                },
                "422": {"$ref": "#/components/responses/ValidationErrors"},
            },
        }
    }
}

_STRIPE_HOOK: dict[str, Any] = {
    "tags": ["Inbound hooks"],
    "summary": "Stripe's webhook: payments succeeded, failed and refunded (signed)",
    "description": "Verified with the organization's Stripe signing secret (`Stripe-Signature`, "
    "300 s tolerance). Without the organization id in the path, every organization with a "
    "secret is tried. A verified event is always 200 (recorded, unmatched or ignored).",
    "security": [],
    "parameters": [{"name": "Stripe-Signature", "in": "header", "required": True, "schema": STR}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": ANY_OBJECT}}},
    "responses": {
        "200": {
            "description": "The event was applied, or acknowledged.",
            "content": {"application/json": {"schema": ANY_OBJECT}},
        },
        "400": {"$ref": "#/components/responses/BadRequest"},
        "413": {
            "description": "The body is over the limit.",
            "content": {"application/json": {"schema": ref("ErrorAny")}},
        },
    },
}
HOOK_PATHS["/hooks/stripe"] = {"post": {**_STRIPE_HOOK, "operationId": "hooks_stripe"}}
HOOK_PATHS["/hooks/stripe/{organization_id}"] = {
    "post": {
        **_STRIPE_HOOK,
        "operationId": "hooks_stripe_organization",
        "parameters": [
            *_STRIPE_HOOK["parameters"],
            {"name": "organization_id", "in": "path", "required": True, "schema": STR},
        ],
    }
}

RESPONSES: dict[str, Any] = {
    "BadRequest": {
        "description": "The body is not JSON, or its root key is missing.",
        "content": {"application/json": {"schema": ref("Error400")}},
    },
    "Unauthorized": {
        "description": "Missing or unknown API key.",
        "content": {
            "application/json": {
                "schema": ref("Error401"),
                "example": {"status": 401, "error": "Unauthorized"},
            }
        },
    },
    "NotFound": {
        "description": "Not found: `code` is `<resource>_not_found`.",
        "content": {
            "application/json": {
                "schema": ref("Error404"),
                "example": {"status": 404, "error": "Not Found", "code": "customer_not_found"},
            }
        },
    },
    "NotAllowed": {
        "description": "Not allowed in the object's current state: `code` says why.",
        "content": {
            "application/json": {
                "schema": ref("Error405"),
                "example": {"status": 405, "error": "Method Not Allowed", "code": "not_voidable"},
            }
        },
    },
    "ValidationErrors": {
        "description": "Validation failed: `error_details` maps each field to error codes.",
        "content": {
            "application/json": {
                "schema": ref("Error422"),
                "example": {
                    "status": 422,
                    "error": "Unprocessable Entity",
                    "code": "validation_errors",
                    "error_details": {"currency": ["value_is_invalid"]},
                },
            }
        },
    },
}

_PATH_PARAM = re.compile(r"{(\w+)}")


def _operation_object(op: Operation) -> dict[str, Any]:
    names = _PATH_PARAM.findall(op.path)
    result: dict[str, Any] = {
        "tags": [op.tag],
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_')}".replace(
            "{", ""
        ).replace("}", ""),
        "summary": op.summary,
    }
    if op.description:
        result["description"] = op.description
    params = [path_param(name, PATH_DESCRIPTIONS.get(name, "")) for name in names]
    params += [copy.deepcopy(p) for p in op.params]
    if params:
        result["parameters"] = params
    if op.body is not None:
        result["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": op.body}},
        }
    responses: dict[str, Any] = {}
    if op.raw is not None:
        media, description = op.raw
        responses["200"] = {"description": description, "content": {media: {"schema": STR}}}
    else:
        responses["200"] = {
            "description": "Success.",
            "content": {"application/json": {"schema": op.ok}},
        }
    if op.body is not None and not op.body_optional:
        responses["400"] = {"$ref": "#/components/responses/BadRequest"}
    if not op.public:
        responses["401"] = {"$ref": "#/components/responses/Unauthorized"}
    # a body may name another object (a tax code, a plan code…) that does not exist
    if names or op.not_found or op.body is not None:
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    if op.not_allowed:
        responses["405"] = {"$ref": "#/components/responses/NotAllowed"}
    # a query parameter with a NUL character is refused (blueprints/api/schemas.py)
    if op.body is not None or op.validates or (op.params and not op.public):
        responses["422"] = {"$ref": "#/components/responses/ValidationErrors"}
    responses.update(op.extra_responses)
    result["responses"] = responses
    if op.public:
        result["security"] = []
    return result


TAGS = [
    ("Customers", "Customers, their usage and their portal link."),
    ("Billable metrics", "What usage events measure and how they aggregate."),
    ("Plans", "Plans with their charges, charge filters and metadata."),
    ("Subscriptions", "A customer on a plan."),
    ("Events", "Usage events (idempotent by transaction_id)."),
    ("Invoices", "Invoices: list, update, finalize, refresh, void, download, e-mail."),
    ("Payments", "Payments of finalized invoices, partial ones included."),
    ("Credit notes", "Credit, refund and offset amounts of finalized invoices."),
    ("Taxes", "Taxes applied to customers, plans, charges and add-ons."),
    ("Add-ons", "One-off items for one-off invoices."),
    ("Coupons", "Coupons and coupons applied to customers."),
    ("Wallets", "Prepaid credits."),
    ("Webhooks", "Outgoing webhook endpoints and the key of their signatures."),
    ("Analytics", "Monthly figures (not paginated)."),
    ("Activity logs", "The audit trail."),
    ("Meta", "This description."),
    ("Inbound hooks", "Signed requests from your backend, CRM or Stripe (outside /api/v1)."),
]


def build_spec(server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh copy each call)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(f"/api/v1{op.path}", {})[op.method] = _operation_object(op)
    paths.update(copy.deepcopy(HOOK_PATHS))
    schemas = copy.deepcopy(SCHEMAS)
    schemas["ErrorAny"] = obj(["status", "error"], status=INT, error=STR)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ledgerline API",
            "version": "1",
            "description": "Ledgerline's REST API follows Lago's v1 API, so Lago's SDKs work "
            "against it unchanged. Every request carries `Authorization: Bearer <api key>`. "
            'Bodies are JSON wrapped in a singular root key (`{"customer": {...}}`); lists '
            "are paginated with `page` and `per_page` and carry `meta`. Every error is JSON "
            "with an integer `status` (Lago's shapes).",
        },
        "servers": [{"url": server_url}],
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An organization's API key (Settings → API keys).",
                }
            },
            "schemas": schemas,
            "responses": copy.deepcopy(RESPONSES),
        },
    }
