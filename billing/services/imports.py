"""CSV import of customers: parse and preview without writing, then upsert by external id.

The life of an import (`CustomerImport.status`)::

    previewed ──► running ──► done            (small files: run at once by the boundary)
        │            ▲  │
        └──► queued ─┘  └──► failed           (large files: claimed by the jobs process)
                 ▲      │
                 └──────┘  a run whose heartbeat is older than STALLED_AFTER is re-queued

Every status change is a conditional UPDATE (`... WHERE status = <expected>`), so two
processes can never both move an import out of the same state. While an import runs,
`progressed_at` holds its heartbeat: the time its last batch was committed.

A run works in batches and records its progress with each batch; the boundary (job, CLI,
view) commits after each one through the `progress` callback. A run that dies therefore
resumes at `processed_rows` with nothing applied twice: each batch and its progress are
committed together, and the progress update is fenced on the `processed_rows` the batch
started from, so a run that was taken over stops instead of writing the batch again.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from billing.errors import DomainError, NotAllowed, ValidationFailed
from billing.models import Agent, Customer, CustomerImport, Organization
from billing.services import audit
from billing.services.customer_input import parse_customer_input
from billing.services.customers import find_customer, upsert_customer
from billing.timeutil import now_utc
from extensions import db

log = logging.getLogger(__name__)

#: bytes of CSV text accepted in one file
MAX_BYTES = 10 * 1024 * 1024
#: data rows accepted in one file
MAX_ROWS = 50_000
#: imports with at most this many valid rows run at once in the console; larger ones are queued
INLINE_MAX_ROWS = 200
#: rows applied (and committed by the boundary) per batch
BATCH_SIZE = 100
#: a running import whose heartbeat is older than this is taken to be dead and is re-queued
STALLED_AFTER = timedelta(minutes=10)

#: top-level customer fields a column may name (Lago's customer object)
CUSTOMER_COLUMNS = (
    "external_id", "name", "firstname", "lastname", "email", "phone", "url", "customer_type",
    "legal_name", "legal_number", "tax_identification_number", "address_line1",
    "address_line2", "city", "zipcode", "state", "country", "currency", "timezone",
    "net_payment_term", "external_salesforce_id",
)  # fmt: skip
#: columns that go into `billing_configuration`
BILLING_COLUMNS = ("document_locale", "invoice_grace_period")
#: columns that go into `shipping_address`, under the name without the prefix
SHIPPING_COLUMNS = (
    "shipping_address_line1", "shipping_address_line2", "shipping_city", "shipping_zipcode",
    "shipping_state", "shipping_country",
)  # fmt: skip
METADATA_PREFIX = "metadata."
#: columns of the console's CSV export that describe a customer rather than set it: ignored, so
#: that an export can be edited and imported back
IGNORED_COLUMNS = (
    "status", "created_at", "updated_at", "lago_id", "sequential_id", "slug", "metadata",
)  # fmt: skip
KNOWN_COLUMNS = CUSTOMER_COLUMNS + BILLING_COLUMNS + SHIPPING_COLUMNS

#: the error code of a row repeating an external id of an earlier row of the same file
DUPLICATE_IN_FILE = "value_is_duplicated_in_file"

#: previewed → queued | running; queued → running; running → done | failed | queued (stalled)
TRANSITIONS: dict[str, frozenset[str]] = {
    "previewed": frozenset({"queued", "running"}),
    "queued": frozenset({"running"}),
    "running": frozenset({"done", "failed", "queued"}),
    "done": frozenset(),
    "failed": frozenset(),
}


class ImportFileInvalid(DomainError):
    """The file cannot be imported at all (encoding, size, header); the message says why."""

    def __init__(self, message: str, *, columns: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: the offending columns, when the header is the problem
        self.columns = columns or []


class ImportSuperseded(DomainError):
    """Another process took the import over (it was re-queued as stalled); stop quietly."""


@dataclass
class CsvRow:
    #: the row's number as a spreadsheet shows it: the header is row 1
    number: int
    #: a Lago customer payload holding only the non-empty cells
    payload: dict[str, Any]

    @property
    def external_id(self) -> str | None:
        value = self.payload.get("external_id")
        return value if isinstance(value, str) else None


@dataclass
class CsvTable:
    rows: list[CsvRow]
    #: columns present in the file that are ignored (see IGNORED_COLUMNS)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass
class SampleRow:
    number: int
    action: str  # create | update
    external_id: str | None
    name: str | None
    email: str | None


@dataclass
class Overview:
    """What the preview page shows beyond the stored counts (recomputed from the file)."""

    ignored_columns: list[str]
    #: valid rows without an external id: one is generated for each (`cus_…`)
    generated_ids: int
    #: the first valid rows, with what the import will do with each
    sample: list[SampleRow]


# ---------------------------------------------------------------------------------------------
# Reading the file


def decode_csv(content: bytes | str) -> str:
    """The file's text: UTF-8, with or without a byte-order mark, within MAX_BYTES."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    if len(raw) > MAX_BYTES:
        raise ImportFileInvalid(
            f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB: split it into smaller files."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileInvalid(
            "The file is not UTF-8 text. Save it as “CSV UTF-8” from your spreadsheet."
        ) from exc
    if "\x00" in text:
        raise ImportFileInvalid("The file is not a CSV text file.")
    return text


