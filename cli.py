"""Command-line interface: `flask --app app <group> <command>`. Each command commits once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click
from flask import Flask, current_app
from werkzeug.serving import run_simple

from billing.errors import Conflict, NotFound, ValidationFailed
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
    from billing.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, DEMO_API_KEY, seed_demo

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
                f"    API          : {base}/api/v1  with  Authorization: Bearer {DEMO_API_KEY}",
                f"    customers    : {summary.customers_total} ({summary.customers_created} new)",
                "",
            ]
        )
    )


@jobs.command("run")
def run_jobs_command() -> None:
    """Start the scheduler in this process; stops cleanly on SIGINT or SIGTERM."""
    from jobs.scheduler import run_scheduler

    run_scheduler(current_app._get_current_object())  # type: ignore[attr-defined]


def serve_command_factory() -> click.Command:
    @click.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=int, default=None, help="Defaults to $PORT or 5000.")
    def serve(host: str, port: int | None) -> None:
        """Run the web server (no reloader) and the jobs process together; Ctrl-C stops both."""
        port = port or current_app.config["PORT"]
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
    for group in (orgs, agents, demo, jobs):
        app.cli.add_command(group)
    app.cli.add_command(serve_command_factory())
