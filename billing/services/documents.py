"""Generated documents: render an invoice's (later a credit note's) PDF once, store it in the
database, serve it through expiring signed links.

One registry entry per kind of document (`DocumentKind`): which model owns it, which statuses
may have one, how the owner maps onto billing.pdf's view model, and which webhook announces it.
Invoices register at the bottom of this module; credit notes plug in the same way, e.g.
``register(DocumentKind(DocumentType.CREDIT_NOTE, CreditNote, ("finalized",),
credit_note_document, serialize_credit_note))`` where `credit_note_document` maps a credit note
onto `InvoiceDocument(kind="credit_note", ...)`: the job, `generate_pdf`, `stored_pdf`,
`file_url` and the download links then serve them too.

Exactly once: a document is stored with ``INSERT … ON CONFLICT DO NOTHING`` on its unique key
(type, owner), so two jobs processes, or the job and an API download at the same moment, store
one document and announce it once (`<kind>.generated`). The job claims its batch of owners with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two runners do not render the same PDFs (SQLite has
one writer). A stored document never changes: a voided invoice keeps the PDF it had.

Links: `file_url` is an absolute URL (``PUBLIC_URL``) to ``/documents/<token>``, whose token is
signed with the application's secret key and its own salt and expires after
`LINK_MAX_AGE_SECONDS`, so it works without an API key, like Lago's storage URLs.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Select, delete, exists, inspect, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from billing.errors import InvariantBroken, NotAllowed
from billing.models import CreditNote, CreditStatus, Document, DocumentType, Invoice, InvoiceStatus
from billing.pdf import InvoiceDocument, render_invoice_pdf
from billing.services import outbox
from billing.services.credit_note_documents import credit_note_document
from billing.services.invoice_documents import invoice_document
from billing.timeutil import now_utc
from extensions import db

log = logging.getLogger(__name__)

#: how long a download link works
LINK_MAX_AGE_SECONDS = 7 * 24 * 3600
#: itsdangerous salt of download links (no other signed value can pass for one)
LINK_SALT = "ledgerline.document-download"
#: owners the job claims, renders and commits together (on SQLite the batch holds the write
#: lock while it renders, about a tenth of a second per PDF)
JOB_BATCH = 10


@dataclass(frozen=True)
class DocumentKind:
    """How one kind of owner gets its PDF."""

    #: a DocumentType value, also the download link's and the webhook's object type
    name: str
    #: the owner's model: has id, lago_id, organization_id and `number` (the file's name)
    model: Any
    #: owner statuses that have a document (a draft is previewed, never stored)
    statuses: tuple[str, ...]
    #: the owner as billing.pdf prints it
    build: Callable[[Any], InvoiceDocument]
    #: the owner as the API shows it, for the `<name>.generated` webhook
    serialize: Callable[[Any], dict[str, Any]]
    #: the owner's attribute (and column) holding the status `statuses` speaks of
    status_attribute: str = "status"

    def may_have_document(self, owner: Any) -> bool:
        return getattr(owner, self.status_attribute) in self.statuses

    @property
    def event_type(self) -> str:
        return f"{self.name}.generated"


KINDS: dict[str, DocumentKind] = {}


def register(kind: DocumentKind) -> None:
    """Make a kind of document known to generation, the job and the download links."""
    KINDS[kind.name] = kind


def kind_of(name: str) -> DocumentKind:
    return KINDS[name]


# --- stored documents ----------------------------------------------------------------------------


def stored_document(kind: str, owner_id: int) -> Document | None:
    """The stored document of that owner (its content is loaded on first access)."""
    return db.session.scalar(
        select(Document).where(Document.document_type == kind, Document.owner_id == owner_id)
    )


def stored_pdf(kind: str, owner_id: int) -> bytes | None:
    """The stored PDF bytes of that owner, None when none is stored yet."""
    return db.session.scalar(
        select(Document.content).where(
            Document.document_type == kind, Document.owner_id == owner_id
        )
    )


def has_document(kind: str, owner_id: int) -> bool:
    return bool(
        db.session.scalar(
            select(exists().where(Document.document_type == kind, Document.owner_id == owner_id))
        )
    )


def outdated(kind: str, owner: Any) -> None:
    """The owner changed what its stored document shows (an invoice paid, failed or voided):
    if it has one, it is printed again now, so its `file_url` keeps serving the current one
    (and `<kind>.generated` announces it). An owner without one is left to the job."""
    if not has_document(kind, owner.id):
        return
    db.session.execute(
        delete(Document).where(Document.document_type == kind, Document.owner_id == owner.id)
    )
    db.session.flush()
    generate_pdf(kind, owner)


def render_pdf(kind: str, owner: Any) -> bytes:
    """The owner's PDF rendered now, stored nowhere (a draft's preview)."""
    return render_invoice_pdf(kind_of(kind).build(owner))


def generate_pdf(kind: str, owner: Any) -> Document:
    """The owner's stored document, rendered and stored first when there is none (announced
    with `<kind>.generated`). NotAllowed("is_draft") for a status that has no document."""
    spec = kind_of(kind)
    if not spec.may_have_document(owner):
        raise NotAllowed("is_draft")
    document = stored_document(kind, owner.id)
    if document is None:
        _store(spec, owner, render_invoice_pdf(spec.build(owner)))
        document = stored_document(kind, owner.id)
        if document is None:  # stored now, or by a concurrent writer whose row won
            raise InvariantBroken("expected document is not None")
    return document


def generate_invoice_pdf(invoice: Invoice) -> Document:
    """The invoice's stored PDF, generated now if needed (finalized or voided invoices)."""
    return generate_pdf(DocumentType.INVOICE, invoice)


