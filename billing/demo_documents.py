"""Demo data: the PDFs of the demo's finalized invoices, so the console's preview and the API's
`file_url` work the moment `make run` is up (the jobs process would store them within a
minute anyway)."""

from __future__ import annotations

from billing.models import Organization
from billing.services import documents


def seed_documents(organization: Organization) -> int:
    """Store the PDF of every finalized or voided invoice of the organization that has none;
    returns how many were stored."""
    stored = 0
    failed: list[tuple[str, int]] = []
    while True:
        batch = documents.store_missing(organization_id=organization.id, skip=failed)
        stored += batch.stored
        failed += batch.failed
        if not batch.claimed:
            return stored