def read_csv(text: str) -> CsvTable:
    """Parse CSV text whose first row names the columns; raise ImportFileInvalid if unusable."""
    if not text.strip():
        raise ImportFileInvalid("The file is empty.")
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(text))
    try:
        header = next(reader)
        columns, ignored = _columns(header)
        unnamed = [i for i, name in enumerate(header) if not name.strip()]
        rows: list[CsvRow] = []
        # Numbered as a spreadsheet shows them: the header is row 1, blank rows count too.
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, and the empty rows spreadsheets leave at the end
            if len(rows) == MAX_ROWS:
                raise ImportFileInvalid(
                    f"The file has more than {MAX_ROWS:,} rows: split it into smaller files."
                )
            if any(cell.strip() for cell in cells[len(columns) :]):
                raise ImportFileInvalid(
                    f"Row {number} has more cells than the header row has columns."
                )
            for index in unnamed:
                if index < len(cells) and cells[index].strip():
                    raise ImportFileInvalid(
                        f"Row {number} has a value in column {index + 1}, "
                        "which has no name in the header row."
                    )
            rows.append(CsvRow(number, _payload(columns, cells)))
    except csv.Error as exc:
        raise ImportFileInvalid(f"The file is not valid CSV: {exc}.") from exc
    if not rows:
        raise ImportFileInvalid("The file has a header row but no customers.")
    return CsvTable(rows, ignored)


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """Comma-separated, unless the header has no comma: then ask csv.Sniffer (`;`, tab)."""
    first_line = text.split("\n", 1)[0]
    if "," in first_line:
        return csv.excel
    try:
        return csv.Sniffer().sniff(first_line, delimiters=";\t,")
    except csv.Error:
        return csv.excel


def _columns(header: list[str]) -> tuple[list[str | None], list[str]]:
    """The normalized name of each column (None: ignored) and the ignored columns' names."""
    columns: list[str | None] = []
    unknown: list[str] = []
    ignored: list[str] = []
    seen: set[str] = set()
    for raw in header:
        name = raw.strip()
        if not name:
            columns.append(None)
            continue
        if name.lower().startswith(METADATA_PREFIX):
            key = name[len(METADATA_PREFIX) :].strip()
            column = METADATA_PREFIX + key if key else None
        else:
            normalized = name.lower().replace(" ", "_").replace("-", "_")
            column = normalized if normalized in KNOWN_COLUMNS else None
            if normalized in IGNORED_COLUMNS:
                ignored.append(name)
                columns.append(None)
                continue
        if column is None:
            unknown.append(name)
        elif column in seen:
            raise ImportFileInvalid(f"The column “{name}” appears twice.", columns=[name])
        else:
            seen.add(column)
        columns.append(column)
    if unknown:
        hint = "" if seen else " The first row must name the columns, e.g. external_id,name,email."
        raise ImportFileInvalid(
            f"Unknown column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.{hint}",
            columns=unknown,
        )
    if not seen:
        raise ImportFileInvalid("The first row must name the columns, e.g. external_id,name,email.")
    return columns, ignored


