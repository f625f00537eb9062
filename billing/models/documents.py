"""Generated documents (invoice and credit-note PDFs), kept in the database so every process
serves them (DESIGN.md, Data and storage)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from billing.models.types import UTCDateTime
from billing.timeutil import now_utc
from extensions import Base


class DocumentType(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class Document(Base):
    """One rendered PDF of an invoice or a credit note. Its owner is a row of another table
    (named by `document_type`), so there is no foreign key to it; the unique key makes a second
    render of the same owner (another jobs process, the API at the same moment) store nothing."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("document_type", "owner_id", name="uq_documents_owner"),
        # download links name the owner by its lago id
        UniqueConstraint("document_type", "owner_lago_id", name="uq_documents_owner_lago_id"),
        CheckConstraint("document_type IN ('invoice', 'credit_note')", name="ck_documents_type"),
        CheckConstraint("byte_size = length(content)", name="ck_documents_byte_size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    #: a DocumentType value
    document_type: Mapped[str] = mapped_column(String(16))
    #: the owner's primary key (invoices.id or credit_notes.id)
    owner_id: Mapped[int] = mapped_column(BigInteger)
    #: the owner's lago_id, as the API and the download links name it
    owner_lago_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    #: what the download is saved as: `<number>.pdf`
    filename: Mapped[str] = mapped_column(String(255))
    #: the PDF bytes (bytea on PostgreSQL); deferred, so listing documents loads no file
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    #: length of `content` in bytes
    byte_size: Mapped[int] = mapped_column(BigInteger)
    #: hex SHA-256 of `content` (an ETag, and a check that the bytes served are the ones stored)
    sha256: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
