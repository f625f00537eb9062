"""Usage events: validation, idempotent ingestion, matching, and the daily usage buckets.

An event is keyed by (organization, external_subscription_id, transaction_id). A replay with the
same fingerprint answers the stored event and counts once (Ledgerline deviates from Lago's 422
here, see lago-api.md); the same key with another payload is refused. Matching happens at
ingestion: the subscription with that external id active at the event's timestamp and the live
metric of its code. An event that cannot be matched (or whose metric value is missing) is stored
with an `error_code`, announced by an `event.error` outbox row, and counts for nothing. Matched
events add to their `UsageBucket` in the same transaction, so reading usage never scans events.

Hot path: Core inserts, one query per kind of lookup for the whole batch, no ORM object per event
and no audit entry (events are their own log).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    Numeric,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite

from billing.aggregation import event_dimensions, event_value
from billing.errors import NotFound, ValidationFailed
from billing.models import (
    BillableMetric,
    Customer,
    Event,
    EventError,
    Organization,
    Subscription,
    SubscriptionStatus,
    UsageBucket,
)
from billing.money import parse_decimal
from billing.periods import local_date
from billing.serializers_usage import serialize_event
from billing.services import driver, outbox
from billing.services.pagination import Page
from billing.timeutil import as_utc, now_utc
from extensions import db

#: Lago's LAGO_EVENTS_BATCH_MAX_LENGTH default
MAX_BATCH_SIZE = 100
#: aggregation types that need a numeric `properties[field_name]` on every event
VALUE_AGGREGATIONS = frozenset({"sum_agg", "max_agg", "latest_agg", "weighted_sum_agg"})
_REQUIRED_FIELDS = ("transaction_id", "external_subscription_id", "code")
_MAX_TEXT = 255
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVENTS: Table = Event.__table__  # type: ignore[assignment]
_BUCKETS: Table = UsageBucket.__table__  # type: ignore[assignment]
_SUBSCRIPTIONS: Table = Subscription.__table__  # type: ignore[assignment]
_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
_METRICS: Table = BillableMetric.__table__  # type: ignore[assignment]
_KEY_COLUMNS = ("organization_id", "transaction_id", "external_subscription_id")
_BUCKET_KEY_COLUMNS = ("subscription_id", "billable_metric_id", "day", "dimensions")


class OrganizationRef(NamedTuple):
    """What ingestion needs of an organization: the API reads it with the key, no model."""

    id: int
    timezone: str


#: an Organization model or its reference
OrganizationLike = Organization | OrganizationRef


class EventInput(NamedTuple):
    """One validated event of a request (a named tuple: a batch makes a hundred at a time, and
    a frozen dataclass costs several times as much to build)."""

    transaction_id: str
    external_subscription_id: str
    code: str
    #: None when not sent: the ingestion time
    timestamp: datetime | None
    properties: dict[str, Any]
    precise_total_amount_cents: Decimal | None
    fingerprint: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.external_subscription_id, self.transaction_id)


class StoredEvent(NamedTuple):
    """A stored event with what the API shows of its subscription and customer."""

    lago_id: uuid.UUID
    transaction_id: str
    external_subscription_id: str
    code: str
    timestamp: datetime
    properties: dict[str, Any]
    precise_total_amount_cents: Decimal | None
    subscription_lago_id: uuid.UUID | None
    customer_lago_id: uuid.UUID | None
    #: an EventError value, or None for an event that counts
    error_code: str | None
    created_at: datetime


class StoredEventRow(NamedTuple):
    """A stored event and the fingerprint of the request that created it."""

    fingerprint: str
    event: StoredEvent


@dataclass(frozen=True)
class EventFilters:
    """The filters of `GET /events`."""

    external_subscription_id: str | None = None
    code: str | None = None
    timestamp_from: datetime | None = None
    timestamp_to: datetime | None = None


# ---------------------------------------------------------------------------------------------
# Validation


def parse_timestamp(value: object) -> datetime | None:
    """Unix seconds (int, float or numeric string) → UTC datetime at millisecond precision;
    None for null. Raises ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("timestamp is not a number")
    seconds = parse_decimal(value)
    if seconds is None:
        raise ValueError("timestamp is not a number")
    millis = int(seconds.scaleb(3).to_integral_value(rounding=ROUND_FLOOR))
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