def _payload(columns: list[str | None], cells: list[str]) -> dict[str, Any]:
    """A Lago payload from one row. An empty cell leaves the field as it is (absent key)."""
    payload: dict[str, Any] = {}
    for column, cell in zip(columns, cells, strict=False):
        value = cell.strip()
        if column is None or not value:
            continue
        if column.startswith(METADATA_PREFIX):
            payload.setdefault("metadata", []).append(
                {"key": column[len(METADATA_PREFIX) :], "value": value}
            )
        elif column in BILLING_COLUMNS:
            payload.setdefault("billing_configuration", {})[column] = value
        elif column in SHIPPING_COLUMNS:
            payload.setdefault("shipping_address", {})[column.removeprefix("shipping_")] = value
        elif column == "customer_type":
            payload[column] = value.lower()  # "Company" in a spreadsheet means company
        else:
            payload[column] = value
    return payload


# ---------------------------------------------------------------------------------------------
# Preview


def preview_import(
    organization: Organization, filename: str, content: bytes | str, agent_id: int | None
) -> CustomerImport:
    """Validate every row and count creates and updates; writes only the CustomerImport row.

    While previewed, `created_count` and `updated_count` are what the import will do; a run
    resets them and counts what it did. Raises ImportFileInvalid for an unusable file.
    """
    text = decode_csv(content)
    table = read_csv(text)
    row_errors: list[dict[str, Any]] = []
    valid: list[CsvRow] = []
    seen_ids: set[str] = set()
    for row in table.rows:
        errors = parse_customer_input(row.payload, require_external_id=False).errors
        external_id = row.external_id
        if external_id is not None:
            if external_id in seen_ids:
                errors.setdefault("external_id", []).append(DUPLICATE_IN_FILE)
            else:
                seen_ids.add(external_id)
        if errors:
            row_errors.append({"row": row.number, "external_id": external_id, "errors": errors})
        else:
            valid.append(row)
    existing = existing_external_ids(organization, [r.external_id for r in valid if r.external_id])
    updates = sum(1 for r in valid if r.external_id in existing)
    customer_import = CustomerImport(
        organization_id=organization.id,
        agent_id=agent_id,
        filename=(filename or "customers.csv")[:255],
        content=text,
        status="previewed",
        total_rows=len(table.rows),
        processed_rows=0,
        created_count=len(valid) - updates,
        updated_count=updates,
        row_errors=row_errors,
    )
    db.session.add(customer_import)
    db.session.flush()
    return customer_import


def existing_external_ids(organization: Organization, external_ids: list[str]) -> set[str]:
    """Which of these external ids belong to live customers of the organization."""
    found: set[str] = set()
    # One query per 10,000 ids keeps within every driver's limit on bound parameters.
    for start in range(0, len(external_ids), 10_000):
        chunk = external_ids[start : start + 10_000]
        found.update(
            db.session.scalars(
                select(Customer.external_id).where(
                    Customer.organization_id == organization.id,
                    Customer.deleted_at.is_(None),
                    Customer.external_id.in_(chunk),
                )
            )
        )
    return found


def valid_rows(customer_import: CustomerImport) -> int:
    """Rows the preview found valid (what a confirmation will apply)."""
    return customer_import.total_rows - len(customer_import.row_errors)


def import_overview(customer_import: CustomerImport, *, sample_size: int = 20) -> Overview:
    """Ignored columns, generated ids and the first valid rows of a previewed import."""
    table = read_csv(customer_import.content)
    invalid = {entry["row"] for entry in customer_import.row_errors}
    valid = [row for row in table.rows if row.number not in invalid]
    sample = valid[:sample_size]
    organization = db.session.get_one(Organization, customer_import.organization_id)
    existing = existing_external_ids(organization, [r.external_id for r in sample if r.external_id])
    return Overview(
        ignored_columns=table.ignored_columns,
        generated_ids=sum(1 for row in valid if row.external_id is None),
        sample=[
            SampleRow(
                number=row.number,
                action="update" if row.external_id in existing else "create",
                external_id=row.external_id,
                name=row.payload.get("name")
                or " ".join(
                    filter(None, (row.payload.get("firstname"), row.payload.get("lastname")))
                )
                or None,
                email=row.payload.get("email"),
            )
            for row in sample
        ],
    )