def _store(spec: DocumentKind, owner: Any, content: bytes) -> bool:
    """Insert the document unless the owner has one; True when this call stored it (and
    queued its webhook)."""
    values = {
        "organization_id": owner.organization_id,
        "document_type": spec.name,
        "owner_id": owner.id,
        "owner_lago_id": owner.lago_id,
        "filename": download_filename(owner.number),
        "content": content,
        "byte_size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "generated_at": now_utc(),
    }
    insert = postgresql_insert if _dialect() == "postgresql" else sqlite_insert
    inserted = db.session.execute(
        insert(Document).values(values).on_conflict_do_nothing().returning(Document.id)
    ).scalar()
    if inserted is None:
        return False
    outbox.emit(owner.organization_id, spec.event_type, spec.name, spec.serialize(owner))
    return True


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def download_filename(number: str) -> str:
    """`<number>.pdf`, with anything but letters, digits, dot, dash and underscore replaced."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", number).strip("._") + ".pdf"


# --- the job -------------------------------------------------------------------------------------


@dataclass
class Batch:
    """What one batch of the job did."""

    #: owners claimed; none means nothing is left to render
    claimed: int = 0
    #: documents this batch stored (a concurrent writer may have stored the others)
    stored: int = 0
    #: (kind, owner id) of the owners whose render failed (logged); skip them for this run
    failed: list[tuple[str, int]] = field(default_factory=list)


def store_missing(
    *,
    organization_id: int | None = None,
    batch: int = JOB_BATCH,
    skip: Collection[tuple[str, int]] = (),
) -> Batch:
    """One batch of the job: claim up to `batch` owners that should have a document and have
    none (but those in `skip`), render and store each. A render that fails is logged and
    reported, so one bad document cannot hold the others back. Flushes; the caller commits
    (each batch, to release its locks)."""
    for spec in KINDS.values():
        owners = _claim(spec, organization_id, batch, [i for k, i in skip if k == spec.name])
        if not owners:
            continue
        result = Batch(claimed=len(owners))
        for owner in owners:
            document = spec.build(owner)
            try:
                content = render_invoice_pdf(document)
            except Exception:
                log.exception("documents: rendering %s %r failed", spec.name, owner.number)
                result.failed.append((spec.name, owner.id))
                continue
            result.stored += _store(spec, owner, content)
        return result
    return Batch()


def _missing(spec: DocumentKind, organization_id: int | None = None) -> Select[Any]:
    """Owners that should have a document and have none, oldest first."""
    model = spec.model
    query = (
        select(model)
        .where(
            getattr(model, spec.status_attribute).in_(spec.statuses),
            ~exists().where(Document.document_type == spec.name, Document.owner_id == model.id),
        )
        .order_by(model.id)
    )
    if organization_id is not None:
        query = query.where(model.organization_id == organization_id)
    return query


def any_missing() -> bool:
    """Whether some owner waits for its document (a cheap read before the job writes)."""
    return any(db.session.scalar(select(_missing(spec).exists())) for spec in KINDS.values())


def _claim(
    spec: DocumentKind, organization_id: int | None, batch: int, skip: list[int]
) -> list[Any]:
    """A batch of owners without a document (but `skip`), locked (rows another runner holds
    are skipped on PostgreSQL)."""
    model = spec.model
    query = _missing(spec, organization_id).limit(batch)
    if skip:
        query = query.where(model.id.not_in(skip))
    if _dialect() == "postgresql":
        query = query.with_for_update(skip_locked=True, of=model)
    return list(db.session.scalars(query))


# --- download links ------------------------------------------------------------------------------


class LinkRefused(Exception):
    """A download token that is not ours, was altered, or has expired (`expired`)."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=LINK_SALT)


