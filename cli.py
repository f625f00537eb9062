"""Command-line interface: `flask --app app <group> <command>`. Each command commits once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

import click
from flask import Flask, current_app
from werkzeug.serving import run_simple

from billing.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from billing.models import CustomerImport
from billing.services import audit
from billing.services.organizations import (
    create_agent,
    create_api_key,
    create_organization,
    find_organization,
)
from extensions import db


def _fail(message: str) -> None:
    db.session.rollback()
    raise click.ClickException(message)


orgs = click.Group("orgs", help="Manage organizations.")
agents = click.Group("agents", help="Manage console agents.")
demo = click.Group("demo", help="Demo data for a first look.")
jobs = click.Group("jobs", help="The jobs process (scheduler).")
customers = click.Group("customers", help="Customers in bulk.")
usage = click.Group("usage", help="Usage buckets.")
billing = click.Group("billing", help="Invoicing by hand (catch-up, backfill).")


@orgs.command("create")
@click.argument("name")
@click.option("--api-key", "api_key", help="Use this API key instead of generating one.")
@click.option("--timezone", default="UTC", show_default=True)
def create_org_command(name: str, api_key: str | None, timezone: str) -> None:
    """Create organization NAME and print its id and API key (shown only now)."""
    try:
        organization = create_organization(name, timezone=timezone)
        _key, raw_key = create_api_key(organization, audit.CLI, raw_key=api_key)
    except Conflict as exc:
        _fail(f"{exc.field} already exists")
    except ValidationFailed as exc:
        _fail(f"invalid input: {exc.details}")
    db.session.commit()
    click.echo(f"organization_id: {organization.lago_id}")
    click.echo(f"api_key: {raw_key}")


@agents.command("create")
@click.argument("email")
@click.option("--org", "org_name", required=True, help="Organization name.")
@click.option("--role", type=click.Choice(["admin", "support", "viewer"]), required=True)
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--name", default=None)
def create_agent_command(
    email: str, org_name: str, role: str, password: str, name: str | None
) -> None:
    """Create a console agent in an organization."""
    try:
        organization = find_organization(org_name)
        agent = create_agent(organization, email, role, password, audit.CLI, name=name)
    except NotFound:
        _fail(f"no organization named {org_name!r}")
    except Conflict:
        _fail(f"an agent with e-mail {email!r} already exists")
    except ValidationFailed as exc:
        _fail(f"invalid input: {exc.details}")
    db.session.commit()
    click.echo(f"agent {agent.email} ({agent.role.value}) created in {organization.name}")


@demo.command("seed")
def seed_demo_command() -> None:
    """Create the demo organization, its demo key and admin, and demo customers (idempotent)."""
    from billing.demo import (
        DEMO_ADMIN_EMAIL,
        DEMO_ADMIN_PASSWORD,
        DEMO_AGENTS,
        DEMO_API_KEY,
        seed_demo,
    )

    summary = seed_demo()
    db.session.commit()
    base = current_app.config["PUBLIC_URL"] or f"http://127.0.0.1:{current_app.config['PORT']}"
    click.echo(
        "\n".join(
            [
                "",
                "  Ledgerline demo (DEMO ONLY: never use these credentials in production)",
                f"    organization : {summary.organization_name}",
                f"    console      : {base}/  as {DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD}",
                f"                   (also {', '.join(DEMO_AGENTS)}, same password)",
                f"    API          : {base}/api/v1  with  Authorization: Bearer {DEMO_API_KEY}",
                f"    customers    : {summary.customers_total} ({summary.customers_created} new)",
                *(
                    [
                        f"    usage        : {summary.metering.subscriptions} subscriptions, "
                        f"{summary.metering.events} events of the last 30 days, "
                        f"{summary.metering.invoices} invoices (new)"
                    ]
                    if summary.metering
                    else []
                ),  # fmt: skip
                "",
            ]
        )
    )


@jobs.command("run")
def run_jobs_command() -> None:
    """Start the scheduler in this process; stops cleanly on SIGINT or SIGTERM."""
    from jobs.scheduler import run_scheduler

    run_scheduler(current_app._get_current_object())  # type: ignore[attr-defined]


@customers.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--org", "org_name", required=True, help="Organization name.")
@click.option("--dry-run", is_flag=True, help="Check the file and show what would change.")
def import_customers_command(file: BinaryIO, org_name: str, dry_run: bool) -> None:
    """Create or update customers from a CSV FILE (upsert by external_id).

    The header row names Lago customer fields (external_id, name, email, …, shipping_city,
    metadata.<key>); an empty cell leaves a field unchanged; rows without an external_id get
    a generated one. Unlike other commands this one commits after each batch of rows, so an
    interrupted run keeps what it did (the jobs process resumes a run whose process died).
    """
    from billing.services import imports
    from blueprints.console.imports import row_error_message

    try:
        organization = find_organization(org_name)
    except NotFound:
        _fail(f"no organization named {org_name!r}")
    try:
        customer_import = imports.preview_import(
            organization,
            os.path.basename(file.name),
            file.read(imports.MAX_BYTES + 1),
            agent_id=None,
        )
    except imports.ImportFileInvalid as exc:
        _fail(exc.message)
    overview = imports.import_overview(customer_import, sample_size=0)
    click.echo(
        f"{customer_import.filename}: {customer_import.total_rows} rows: "
        f"{customer_import.created_count} to create, {customer_import.updated_count} to update, "
        f"{len(customer_import.row_errors)} invalid"
    )
    if overview.generated_ids:
        click.echo(
            f"Rows without external_id: {overview.generated_ids} (each gets a generated one, cus_…)"
        )
    if overview.ignored_columns:
        click.echo(f"Ignored columns: {', '.join(overview.ignored_columns)}")
    _echo_row_errors(customer_import.row_errors, row_error_message)
    if dry_run:
        db.session.rollback()
        click.echo("Dry run: nothing was written.")
        return
    if imports.valid_rows(customer_import) == 0:
        db.session.rollback()
        click.echo("Nothing to import.")
        return
    imports.start_import(customer_import)
    db.session.commit()
    refused_in_preview = {entry["row"] for entry in customer_import.row_errors}
    with click.progressbar(length=customer_import.total_rows, label="Importing") as bar:

        def progress(current: CustomerImport) -> None:
            db.session.commit()  # one commit per batch: a new run resumes from here
            bar.update(current.processed_rows - bar.pos)

        try:
            imports.run_import(customer_import, audit.CLI, progress=progress)
            db.session.commit()
        except imports.ImportSuperseded:
            _fail("the import was taken over by the jobs process, which will finish it")
        except (Exception, KeyboardInterrupt) as exc:
            db.session.rollback()
            stopped = db.session.get_one(CustomerImport, customer_import.id)
            with contextlib.suppress(NotAllowed):
                imports.fail_import(stopped, imports.failure_message(stopped))
                db.session.commit()
            if isinstance(exc, KeyboardInterrupt):
                raise
            current_app.logger.exception("customer import failed")
            _fail(imports.failure_message(stopped))
    _echo_row_errors(
        [e for e in customer_import.row_errors if e["row"] not in refused_in_preview],
        row_error_message,
    )
    click.echo(
        f"Imported: {customer_import.created_count} created, "
        f"{customer_import.updated_count} updated, "
        f"{len(customer_import.row_errors)} not imported."
    )


def _echo_row_errors(row_errors: list[dict[str, Any]], message: Callable[[str, str], str]) -> None:
    for entry in row_errors:
        reasons = "; ".join(
            f"{name}: {message(name, code)}"
            for name, codes in entry["errors"].items()
            for code in codes
        )
        label = f" ({entry['external_id']})" if entry.get("external_id") else ""
        click.echo(f"  row {entry['row']}{label}: {reasons}")


@usage.command("rebuild")
@click.option("--organization", "org_name", default=None, help="Only this organization's.")
@click.option("--subscription", "external_id", default=None, help="Only this external id's.")
def rebuild_usage_command(org_name: str | None, external_id: str | None) -> None:
    """Recompute usage buckets from the stored events (all subscriptions by default)."""
    from sqlalchemy import select

    from billing.models import Subscription
    from billing.services.usage import rebuild_usage

    query = select(Subscription.id)
    if org_name is not None:
        try:
            query = query.where(Subscription.organization_id == find_organization(org_name).id)
        except NotFound:
            _fail(f"no organization named {org_name!r}")
    if external_id is not None:
        query = query.where(Subscription.external_id == external_id)
    ids = list(db.session.scalars(query))
    if external_id is not None and not ids:
        _fail(f"no subscription with external id {external_id!r}")
    rebuilt = rebuild_usage(ids if (org_name or external_id) else None)
    db.session.commit()
    for item in rebuilt:
        click.echo(
            f"{item.external_id}: {item.events_count} events in {item.buckets_count} buckets"
        )
    click.echo(f"Rebuilt the usage of {len(rebuilt)} subscriptions.")


@billing.command("close-periods")
@click.option(
    "--at",
    "at_text",
    default=None,
    metavar="ISO-DATETIME",
    help="Invoice the periods ended at this instant (naive = UTC); default now.",
)
@click.option("--organization", "org_name", default=None, help="Only this organization's.")
def close_periods_command(at_text: str | None, org_name: str | None) -> None:
    """Invoice every billing period that has ended and has no invoice yet (the job's work).

    Safe to run while the jobs process runs, and to rerun: a period is never invoiced twice.
    """
    from datetime import datetime

    from billing.services import invoicing
    from billing.timeutil import as_utc, now_utc

    try:
        at = as_utc(datetime.fromisoformat(at_text)) if at_text else now_utc()
    except ValueError:
        _fail(f"not an ISO date or datetime: {at_text!r}")
    organization_id = None
    if org_name is not None:
        try:
            organization_id = find_organization(org_name).id
        except NotFound:
            _fail(f"no organization named {org_name!r}")
    due = invoicing.count_due(at, organization_id)
    db.session.commit()
    with click.progressbar(length=due, label="Closing periods") as bar:
        report = invoicing.close_periods(at, bar.update, organization_id=organization_id)
    click.echo(
        f"{report.invoices} invoice(s) created for {report.subscriptions} subscription(s); "
        f"{report.already_invoiced} period(s) already invoiced."
    )
    if report.failed:
        _fail(f"{len(report.failed)} subscription(s) failed: {', '.join(report.failed)}")


def serve_command_factory() -> click.Command:
    @click.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, default=None, help="Defaults to $PORT or 5000.")
    def serve(host: str, port: int | None) -> None:
        """Run the web server (no reloader) and the jobs process together; Ctrl-C stops both."""
        port = port or current_app.config["PORT"]
        from billing.demo_portal import demo_portal_banner

        base = current_app.config["PUBLIC_URL"] or f"http://{host}:{port}"
        click.echo(demo_portal_banner(base, current_app.secret_key))  # type: ignore[arg-type]
        jobs_process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
            [sys.executable, "-m", "flask", "--app", "app", "jobs", "run"], env=os.environ.copy()
        )
        try:
            run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]
        finally:
            jobs_process.send_signal(signal.SIGTERM)
            try:
                jobs_process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                jobs_process.kill()

    return serve


def register_commands(app: Flask) -> None:
    for group in (orgs, agents, demo, jobs, customers, usage, billing):
        app.cli.add_command(group)
    app.cli.add_command(serve_command_factory())