# ---------------------------------------------------------------------------------------------
# Status changes


def _move(customer_import: CustomerImport, to: str, **values: Any) -> None:
    """Change the status if it is still what this session read; NotAllowed otherwise."""
    current = customer_import.status
    if to not in TRANSITIONS[current]:
        raise NotAllowed(f"import_is_{current}")
    result = db.session.execute(
        update(CustomerImport)
        .where(CustomerImport.id == customer_import.id, CustomerImport.status == current)
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # Someone else moved it first; the caller's copy is stale.
        db.session.refresh(customer_import)
        raise NotAllowed(f"import_is_{customer_import.status}")
    for name, value in {"status": to, **values}.items():
        set_committed_value(customer_import, name, value)


def start_import(customer_import: CustomerImport) -> None:
    """previewed → running, for a run in this process (console inline, CLI)."""
    _move(customer_import, "running", progressed_at=now_utc())


def queue_import(customer_import: CustomerImport) -> None:
    """previewed → queued: the jobs process will run it."""
    _move(customer_import, "queued")


def cancel_import(customer_import: CustomerImport) -> None:
    """Forget a previewed import (nothing was written, so there is nothing to undo)."""
    if customer_import.status != "previewed":
        raise NotAllowed(f"import_is_{customer_import.status}")
    db.session.delete(customer_import)
    db.session.flush()


def fail_import(customer_import: CustomerImport, failure: str) -> None:
    """running → failed with a human reason (never a stack trace: that goes to the log)."""
    _move(customer_import, "failed", failure=failure, finished_at=now_utc())


def failure_message(customer_import: CustomerImport) -> str:
    """What the console says about a run that broke off (the details go to the log)."""
    return (
        f"The import stopped after {customer_import.processed_rows} of "
        f"{customer_import.total_rows} rows because of an unexpected error (it was logged). "
        "The rows before that point were imported."
    )


def imports_waiting() -> bool:
    """Whether a queued import or a stalled run exists (a cheap read before any claim)."""
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    or_(
                        CustomerImport.status == "queued",
                        and_(
                            CustomerImport.status == "running",
                            CustomerImport.progressed_at < now_utc() - STALLED_AFTER,
                        ),
                    )
                )
            )
        )
    )


def requeue_stalled_imports() -> int:
    """Re-queue running imports whose heartbeat is older than STALLED_AFTER (their process
    died); they resume at `processed_rows`. Returns how many were re-queued."""
    stalled = db.session.scalars(
        select(CustomerImport)
        .where(
            CustomerImport.status == "running",
            CustomerImport.progressed_at < now_utc() - STALLED_AFTER,
        )
        .with_for_update(skip_locked=True)
    ).all()
    requeued = 0
    for customer_import in stalled:
        try:
            _move(customer_import, "queued")
        except NotAllowed:
            continue
        log.warning(
            "customer import %r stalled at row %r; re-queued",
            str(customer_import.lago_id),
            customer_import.processed_rows,
        )
        requeued += 1
    return requeued