def parse_time_filter(raw: str | None) -> datetime | None:
    """A `timestamp_from`/`timestamp_to` query value: ISO 8601 (a date means its midnight UTC;
    no zone means UTC) or Unix seconds. Raises ValueError."""
    if raw is None:
        return None
    if parse_decimal(raw) is not None:
        return parse_timestamp(raw)
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    try:
        return as_utc(value)
    except OverflowError:  # year 1 or 9999 moved to UTC
        raise ValueError(raw) from None


def parse_event(raw: object) -> tuple[EventInput | None, dict[str, list[str]]]:
    """An event object of a request → (input, {}) or (None, Lago's field errors)."""
    if not isinstance(raw, Mapping):
        return None, {"event": ["value_is_invalid"]}
    errors: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    for name in _REQUIRED_FIELDS:
        value = raw.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # Rails casts numbers to the string column
        if value is None or (isinstance(value, str) and not value.strip()):
            errors[name] = ["value_is_mandatory"]
        elif not isinstance(value, str):
            errors[name] = ["value_is_invalid"]
        elif len(value) > _MAX_TEXT:
            errors[name] = ["value_is_too_long"]
        else:
            texts[name] = value
    try:
        timestamp = parse_timestamp(raw.get("timestamp"))
    except ValueError:
        errors["timestamp"] = ["invalid_format"]
        timestamp = None
    properties = raw.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        errors["properties"] = ["value_is_invalid"]
    raw_amount = raw.get("precise_total_amount_cents")
    amount = None if raw_amount is None else parse_decimal(raw_amount)
    if raw_amount is not None and amount is None:
        errors["precise_total_amount_cents"] = ["value_is_invalid"]
    if errors:
        return None, errors
    return (
        EventInput(
            transaction_id=texts["transaction_id"],
            external_subscription_id=texts["external_subscription_id"],
            code=texts["code"],
            timestamp=timestamp,
            properties=properties,
            precise_total_amount_cents=amount,
            fingerprint=fingerprint(raw),
        ),
        {},
    )


def fingerprint(raw: Mapping[str, Any]) -> str:
    """SHA-256 of the request as sent: code, properties (null = {}), timestamp as given (absent =
    null) and precise_total_amount_cents. Equal fingerprints make an identical replay."""
    document = {
        "code": raw.get("code"),
        "properties": raw.get("properties") or {},
        "timestamp": raw.get("timestamp"),
        "precise_total_amount_cents": raw.get("precise_total_amount_cents"),
    }
    return hashlib.sha256(_FINGERPRINT_ENCODER.encode(document).encode()).hexdigest()


#: `json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)`, built once
#: (json.dumps builds an encoder at every call when given options)
_FINGERPRINT_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


# ---------------------------------------------------------------------------------------------
# Ingestion


def ingest_event(organization: OrganizationLike, raw: object) -> StoredEvent:
    """Store one event (or find its identical replay); errors are keyed by field."""
    event, errors = parse_event(raw)
    if event is None:
        raise ValidationFailed(errors)
    try:
        return _ingest(organization, [event])[0]
    except _KeyReused:
        raise ValidationFailed({"transaction_id": ["value_already_exist"]}) from None


def ingest_events(organization: OrganizationLike, raw_events: object) -> list[StoredEvent]:
    """Store a batch all or nothing; errors are keyed by the event's index."""
    if not isinstance(raw_events, list) or not raw_events:
        raise ValidationFailed({"events": ["no_events"]})
    if len(raw_events) > MAX_BATCH_SIZE:
        raise ValidationFailed({"events": ["too_many_events"]})
    parsed: list[EventInput] = []
    errors: dict[str, Any] = {}
    first_of_key: dict[tuple[str, str], EventInput] = {}
    for index, raw in enumerate(raw_events):
        event, event_errors = parse_event(raw)
        if event is None:
            errors[str(index)] = event_errors
            continue
        earlier = first_of_key.setdefault(event.key, event)
        if earlier.fingerprint != event.fingerprint:
            errors[str(index)] = {"transaction_id": ["value_already_exist"]}
        parsed.append(event)
    if errors:
        raise ValidationFailed(errors)
    try:
        return _ingest(organization, parsed)
    except _KeyReused as exc:
        reused: dict[str, object] = {
            str(index): {"transaction_id": ["value_already_exist"]}
            for index, event in enumerate(parsed)
            if event.key in exc.keys
        }
        raise ValidationFailed(reused) from None


