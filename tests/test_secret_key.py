"""Without SECRET_KEY every process of an installation signs with the installation secret that
migration 0023 stored: the web server opens the portal links the jobs process e-mails, a console
session works on every worker, and an SMTP password saved by one process is read by another."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app import create_app
from billing.models import Customer, InstallationSecret, Organization
from billing.services import mail
from billing.services import portal as portal_service
from extensions import db
from tests import factories
from tests.conftest import TEST_CONFIG, AgentClient


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Any]:
    """make_app() → a new application on the session's migrated database, as a process started
    without SECRET_KEY (neither in the environment nor in the overrides) builds it."""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    config = {key: value for key, value in TEST_CONFIG.items() if key != "SECRET_KEY"}
    apps: list[Flask] = []

    def make(url: str = database_url) -> Flask:
        app = create_app({**config, "SQLALCHEMY_DATABASE_URI": url})
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def committed_customer(app: Flask, name: str) -> tuple[int, int]:
    """(organization id, customer id) of a new, committed organization with one customer."""
    with app.app_context():
        organization = factories.make_organization()
        customer = factories.make_customer(organization, name=name)
        db.session.commit()
        return organization.id, customer.id


def test_processes_without_secret_key_share_the_stored_installation_secret(make_app: Any) -> None:
    web, jobs = make_app(), make_app()
    with web.app_context():
        stored = db.session.scalar(select(InstallationSecret.secret_key))
    assert stored and re.fullmatch("[0-9a-f]{64}", stored)
    assert web.secret_key == jobs.secret_key == stored


def test_each_database_draws_its_own_secret_and_the_offline_sql_holds_none(
    make_app: Any, tmp_path: Any
) -> None:
    """The database draws the key: two installations differ, and the SQL that `flask db upgrade
    --sql` prints for a DBA to run carries no key for everyone who reads it."""
    keys = []
    for name in ("one.db", "two.db"):
        app = make_app(f"sqlite:///{tmp_path / name}")
        with app.app_context():
            upgrade()
            keys.append(db.session.scalar(select(InstallationSecret.secret_key)))
            db.session.remove()
            db.engine.dispose()
    assert keys[0] != keys[1]

    app = make_app()
    printed = app.test_cli_runner().invoke(args=["db", "upgrade", "0022:0023", "--sql"]).output
    insert = next(line for line in printed.splitlines() if "INTO installation_secret" in line)
    assert "random" in insert  # randomblob() or gen_random_uuid()
    assert not re.search("[0-9a-f]{32}", printed)


def test_a_portal_link_mailed_by_the_jobs_process_opens_on_the_web_server(make_app: Any) -> None:
    web, jobs = make_app(), make_app()
    _, customer_id = committed_customer(jobs, "Kiribati Shipping")
    with jobs.app_context():
        customer = db.session.get_one(Customer, customer_id)
        link = mail._portal_link(customer)
    page = web.test_client().get(link.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert "Kiribati Shipping" in page.get_data(as_text=True)


def test_a_console_session_works_on_every_worker(make_app: Any) -> None:
    first, second = make_app(), make_app()
    with first.app_context():
        organization = factories.make_organization()
        agent = factories.make_agent(organization, "admin")
        db.session.commit()
        signed_in = AgentClient(first, first.test_client(), agent)
        cookie = signed_in.client.get_cookie("session")
        assert cookie is not None
    other_worker = second.test_client()
    other_worker.set_cookie("session", cookie.value)
    response = other_worker.get("/customers")
    assert response.status_code == 200
    assert "/login" not in response.headers.get("Location", "")


def test_an_smtp_password_saved_by_one_process_is_read_by_another(make_app: Any) -> None:
    web, jobs = make_app(), make_app()
    organization_id, _ = committed_customer(web, "Anyone")
    with web.app_context():
        organization = db.session.get_one(Organization, organization_id)
        mail.update_mail_settings(
            organization,
            {
                "smtp_host": "smtp.seller.test",
                "smtp_password": "hunter2-very-secret",
                "mail_from_address": "billing@seller.test",
            },
            web.config["SECRET_KEY"],
            factories.TEST_ACTOR,
        )
        db.session.commit()
    restarted_jobs = make_app()
    for process in (jobs, restarted_jobs):
        with process.app_context():
            organization = db.session.get_one(Organization, organization_id)
            settings = mail.smtp_settings(organization, process.config["SECRET_KEY"])
            assert settings is not None and settings.password == "hunter2-very-secret"


def test_secret_key_from_the_environment_wins(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = make_app()
    _, customer_id = committed_customer(installation, "Env Corp")
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    configured = make_app()
    assert configured.secret_key == "from-the-environment"
    assert configured.secret_key != installation.secret_key
    with installation.app_context():
        customer = db.session.get_one(Customer, customer_id)
        foreign = f"/portal/{portal_service.issue_token(installation.secret_key, customer)}/"
        own = f"/portal/{portal_service.issue_token('from-the-environment', customer)}/"
    assert configured.test_client().get(foreign).status_code == 403
    assert configured.test_client().get(own).status_code == 200


def test_before_the_migrations_a_process_warns_and_uses_a_key_of_its_own(
    make_app: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    with caplog.at_level(logging.WARNING, logger="app"):
        upgrading = make_app(fresh)
    assert "SECRET_KEY is not set" in caplog.text and "flask db upgrade" in caplog.text
    assert make_app(fresh).secret_key != upgrading.secret_key
    with upgrading.app_context():
        upgrade()
        db.engine.dispose()
    caplog.clear()
    after = [make_app(fresh), make_app(fresh)]
    assert after[0].secret_key == after[1].secret_key != upgrading.secret_key
    assert "SECRET_KEY is not set" not in caplog.text


def test_a_database_unreachable_at_start_is_asked_again_until_it_answers(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app as app_module

    read_stored_secret = app_module._installation_secret_key
    database_down = [True]

    def unreachable_then_back(app: Flask, **kwargs: Any) -> str:
        if database_down[0]:
            raise OperationalError("SELECT secret_key", {}, ConnectionRefusedError())
        return read_stored_secret(app, **kwargs)

    monkeypatch.setattr(app_module, "_installation_secret_key", unreachable_then_back)
    web, jobs = make_app(), make_app()  # they start: no key is made up meanwhile
    assert not web.config.get("SECRET_KEY") and not jobs.config.get("SECRET_KEY")
    client = web.test_client()
    for path in ("/login", "/api/v1/customers", "/health"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.json == {
            "status": 503,
            "error": "Service Unavailable",
            "code": "database_unavailable",
        }
    with jobs.app_context(), pytest.raises(OperationalError):
        app_module.ensure_secret_key(jobs)  # the job fails and runs again at its next tick

    database_down[0] = False
    assert client.get("/login").status_code == 200
    with jobs.app_context():
        app_module.ensure_secret_key(jobs)
        stored = db.session.scalar(select(InstallationSecret.secret_key))
    assert web.secret_key == jobs.secret_key == stored


def test_with_secret_key_an_unreachable_database_is_only_a_503(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    configured = make_app("postgresql+psycopg://ledgerline@127.0.0.1:1/nowhere")
    assert configured.secret_key == "from-the-environment"
    assert configured.test_client().get("/health").status_code == 503
