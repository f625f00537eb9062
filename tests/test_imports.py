"""CSV import of customers: preview without writes, upsert on confirm, the job, the command line."""

from __future__ import annotations

import csv
import io
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing.errors import NotAllowed
from billing.models import ActivityLog, Customer, CustomerImport
from billing.services import imports
from billing.services.customers import find_customer
from billing.timeutil import now_utc, set_clock
from extensions import db
from jobs.imports import run_queued_imports
from tests import factories
from tests.factories import TEST_ACTOR


def csv_text(header, *rows, delimiter=","):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def preview(org, text, filename="customers.csv"):
    return imports.preview_import(org, filename, text.encode("utf-8"), agent_id=None)


def confirm(customer_import, **options):
    imports.start_import(customer_import)
    return imports.run_import(customer_import, TEST_ACTOR, **options)


def customer_count(org):
    return db.session.scalar(
        select(func.count()).select_from(Customer).where(Customer.organization_id == org.id)
    )


def metadata_of(customer):
    db.session.refresh(customer)
    return {m.key: (m.value, m.display_in_invoice) for m in customer.metadata_items}


# --- preview -----------------------------------------------------------------------------------


def test_preview_lists_bad_rows_with_reasons_and_writes_no_customer(org):
    factories.make_customer(org, external_id="existing", name="Old name")
    text = csv_text(
        ["external_id", "name", "email", "country", "net_payment_term"],
        ["acme", "Acme", "billing@acme.test", "FR", "30"],
        ["bad-email", "Bad", "not-an-email", "FR", ""],
        ["bad-country", "Bad country", "", "XX", "-3"],
        ["acme", "Acme again", "", "", ""],
        ["", "No id", "noid@example.com", "", ""],
        ["existing", "Renamed", "", "", ""],
    )

    customer_import = preview(org, text)

    assert customer_import.status == "previewed"
    assert (customer_import.total_rows, customer_import.created_count) == (6, 2)
    assert customer_import.updated_count == 1
    assert customer_import.row_errors == [
        {"row": 3, "external_id": "bad-email", "errors": {"email": ["invalid_email_format"]}},
        {
            "row": 4,
            "external_id": "bad-country",
            "errors": {
                "country": ["not_a_valid_country_code"],
                "net_payment_term": ["value_is_out_of_range"],
            },
        },
        {"row": 5, "external_id": "acme", "errors": {"external_id": [imports.DUPLICATE_IN_FILE]}},
    ]
    assert customer_count(org) == 1
    assert find_customer(org, "existing").name == "Old name"
    overview = imports.import_overview(customer_import)
    assert overview.generated_ids == 1
    assert [(r.number, r.action, r.external_id) for r in overview.sample] == [
        (2, "create", "acme"),
        (6, "create", None),
        (7, "update", "existing"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"external_id,name\n", "header row but no customers"),
        (b"external_id,nom,plan\nacme,Acme,gold\n", "Unknown columns: nom, plan."),
        (b"acme,Acme Inc\nglobex,Globex\n", "The first row must name the columns"),
        (
            b"external_id,Name,name\nacme,A,B\n",
            "name\u201d appears twice",
        ),
        (b"external_id,name\nacme,Acme,extra\n", "Row 2 has more cells than the header"),
        (b"external_id,\nacme,oops\n", "Row 2 has a value in column 2, which has no name"),
        ("external_id,name\nacme,Café\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_as_a_whole(org, content, message):
    with pytest.raises(imports.ImportFileInvalid) as refused:
        imports.preview_import(org, "x.csv", content, agent_id=None)

    assert message in refused.value.message
    assert db.session.scalar(select(func.count()).select_from(CustomerImport)) == 0


def test_size_and_row_limits_are_explained(org, monkeypatch):
    too_big = b"external_id\n" + b"x" * imports.MAX_BYTES
    with pytest.raises(imports.ImportFileInvalid, match="larger than 10 MB"):
        imports.preview_import(org, "big.csv", too_big, agent_id=None)

    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    with pytest.raises(imports.ImportFileInvalid, match="more than 3 rows"):
        preview(org, csv_text(["external_id"], ["a"], ["b"], ["c"], ["d"]))


def test_bom_semicolons_spreadsheet_headers_and_blank_lines_are_accepted(org):
    text = (
        "\ufeffExternal ID;Name;Customer Type;metadata.Plan\r\n"
        "acme;Acme, Inc;Company;gold\r\n"
        ";;;\r\n"
    )

    customer_import = preview(org, text)
    confirm(customer_import)

    acme = find_customer(org, "acme")
    assert (acme.name, acme.customer_type) == ("Acme, Inc", "company")
    assert metadata_of(acme) == {"Plan": ("gold", False)}


def test_columns_of_a_console_export_are_ignored_with_a_notice(org):
    text = csv_text(
        ["external_id", "name", "status", "created_at", "metadata"],
        ["acme", "Acme", "active", "2024-01-01T00:00:00+00:00", "plan=gold"],
    )

    customer_import = preview(org, text)

    assert customer_import.row_errors == []
    assert imports.import_overview(customer_import).ignored_columns == [
        "status",
        "created_at",
        "metadata",
    ]


# --- confirm -----------------------------------------------------------------------------------


def test_confirm_upserts_by_external_id_keeping_empty_cells_and_merging_metadata(org):
    existing = factories.make_customer(
        org,
        external_id="existing",
        name="Old name",
        email="keep@example.com",
        phone="+33 1 00 00 00 00",
        metadata=[
            {"key": "plan", "value": "silver", "display_in_invoice": True},
            {"key": "region", "value": "eu"},
        ],
    )
    text = csv_text(
        ["external_id", "name", "email", "phone", "metadata.plan", "metadata.tier",
         "shipping_city", "document_locale", "invoice_grace_period", "net_payment_term"],
        ["existing", "New name", "", "", "gold", "", "Paris", "fr", "3", ""],
        ["newone", "New One", "new@example.com", "", "", "vip", "", "", "", "15"],
        ["", "Generated", "", "", "", "", "", "", "", ""],
    )  # fmt: skip

    customer_import = confirm(preview(org, text))

    assert customer_import.status == "done"
    assert (customer_import.created_count, customer_import.updated_count) == (2, 1)
    assert customer_import.processed_rows == 3
    db.session.refresh(existing)
    assert existing.name == "New name"
    assert existing.email == "keep@example.com"
    assert existing.phone == "+33 1 00 00 00 00"
    assert (existing.shipping_city, existing.document_locale) == ("Paris", "fr")
    assert existing.invoice_grace_period == 3
    assert metadata_of(existing) == {"plan": ("gold", True), "region": ("eu", False)}
    newone = find_customer(org, "newone")
    assert (newone.email, newone.net_payment_term) == ("new@example.com", 15)
    assert metadata_of(newone) == {"tier": ("vip", False)}
    generated = db.session.scalar(
        select(Customer).where(Customer.organization_id == org.id, Customer.name == "Generated")
    )
    assert generated.external_id.startswith("cus_")
    assert customer_count(org) == 3


def test_each_change_is_audited_with_the_importing_actor(org):
    factories.make_customer(org, external_id="existing", name="Old name")
    text = csv_text(["external_id", "name"], ["existing", "New name"], ["fresh", "Fresh"])

    confirm(preview(org, text))

    entries = db.session.scalars(
        select(ActivityLog).where(
            ActivityLog.organization_id == org.id, ActivityLog.actor_label == TEST_ACTOR.label
        )
    ).all()
    by_type = {e.activity_type: e for e in entries if e.resource_type == "customer"}
    assert by_type["customer.updated"].changes["name"] == ["Old name", "New name"]
    assert "customer.created" in by_type


def test_a_row_refused_at_run_time_is_reported_and_the_others_still_go_in(org):
    full = factories.make_customer(
        org,
        external_id="full",
        metadata=[{"key": f"k{i}", "value": "v"} for i in range(50)],
    )
    text = csv_text(
        ["external_id", "name", "metadata.extra"],
        ["full", "Full", "one too many"],
        ["other", "Other", ""],
    )

    customer_import = confirm(preview(org, text))

    assert customer_import.status == "done"
    assert customer_import.row_errors == [
        {"row": 2, "external_id": "full", "errors": {"metadata": ["invalid_count"]}}
    ]
    assert (customer_import.created_count, customer_import.updated_count) == (1, 0)
    db.session.refresh(full)
    assert full.name != "Full"
    assert find_customer(org, "other") is not None


def test_progress_is_reported_after_each_batch(org):
    text = csv_text(["external_id", "name"], *[[f"c{i}", f"C {i}"] for i in range(5)])
    customer_import = preview(org, text)
    seen = []

    confirm(
        customer_import,
        batch_size=2,
        progress=lambda current: seen.append(
            (current.processed_rows, current.created_count, current.status)
        ),
    )

    assert seen == [(2, 2, "running"), (4, 4, "running"), (5, 5, "running")]
    assert customer_import.status == "done"
    assert customer_import.finished_at is not None


def test_an_import_runs_once_and_a_preview_can_be_cancelled(org):
    text = csv_text(["external_id"], ["a"])
    customer_import = confirm(preview(org, text))

    with pytest.raises(NotAllowed):
        imports.start_import(customer_import)
    with pytest.raises(NotAllowed):
        imports.cancel_import(customer_import)

    cancelled = preview(org, text)
    imports.cancel_import(cancelled)
    assert db.session.get(CustomerImport, cancelled.id) is None


# --- the job -----------------------------------------------------------------------------------


def test_the_job_runs_a_queued_import_with_progress_and_final_counts(org, monkeypatch):
    factories.make_customer(org, external_id="c0", name="Before")
    rows = [[f"c{i}", f"Customer {i}"] for i in range(7)] + [["bad", "", "nope"]]
    customer_import = preview(org, csv_text(["external_id", "name", "email"], *rows))
    imports.queue_import(customer_import)
    monkeypatch.setattr(imports, "BATCH_SIZE", 3)
    commits = []
    real_commit = db.session.commit

    def commit():
        current = db.session.get(CustomerImport, customer_import.id)
        commits.append((current.status, current.processed_rows))
        real_commit()

    monkeypatch.setattr(db.session, "commit", commit)

    ran = run_queued_imports()

    assert ran is not None and ran.id == customer_import.id
    assert ("running", 3) in commits and ("running", 6) in commits
    db.session.refresh(customer_import)
    assert customer_import.status == "done"
    assert customer_import.processed_rows == customer_import.total_rows == 8
    assert (customer_import.created_count, customer_import.updated_count) == (6, 1)
    assert [e["row"] for e in customer_import.row_errors] == [9]
    assert find_customer(org, "c0").name == "Customer 0"
    assert run_queued_imports() is None


def test_a_queued_import_is_claimed_only_once(org):
    customer_import = preview(org, csv_text(["external_id"], ["a"]))
    imports.queue_import(customer_import)

    first = imports.claim_queued_import()
    second = imports.claim_queued_import()

    assert first is customer_import and first.status == "running"
    assert second is None


def test_two_processes_claiming_at_once_never_get_the_same_import(app):
    """Two sessions on two connections, the second claiming while the first holds its claim."""
    with app.app_context():
        organization = factories.make_organization()
        customer_import = preview(organization, csv_text(["external_id"], ["a"]))
        imports.queue_import(customer_import)
        db.session.commit()
        import_id = customer_import.id
    claimed: dict[str, int | None] = {}
    first_claimed = threading.Event()

    def claimer(name: str, hold: bool) -> None:
        with app.app_context():
            if not hold:
                first_claimed.wait(10)
            got = imports.claim_queued_import()
            claimed[name] = got.id if got else None
            if hold:
                first_claimed.set()
                threading.Event().wait(0.3)  # keep the claim open while the other tries
            db.session.commit()

    threads = [
        threading.Thread(target=claimer, args=("first", True)),
        threading.Thread(target=claimer, args=("second", False)),
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert claimed == {"first": import_id, "second": None}
    finally:
        with app.app_context():
            db.session.execute(db.delete(CustomerImport).where(CustomerImport.id == import_id))
            db.session.commit()


def test_a_stalled_run_is_requeued_and_resumes_without_duplicates(org):
    rows = [[f"c{i}" if i % 2 else "", f"Customer {i}"] for i in range(6)]
    customer_import = preview(org, csv_text(["external_id", "name"], *rows))
    imports.queue_import(customer_import)
    claimed = imports.claim_queued_import()
    db.session.commit()

    def crash_after_first_batch(current):
        db.session.commit()
        raise RuntimeError("the jobs process was killed")

    with pytest.raises(RuntimeError):
        imports.run_import(claimed, TEST_ACTOR, batch_size=4, progress=crash_after_first_batch)
    db.session.rollback()
    assert (claimed.status, claimed.processed_rows) == ("running", 4)

    assert run_queued_imports() is None  # a fresh heartbeat: the run may still be alive
    later = now_utc() + imports.STALLED_AFTER + timedelta(minutes=1)
    set_clock(lambda: later)
    assert run_queued_imports().id == customer_import.id

    db.session.refresh(customer_import)
    assert customer_import.status == "done"
    assert customer_import.created_count == 6
    assert customer_count(org) == 6


def test_a_run_that_breaks_is_marked_failed_with_a_human_reason(org, monkeypatch):
    customer_import = preview(org, csv_text(["external_id"], ["a"], ["b"]))
    imports.queue_import(customer_import)

    def broken(*args, **kwargs):
        raise RuntimeError("connection reset by peer")

    monkeypatch.setattr(imports, "upsert_customer", broken)
    run_queued_imports()

    db.session.refresh(customer_import)
    assert customer_import.status == "failed"
    assert customer_import.failure.startswith("The import stopped after 0 of 2 rows")
    assert "RuntimeError" not in customer_import.failure
    assert "connection reset" not in customer_import.failure


# --- the command line --------------------------------------------------------------------------


def run_cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(
        csv_text(
            ["external_id", "name", "email"],
            ["acme", "Acme", "billing@acme.test"],
            ["globex", "Globex", "not-an-email"],
            ["", "Initech", ""],
        )
    )
    return path


def test_cli_dry_run_prints_the_preview_and_writes_nothing(app, org, bad_file):
    result = run_cli(app, "customers", "import", str(bad_file), "--org", org.name, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "3 rows: 2 to create, 0 to update, 1 invalid" in result.output
    assert "row 3 (globex): email: Enter valid e-mail addresses" in result.output
    assert "Rows without external_id: 1 (each gets a generated one" in result.output
    assert "Dry run: nothing was written." in result.output
    assert customer_count(org) == 0
    assert db.session.scalar(select(func.count()).select_from(CustomerImport)) == 0


def test_cli_import_applies_the_valid_rows(app, org, bad_file):
    result = run_cli(app, "customers", "import", str(bad_file), "--org", org.name)

    assert result.exit_code == 0, result.output
    assert "Imported: 2 created, 0 updated, 1 not imported." in result.output
    assert find_customer(org, "acme").email == "billing@acme.test"
    assert find_customer(org, "globex") is None
    customer_import = db.session.scalar(select(CustomerImport))
    assert (customer_import.status, customer_import.agent_id) == ("done", None)
    sources = db.session.scalars(
        select(ActivityLog.source).where(
            ActivityLog.organization_id == org.id, ActivityLog.resource_type == "customer"
        )
    ).all()
    assert sources == ["cli", "cli"]


def test_cli_refuses_an_invalid_file_and_an_unknown_organization(app, org, tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("id,nom\n1,Acme\n")

    invalid = run_cli(app, "customers", "import", str(path), "--org", org.name)
    no_org = run_cli(app, "customers", "import", str(path), "--org", "Nobody Inc")

    assert invalid.exit_code != 0
    assert "Unknown columns: id, nom." in invalid.output
    assert no_org.exit_code != 0 and "no organization" in no_org.output