class _KeyReused(Exception):
    """Stored events hold these keys with another fingerprint."""

    def __init__(self, keys: set[tuple[str, str]]) -> None:
        super().__init__(f"transaction ids reused: {sorted(keys)!r}")
        self.keys = keys


class _Matched(NamedTuple):
    subscription_id: int | None
    subscription_lago_id: uuid.UUID | None
    customer_id: int | None
    customer_lago_id: uuid.UUID | None
    timezone: str
    metric: MetricInfo | None
    error_code: str | None


@dataclass(frozen=True)
class MetricInfo:
    id: int
    aggregation_type: str
    field_name: str | None
    filter_keys: tuple[str, ...]


def _ingest(organization: OrganizationLike, events: Sequence[EventInput]) -> list[StoredEvent]:
    """Insert the new keys (ON CONFLICT DO NOTHING), then compare fingerprints only for the keys
    already stored: one statement for the common case instead of a look-up before every insert.
    Concurrent replays never make two rows: the unique key decides, whoever commits first."""
    now = now_utc()
    unique = list({event.key: event for event in reversed(events)}.values())[::-1]
    connection = driver.connection()  # once: each call costs session bookkeeping
    subscriptions, metrics = _lookups(organization.id, unique, connection)
    rows, results = _rows(organization, unique, now, subscriptions, metrics)
    existing: dict[tuple[str, str], StoredEventRow] = {}
    if _execute_on_driver("insert_events", rows, connection) == len(rows):
        inserted_keys = set(results)
    else:  # some keys were stored already: ours are those holding the lago_id we generated
        existing = _existing_events(organization.id, list(results), connection)
        inserted_keys = {
            key
            for key, row in existing.items()
            if row.event.lago_id == results[key][0].event.lago_id
        }
    stored = {key: results[key][0] for key in inserted_keys}
    replays = [event for event in unique if event.key not in inserted_keys]
    if replays:
        _check_replays(existing, replays)
        stored.update({event.key: existing[event.key] for event in replays})
    tally = BucketTally()
    for key, (stored_row, matched) in results.items():  # in request order: latest-value ties
        if key not in inserted_keys:
            continue
        if matched.error_code is not None:
            _emit_event_error(organization.id, stored_row.event)
        elif matched.metric is not None and matched.subscription_id is not None:
            tally.add(
                matched.subscription_id,
                matched.metric,
                matched.timezone,
                stored_row.event.timestamp,
                stored_row.event.properties,
            )
    write_buckets(tally, connection)
    return [stored[event.key].event for event in events]


def _check_replays(
    stored: Mapping[tuple[str, str], StoredEventRow], events: Iterable[EventInput]
) -> None:
    reused = {
        event.key
        for event in events
        if event.key in stored and stored[event.key].fingerprint != event.fingerprint
    }
    if reused:
        raise _KeyReused(reused)


def _existing_events(
    organization_id: int, keys: Sequence[tuple[str, str]], connection: Any
) -> dict[tuple[str, str], StoredEventRow]:
    """Stored events of these keys, by key."""
    if not keys:
        return {}
    wanted = set(keys)
    rows = connection.execute(
        _statement("existing_events"),
        {
            "organization_id": organization_id,
            "transaction_ids": sorted({transaction_id for _ext, transaction_id in wanted}),
        },
    )
    found: dict[tuple[str, str], StoredEventRow] = {}
    for row in rows:
        event = _stored_event(row)
        key = (event.external_subscription_id, event.transaction_id)
        if key in wanted:
            found[key] = StoredEventRow(row.fingerprint, event)
    return found