def download_token(kind: str, owner_lago_id: uuid.UUID) -> str:
    return _serializer().dumps({"type": kind, "id": str(owner_lago_id)})


def read_download_token(token: str, max_age: int = LINK_MAX_AGE_SECONDS) -> tuple[str, uuid.UUID]:
    """(kind, owner lago id) of a valid token; LinkRefused otherwise."""
    try:
        data = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise LinkRefused(expired=True) from None
    except BadSignature:
        raise LinkRefused(expired=False) from None
    try:
        kind, owner = data["type"], uuid.UUID(data["id"])
    except (TypeError, KeyError, ValueError):
        raise LinkRefused(expired=False) from None
    if kind not in KINDS:
        raise LinkRefused(expired=False)
    return kind, owner


def public_base_url() -> str:
    """The server's public root: PUBLIC_URL, else the local address `make run` serves on."""
    config = current_app.config
    return config["PUBLIC_URL"] or f"http://127.0.0.1:{config['PORT']}"


#: owners whose documents were looked up together for a list: (kind, owner id) → stored?
_known: ContextVar[dict[tuple[str, int], bool] | None] = ContextVar("known_documents", default=None)


@contextmanager
def looked_up_together(kind: str, owners: Sequence[Any]) -> Iterator[None]:
    """Inside the block, `file_url` of these owners asks no query: one query for the lot (a
    page of the invoice list) instead of one per owner."""
    ids = [owner.id for owner in owners if getattr(owner, "id", None) is not None]
    stored = set(
        db.session.scalars(
            select(Document.owner_id).where(
                Document.document_type == kind, Document.owner_id.in_(ids)
            )
        )
        if ids
        else ()
    )
    token = _known.set({(kind, owner_id): owner_id in stored for owner_id in ids})
    try:
        yield
    finally:
        _known.reset(token)


def file_url(kind: str, owner: Any) -> str | None:
    """Lago's `file_url`: a signed, expiring absolute link to the owner's stored PDF; None
    while none is stored (or outside an application, where no secret key is known)."""
    if not kind_of(kind).may_have_document(owner) or not has_app_context():
        return None
    state = inspect(owner, raiseerr=False)
    if state is None or state.transient or state.pending:
        # built in memory by the period close (or not flushed yet): it cannot have a document,
        # and the close serializes thousands of new invoices, so no query for them
        return None
    known = _known.get()
    stored = known.get((kind, owner.id)) if known is not None else None
    if stored is None:
        stored = has_document(kind, owner.id)
    if not stored:
        return None
    return f"{public_base_url()}/documents/{download_token(kind, owner.lago_id)}"


def linked_pdf(kind: str, owner_lago_id: uuid.UUID) -> tuple[bytes, str, str | None] | None:
    """What a download link serves: the stored PDF (content, file name, etag); before the job
    has stored it, the PDF rendered now (nothing stored: a GET); None when the owner does not
    exist or has no document."""
    document = document_by_owner_lago_id(kind, owner_lago_id)
    if document is not None:
        return document.content, document.filename, document.sha256
    spec = KINDS.get(kind)
    owner = None
    if spec is not None:
        owner = db.session.scalar(select(spec.model).where(spec.model.lago_id == owner_lago_id))
    if owner is None or not spec.may_have_document(owner):  # type: ignore[union-attr]
        return None
    return render_pdf(kind, owner), download_filename(owner.number), None


def document_by_owner_lago_id(kind: str, owner_lago_id: uuid.UUID) -> Document | None:
    return db.session.scalar(
        select(Document).where(
            Document.document_type == kind, Document.owner_lago_id == owner_lago_id
        )
    )


# --- invoices ------------------------------------------------------------------------------------


def _serialize_invoice(invoice: Invoice) -> dict[str, Any]:
    from billing.serializers_invoices import serialize_invoice  # noqa: PLC0415

    return serialize_invoice(invoice, include_fees=True)


register(
    DocumentKind(
        name=DocumentType.INVOICE,
        model=Invoice,
        statuses=(InvoiceStatus.FINALIZED, InvoiceStatus.VOIDED),
        build=invoice_document,
        serialize=_serialize_invoice,
    )
)


def _serialize_credit_note(credit_note: CreditNote) -> dict[str, Any]:
    from billing.serializers_credit_notes import serialize_credit_note  # noqa: PLC0415

    return serialize_credit_note(credit_note)


register(
    DocumentKind(
        name=DocumentType.CREDIT_NOTE,
        model=CreditNote,
        # every credit note is final: its credit status only says what is left of the credit
        statuses=tuple(CreditStatus),
        build=credit_note_document,
        serialize=_serialize_credit_note,
        status_attribute="credit_status",
    )
)