def claim_queued_import() -> CustomerImport | None:
    """Take the oldest queued import for this process (queued → running), or None.

    PostgreSQL skips rows another claimer has locked; on both backends the status change is
    conditional, so two claimers never get the same import.
    """
    for _attempt in range(5):
        candidate = db.session.scalar(
            select(CustomerImport)
            .where(CustomerImport.status == "queued")
            .order_by(CustomerImport.created_at, CustomerImport.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if candidate is None:
            return None
        try:
            _move(candidate, "running", progressed_at=now_utc())
        except NotAllowed:
            continue  # another process claimed it between our read and our update
        return candidate
    return None


def actor_for(customer_import: CustomerImport) -> audit.Actor:
    """Who the audit log names for an import's changes: the agent who uploaded it, or the CLI."""
    agent = db.session.get(Agent, customer_import.agent_id) if customer_import.agent_id else None
    if agent is None:
        return audit.CLI
    return audit.Actor(type="agent", source="console", id=str(agent.lago_id), label=agent.email)


# ---------------------------------------------------------------------------------------------
# Running


def run_import(
    customer_import: CustomerImport,
    actor: audit.Actor,
    *,
    progress: Callable[[CustomerImport], None] | None = None,
    batch_size: int | None = None,
) -> CustomerImport:
    """Apply the valid rows of a running import from `processed_rows` on, then mark it done.

    Each row is an upsert by external id (rows without one get a generated id); metadata in
    the file is merged into the customer's metadata, never replacing it. A row refused at run
    time joins `row_errors` and the others still go in. `progress` is called after each batch
    is flushed: the boundary commits there. Raises ImportSuperseded if another process took
    the import over.
    """
    if customer_import.status != "running":
        raise NotAllowed(f"import_is_{customer_import.status}")
    batch_size = batch_size or BATCH_SIZE
    organization = db.session.get_one(Organization, customer_import.organization_id)
    rows = read_csv(customer_import.content).rows
    skipped = {entry["row"] for entry in customer_import.row_errors}
    if customer_import.processed_rows == 0:
        # The preview's planned counts give way to what the run does.
        _record_progress(customer_import, processed=0, created=0, updated=0, new_errors=[])
    while customer_import.processed_rows < len(rows):
        start = customer_import.processed_rows
        batch = rows[start : start + batch_size]
        created = updated = 0
        new_errors: list[dict[str, Any]] = []
        for row in _rows_to_apply(batch, skipped):
            try:
                _customer, was_created = upsert_customer(
                    organization,
                    _with_merged_metadata(organization, row.payload),
                    actor,
                    generate_missing_external_id=True,
                )
            except ValidationFailed as exc:
                new_errors.append(
                    {"row": row.number, "external_id": row.external_id, "errors": exc.details}
                )
                continue
            created += was_created
            updated += not was_created
        _record_progress(
            customer_import,
            processed=start + len(batch),
            created=customer_import.created_count + created,
            updated=customer_import.updated_count + updated,
            new_errors=new_errors,
        )
        if progress is not None:
            progress(customer_import)
    _move(customer_import, "done", finished_at=now_utc())
    return customer_import


def _rows_to_apply(batch: list[CsvRow], skipped: set[int]) -> Iterator[CsvRow]:
    return (row for row in batch if row.number not in skipped)


def _with_merged_metadata(organization: Organization, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with the customer's other metadata items sent along (ids kept), so that
    the upsert updates the file's keys and leaves every other key as it is."""
    if "metadata" not in payload or not payload.get("external_id"):
        return payload
    customer = find_customer(organization, str(payload["external_id"]))
    if customer is None:
        return payload
    from_file = {item["key"]: item["value"] for item in payload["metadata"]}
    merged = [
        {
            "id": str(item.lago_id),
            "key": item.key,
            "value": from_file.pop(item.key, item.value),
            "display_in_invoice": item.display_in_invoice,
        }
        for item in customer.metadata_items
    ]
    merged += [{"key": key, "value": value} for key, value in from_file.items()]
    return {**payload, "metadata": merged}


def _record_progress(
    customer_import: CustomerImport,
    *,
    processed: int,
    created: int,
    updated: int,
    new_errors: list[dict[str, Any]],
) -> None:
    """Write the progress and heartbeat, fenced on the row count the batch started from."""
    values: dict[str, Any] = {
        "processed_rows": processed,
        "created_count": created,
        "updated_count": updated,
        "progressed_at": now_utc(),
    }
    if new_errors:
        values["row_errors"] = sorted(
            [*customer_import.row_errors, *new_errors], key=lambda entry: entry["row"]
        )
    result = db.session.execute(
        update(CustomerImport)
        .where(
            CustomerImport.id == customer_import.id,
            CustomerImport.status == "running",
            CustomerImport.processed_rows == customer_import.processed_rows,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ImportSuperseded(str(customer_import.lago_id))
    for name, value in values.items():
        set_committed_value(customer_import, name, value)
