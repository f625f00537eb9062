"""CSV import of customers: upload, dry-run preview, confirm, progress."""

from __future__ import annotations

import logging
import uuid

from flask import abort, flash, redirect, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from billing.errors import NotAllowed
from billing.models import CustomerImport
from billing.services import imports as import_service
from blueprints.console import bp
from blueprints.console.forms import ImportForm
from blueprints.console.helpers import (
    agent_actor,
    current_agent,
    current_organization,
    render_htmx,
    requires,
)
from blueprints.console.messages import field_message
from extensions import db

log = logging.getLogger(__name__)

#: invalid rows listed on the page (the CLI lists them all)
ERRORS_SHOWN = 200
RECENT_IMPORTS = 10

IMPORT_MESSAGES = {
    ("external_id", import_service.DUPLICATE_IN_FILE): (
        "This external id is also on an earlier row of the file; only the first is imported."
    ),
    ("metadata", "invalid_count"): (
        "With the metadata already on the customer, this would make more than 50 items."
    ),
}


def row_error_message(field: str, code: str) -> str:
    """The human reason for a row's error code (shared with the command line)."""
    return IMPORT_MESSAGES.get((field, code)) or field_message(field, code)


def import_or_404(lago_id: uuid.UUID) -> CustomerImport:
    """The current organization's import with this id."""
    customer_import = db.session.scalar(
        select(CustomerImport).where(
            CustomerImport.lago_id == lago_id,
            CustomerImport.organization_id == current_organization().id,
        )
    )
    if customer_import is None:
        abort(404)
    return customer_import


def _recent_imports() -> list[CustomerImport]:
    return list(
        db.session.scalars(
            select(CustomerImport)
            .where(CustomerImport.organization_id == current_organization().id)
            .order_by(CustomerImport.created_at.desc(), CustomerImport.id.desc())
            .limit(RECENT_IMPORTS)
        )
    )


def _render_upload(form: ImportForm, status: int = 200) -> ResponseReturnValue:
    return render_htmx(
        "console/import_new.html",
        "console/_import_form.html",
        status=status,
        form=form,
        recent=_recent_imports(),
        columns=import_service.KNOWN_COLUMNS,
        max_rows=import_service.MAX_ROWS,
        max_megabytes=import_service.MAX_BYTES // (1024 * 1024),
        timezone=current_organization().timezone,
    )


@bp.route("/imports/new", methods=["GET", "POST"])
@requires("write")
def new_import() -> ResponseReturnValue:
    """Upload a CSV file; it is checked and previewed, nothing is written to customers yet."""
    form = ImportForm()
    if not form.is_submitted():
        return _render_upload(form)
    if not form.validate():
        return _render_upload(form, 422)
    upload = form.file.data
    try:
        customer_import = import_service.preview_import(
            current_organization(),
            upload.filename or "customers.csv",
            upload.read(import_service.MAX_BYTES + 1),
            current_agent().id,
        )
    except import_service.ImportFileInvalid as exc:
        db.session.rollback()
        form.file.errors = [exc.message]
        return _render_upload(form, 422)
    db.session.commit()
    return redirect(url_for("console.import_detail", lago_id=customer_import.lago_id))


@bp.get("/imports/<uuid:lago_id>")
def import_detail(lago_id: uuid.UUID) -> ResponseReturnValue:
    """The preview (counts, invalid rows, first rows) or the run's progress and result.

    htmx requests get the progress partial alone: the page polls it while the import runs.
    """
    customer_import = import_or_404(lago_id)
    overview = (
        import_service.import_overview(customer_import)
        if customer_import.status == "previewed"
        else None
    )
    return render_htmx(
        "console/import.html",
        "console/_import_progress.html",
        customer_import=customer_import,
        overview=overview,
        valid_rows=import_service.valid_rows(customer_import),
        inline_max=import_service.INLINE_MAX_ROWS,
        errors_shown=ERRORS_SHOWN,
        message=row_error_message,
        timezone=current_organization().timezone,
    )


@bp.post("/imports/<uuid:lago_id>/confirm")
@requires("write")
def confirm_import(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Apply a previewed import: at once if small, otherwise in the jobs process."""
    customer_import = import_or_404(lago_id)
    detail_url = url_for("console.import_detail", lago_id=customer_import.lago_id)
    valid_rows = import_service.valid_rows(customer_import)
    if valid_rows == 0:
        flash("No row of this file can be imported.", "error")
        return redirect(detail_url)
    try:
        if valid_rows > import_service.INLINE_MAX_ROWS:
            import_service.queue_import(customer_import)
            db.session.commit()
            return redirect(detail_url)
        import_service.start_import(customer_import)
        import_service.run_import(customer_import, agent_actor())
    except NotAllowed:
        db.session.rollback()
        flash("This import was already confirmed.", "warning")
        return redirect(detail_url)
    except Exception:
        # Nothing was committed: the import is still a preview and no customer changed.
        db.session.rollback()
        log.exception("customer import %r failed", str(lago_id))
        flash("The import failed and nothing was written. The error was logged.", "error")
        return redirect(detail_url)
    db.session.commit()
    flash(
        f"Imported: {customer_import.created_count} created, "
        f"{customer_import.updated_count} updated.",
        "success",
    )
    return redirect(detail_url)


@bp.post("/imports/<uuid:lago_id>/cancel")
@requires("write")
def cancel_import(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Drop a previewed import; nothing was written, so nothing is undone."""
    customer_import = import_or_404(lago_id)
    try:
        import_service.cancel_import(customer_import)
    except NotAllowed:
        flash("This import was already confirmed; it cannot be cancelled.", "warning")
        return redirect(url_for("console.import_detail", lago_id=lago_id))
    db.session.commit()
    flash(f"Import of {customer_import.filename} cancelled; no customer was changed.", "success")
    return redirect(url_for("console.new_import"))