def _rows(
    organization: OrganizationLike,
    events: Sequence[EventInput],
    now: datetime,
    subscriptions: Mapping[str, list[_SubscriptionRow]],
    metrics: Mapping[str, MetricInfo],
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], tuple[StoredEventRow, _Matched]]]:
    """The events' rows to insert, and by key what each would store and what it matched."""
    default_timestamp = now.replace(microsecond=now.microsecond // 1000 * 1000)
    rows: list[dict[str, Any]] = []
    results: dict[tuple[str, str], tuple[StoredEventRow, _Matched]] = {}
    for event in events:
        timestamp = event.timestamp or default_timestamp
        matched = _match(event, timestamp, subscriptions, metrics, organization.timezone)
        lago_id = uuid.uuid4()
        rows.append(
            {
                "lago_id": lago_id,
                "organization_id": organization.id,
                "transaction_id": event.transaction_id,
                "external_subscription_id": event.external_subscription_id,
                "code": event.code,
                "timestamp": timestamp,
                "properties": event.properties,
                "precise_total_amount_cents": event.precise_total_amount_cents,
                "fingerprint": event.fingerprint,
                "subscription_id": matched.subscription_id,
                "billable_metric_id": matched.metric.id if matched.metric else None,
                "customer_id": matched.customer_id,
                "error_code": matched.error_code,
                "created_at": now,
            }
        )
        stored = StoredEvent(
            lago_id=lago_id,
            transaction_id=event.transaction_id,
            external_subscription_id=event.external_subscription_id,
            code=event.code,
            timestamp=timestamp,
            properties=event.properties,
            precise_total_amount_cents=event.precise_total_amount_cents,
            subscription_lago_id=matched.subscription_lago_id,
            customer_lago_id=matched.customer_lago_id,
            error_code=matched.error_code,
            created_at=now,
        )
        results[event.key] = (StoredEventRow(event.fingerprint, stored), matched)
    return rows, results


#: a row of `_subscriptions_statement` (a namedtuple): id, lago_id, external_id, started_at,
#: terminated_at, customer_id, customer_lago_id, customer_timezone
_SubscriptionRow = Any


def _lookups(
    organization_id: int, events: Sequence[EventInput], connection: Any
) -> tuple[dict[str, list[_SubscriptionRow]], dict[str, MetricInfo]]:
    """Started subscriptions (active or terminated) of the events' external ids, newest start
    first, and the live metrics of their codes. Read in the request's own transaction and never
    cached: a subscription or metric changed a moment ago, by any process, applies at once."""
    subscriptions: dict[str, list[_SubscriptionRow]] = {}
    external_ids = {event.external_subscription_id for event in events}
    for row in _select("subscriptions", organization_id, "external_ids", external_ids, connection):
        subscriptions.setdefault(row.external_id, []).append(row)
    codes = {event.code for event in events}
    metrics = {
        row.code: metric_info(row)
        for row in _select("metrics", organization_id, "codes", codes, connection)
    }
    return subscriptions, metrics


def _select(
    name: str, organization_id: int, values_name: str, values: set[str], connection: Any
) -> list[Any]:
    """The rows of statement `name` for the organization and `values`, on the driver: one
    statement per count of values (`IN (?, ?, …)`, compiled once per count; a batch holds at
    most MAX_BATCH_SIZE), since SQLAlchemy's expanding IN re-renders the SQL at every run."""
    parameters: dict[str, Any] = {"organization_id": organization_id}
    for index, value in enumerate(sorted(values)):
        parameters[f"{values_name}_{index}"] = value
    count = len(values)
    build = _STATEMENT_BUILDERS[name]
    return driver.fetch(
        ("events", name, count), lambda dialect: build(dialect, count), parameters, connection
    )


def metric_info(metric: Any) -> MetricInfo:
    """What bucketing needs of a billable metric (a model or a row with its columns)."""
    return MetricInfo(
        metric.id,
        metric.aggregation_type,
        metric.field_name,
        tuple(item["key"] for item in metric.filters or []),
    )


def _match(
    event: EventInput,
    timestamp: datetime,
    subscriptions: Mapping[str, list[_SubscriptionRow]],
    metrics: Mapping[str, MetricInfo],
    organization_timezone: str | None,
) -> _Matched:
    """The subscription active at the event's timestamp, the metric of its code, or the error."""
    subscription = next(
        (
            candidate
            for candidate in subscriptions.get(event.external_subscription_id, [])
            if candidate.started_at <= timestamp
            and (candidate.terminated_at is None or timestamp < candidate.terminated_at)
        ),
        None,
    )
    if subscription is None:
        return _Matched(None, None, None, None, "UTC", None, EventError.SUBSCRIPTION_NOT_FOUND)
    timezone = subscription.customer_timezone or organization_timezone or "UTC"
    metric = metrics.get(event.code)
    error_code = None
    if metric is None:
        error_code = EventError.BILLABLE_METRIC_NOT_FOUND
    elif (
        metric.aggregation_type in VALUE_AGGREGATIONS
        and event_value(event.properties, metric.field_name) is None
    ):
        error_code = EventError.INVALID_FIELD_VALUE
    return _Matched(
        subscription.id,
        subscription.lago_id,
        subscription.customer_id,
        subscription.customer_lago_id,
        timezone,
        metric,
        error_code,
    )


def _emit_event_error(organization_id: int, event: StoredEvent) -> None:
    """Lago's `event.error` webhook: the event and why it counts for nothing."""
    field_name = {
        EventError.SUBSCRIPTION_NOT_FOUND: "external_subscription_id",
        EventError.BILLABLE_METRIC_NOT_FOUND: "code",
    }.get(event.error_code or "", "properties")
    outbox.emit(
        organization_id,
        "event.error",
        "event_error",
        {
            "status": 422,
            "error": "Unprocessable entity",
            "error_code": event.error_code,
            "message": json.dumps({field_name: [event.error_code]}),
            "event": serialize_event(event),
        },
    )


# ---------------------------------------------------------------------------------------------
# Usage buckets


BucketKey = tuple[int, int, date, str]


@dataclass
class BucketDelta:
    """What a set of events adds to one bucket."""

    events_count: int = 0
    sum_value: Decimal = Decimal(0)
    max_value: Decimal | None = None
    latest_value: Decimal | None = None
    latest_timestamp: datetime | None = None

    def add(self, value: Decimal | None, timestamp: datetime) -> None:
        self.events_count += 1
        if value is None:
            return
        self.sum_value += value
        self.max_value = value if self.max_value is None else max(self.max_value, value)
        if self.latest_timestamp is None or timestamp >= self.latest_timestamp:
            self.latest_value, self.latest_timestamp = value, timestamp

    def columns(self) -> dict[str, Any]:
        return {
            "events_count": self.events_count,
            "sum_value": self.sum_value,
            "max_value": self.max_value,
            "latest_value": self.latest_value,
            "latest_timestamp": self.latest_timestamp,
        }


@dataclass
class BucketTally:
    """Bucket deltas grouped by key, so a batch writes each bucket once."""

    deltas: dict[BucketKey, BucketDelta] = field(default_factory=dict)

    def add(
        self,
        subscription_id: int,
        metric: MetricInfo,
        timezone: str,
        timestamp: datetime,
        properties: Mapping[str, Any] | None,
    ) -> None:
        key = (
            subscription_id,
            metric.id,
            local_date(timestamp, timezone),
            dimensions_text(properties, metric.filter_keys),
        )
        delta = self.deltas.get(key)
        if delta is None:
            delta = self.deltas[key] = BucketDelta()
        delta.add(event_value(properties, metric.field_name), timestamp)


def dimensions_text(properties: Mapping[str, Any] | None, filter_keys: Sequence[str]) -> str:
    """The canonical JSON of the event's values for the metric's filter keys (`{}` for none)."""
    if not filter_keys:
        return "{}"
    return json.dumps(
        event_dimensions(properties, filter_keys), sort_keys=True, separators=(",", ":")
    )


def write_buckets(tally: BucketTally, connection: Any | None = None) -> None:
    """Add the tally to the stored buckets in one upsert that adds in SQL, exactly: NUMERIC on
    PostgreSQL, the Decimal functions extensions.py registers on SQLite's text decimals. Rows go
    in key order, so that two transactions lock the buckets they share in the same order."""
    if not tally.deltas:
        return
    _execute_on_driver(
        "upsert_buckets",
        [
            dict(zip(_BUCKET_KEY_COLUMNS, key, strict=True), **delta.columns())
            for key, delta in sorted(tally.deltas.items())
        ],
        connection,
    )


# ---------------------------------------------------------------------------------------------
# Reading


def _stored_event_query() -> Select[Any]:
    subscriptions, customers = _SUBSCRIPTIONS, _CUSTOMERS
    return (
        select(
            _EVENTS.c.lago_id,
            _EVENTS.c.transaction_id,
            _EVENTS.c.external_subscription_id,
            _EVENTS.c.code,
            _EVENTS.c.timestamp,
            _EVENTS.c.properties,
            _EVENTS.c.precise_total_amount_cents,
            _EVENTS.c.error_code,
            _EVENTS.c.created_at,
            subscriptions.c.lago_id.label("subscription_lago_id"),
            customers.c.lago_id.label("customer_lago_id"),
        )
        .outerjoin(subscriptions, subscriptions.c.id == _EVENTS.c.subscription_id)
        .outerjoin(customers, customers.c.id == _EVENTS.c.customer_id)
    )


def _stored_event(row: Any) -> StoredEvent:
    return StoredEvent(
        lago_id=row.lago_id,
        transaction_id=row.transaction_id,
        external_subscription_id=row.external_subscription_id,
        code=row.code,
        timestamp=row.timestamp,
        properties=row.properties or {},
        precise_total_amount_cents=row.precise_total_amount_cents,
        subscription_lago_id=row.subscription_lago_id,
        customer_lago_id=row.customer_lago_id,
        error_code=row.error_code,
        created_at=row.created_at,
    )


def get_event(
    organization: Organization, transaction_id: str, external_subscription_id: str | None = None
) -> StoredEvent:
    """The event with this transaction id (the latest one when several subscriptions used it)."""
    query = _stored_event_query().where(
        Event.organization_id == organization.id, Event.transaction_id == transaction_id
    )
    if external_subscription_id:
        query = query.where(Event.external_subscription_id == external_subscription_id)
    row = db.session.execute(
        query.order_by(Event.created_at.desc(), Event.id.desc()).limit(1)
    ).first()
    if row is None:
        raise NotFound("event")
    return _stored_event(row)


def list_events(
    organization: Organization, filters: EventFilters, *, page: int, per_page: int
) -> Page[StoredEvent]:
    """The organization's events, newest first (by ingestion), filtered."""
    conditions = [Event.organization_id == organization.id]
    if filters.external_subscription_id:
        conditions.append(Event.external_subscription_id == filters.external_subscription_id)
    if filters.code:
        conditions.append(Event.code == filters.code)
    if filters.timestamp_from:
        conditions.append(Event.timestamp >= filters.timestamp_from)
    if filters.timestamp_to:
        conditions.append(Event.timestamp <= filters.timestamp_to)
    total = db.session.scalar(select(db.func.count()).select_from(Event).where(*conditions)) or 0
    rows = db.session.execute(
        _stored_event_query()
        .where(*conditions)
        .order_by(Event.created_at.desc(), Event.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return Page([_stored_event(row) for row in rows], total, page, per_page)


def find_events(conditions: Sequence[Any], limit: int) -> list[StoredEvent]:
    """Events matching `conditions`, newest first (for the console's events debugger)."""
    rows = db.session.execute(
        _stored_event_query()
        .where(*conditions)
        .order_by(Event.created_at.desc(), Event.id.desc())
        .limit(limit)
    )
    return [_stored_event(row) for row in rows]


# ---------------------------------------------------------------------------------------------
# Statements of the hot path, built once per dialect: building a statement costs several times
# what executing it does (SQLAlchemy caches the compiled SQL, but not the construction).

_statements: dict[tuple[str, str, int], Any] = {}


def _statement(name: str) -> Any:
    """The statement `name` for the session's dialect."""
    key = (db.session.get_bind().dialect.name, name, 0)
    statement = _statements.get(key)
    if statement is None:
        statement = _statements[key] = _STATEMENT_BUILDERS[name](key[0], 0)
    return statement


def _execute_on_driver(
    name: str, rows: Sequence[Mapping[str, Any]], connection: Any | None = None
) -> int:
    """Run the statement `name` (no RETURNING) once per row on the DBAPI cursor; returns the
    rows it changed."""
    build = _STATEMENT_BUILDERS[name]
    return driver.execute(("events", name), lambda dialect: build(dialect, 0), rows, connection)


def _one_of(column: Any, name: str, count: int) -> Any:
    """`column` equal to one of the parameters `<name>_0` … `<name>_<count - 1>`."""
    if count == 1:
        return column == bindparam(f"{name}_0")
    return column.in_([bindparam(f"{name}_{index}") for index in range(count)])


def _dialect_insert(table: Table, dialect: str) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def _insert_events_statement(dialect: str, _count: int) -> Any:
    return _dialect_insert(_EVENTS, dialect).on_conflict_do_nothing(
        index_elements=list(_KEY_COLUMNS)
    )


def _existing_events_statement(_dialect: str, _count: int) -> Any:
    return (
        _stored_event_query()
        .add_columns(_EVENTS.c.fingerprint)
        .where(
            _EVENTS.c.organization_id == bindparam("organization_id"),
            _EVENTS.c.transaction_id.in_(bindparam("transaction_ids", expanding=True)),
        )
    )


def _subscriptions_statement(_dialect: str, count: int) -> Any:
    subscriptions, customers = _SUBSCRIPTIONS, _CUSTOMERS
    return (
        select(
            subscriptions.c.id,
            subscriptions.c.lago_id,
            subscriptions.c.external_id,
            subscriptions.c.started_at,
            subscriptions.c.terminated_at,
            subscriptions.c.customer_id,
            customers.c.lago_id.label("customer_lago_id"),
            customers.c.timezone.label("customer_timezone"),
        )
        .join(customers, customers.c.id == subscriptions.c.customer_id)
        .where(
            subscriptions.c.organization_id == bindparam("organization_id"),
            _one_of(subscriptions.c.external_id, "external_ids", count),
            # constants as literals: SQLite re-plans a statement whose bound values could
            # change the plan, which made this look-up ten times slower
            subscriptions.c.status.in_(
                [
                    literal_column(f"'{status.value}'")
                    for status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TERMINATED)
                ]
            ),
            subscriptions.c.started_at.is_not(None),
        )
        .order_by(subscriptions.c.started_at.desc())
    )


def _metrics_statement(_dialect: str, count: int) -> Any:
    metrics = _METRICS
    return select(
        metrics.c.id,
        metrics.c.code,
        metrics.c.aggregation_type,
        metrics.c.field_name,
        metrics.c.filters,
    ).where(
        metrics.c.organization_id == bindparam("organization_id"),
        _one_of(metrics.c.code, "codes", count),
        metrics.c.deleted_at.is_(None),
    )


def _upsert_buckets_statement(dialect: str, _count: int) -> Any:
    """Add each row's deltas to its bucket, or insert it: the same merge as BucketDelta.add
    (sums add, max ignores nulls, the later or equal timestamp brings the latest value)."""
    insert = _dialect_insert(_BUCKETS, dialect)
    stored, new = _BUCKETS.c, insert.excluded
    if dialect == "postgresql":

        def exact(column: Any) -> Any:  # ExactDecimal's operators are its text impl's
            return type_coerce(column, Numeric(asdecimal=True))

        added = exact(stored.sum_value) + exact(new.sum_value)
        greatest = func.greatest(exact(stored.max_value), exact(new.max_value))
    else:
        added = func.ll_decimal_add(stored.sum_value, new.sum_value)
        greatest = func.ll_decimal_max(stored.max_value, new.max_value)
    newer = and_(
        new.latest_timestamp.is_not(None),
        or_(stored.latest_timestamp.is_(None), new.latest_timestamp >= stored.latest_timestamp),
    )
    return insert.on_conflict_do_update(
        index_elements=list(_BUCKET_KEY_COLUMNS),
        set_={
            "events_count": stored.events_count + new.events_count,
            "sum_value": added,
            "max_value": greatest,
            "latest_value": case((newer, new.latest_value), else_=stored.latest_value),
            "latest_timestamp": case((newer, new.latest_timestamp), else_=stored.latest_timestamp),
        },
    )


_STATEMENT_BUILDERS = {
    "insert_events": _insert_events_statement,
    "existing_events": _existing_events_statement,
    "subscriptions": _subscriptions_statement,
    "metrics": _metrics_statement,
    "upsert_buckets": _upsert_buckets_statement,
}
