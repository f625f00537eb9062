"""Test set-up: a migrated database per backend, a rolled-back transaction per test.

Every database test runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL too: the
session-scoped `database_url` fixture is parametrized over the backends, and the schema always
comes from the Alembic migrations, so FTS tables, triggers and indexes are the real ones.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from app import create_app
from billing.models import Organization
from billing.timeutil import set_clock
from config import normalize_database_url
from extensions import db
from tests import factories

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])
# Rate limits are off in tests, except in tests/test_rate_limits.py, which turns them on.
TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "PUBLIC_URL": "http://testserver",
    "RATE_LIMITS_ENABLED": False,
}


def _migrate(url: str) -> None:
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, migrated database for the whole session, on one backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'ledgerline-test.db'}"
        _migrate(url)
        yield url
        return
    assert TEST_DATABASE_URL
    server = make_url(normalize_database_url(TEST_DATABASE_URL))
    name = f"ledgerline_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class TestClient(FlaskClient):
    """Requests of a test share its app context, where Flask-Login and Flask-WTF cache the
    signed-in agent and the CSRF token in `g`; forget both before each request so that every
    client is seen as itself, as with real requests."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            g.pop("_login_user", None)
            g.pop("csrf_token", None)
        return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    app.test_client_class = TestClient
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def db_session(app: Flask) -> Iterator[Any]:
    """Each test in one transaction, rolled back at the end; commits become savepoints."""
    with app.app_context():
        engine = db.engine
        connection = engine.connect()
        transaction = connection.begin()
        engines = db.engines
        engines[None] = connection  # type: ignore[index]
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
        try:
            yield db.session
        finally:
            db.session.remove()
            transaction.rollback()
            connection.close()
            engines[None] = engine  # type: ignore[index]
            set_clock(None)


@pytest.fixture
def clock(request: pytest.FixtureRequest, db_session: Any) -> list[datetime]:
    """Ledgerline's clock stopped at the test module's CLOCK_START for the test (db_session
    gives the real clock back): a one-item list holding the time, set [0] to move it."""
    start = getattr(request.module, "CLOCK_START", None)
    if start is None:
        raise pytest.UsageError(f"{request.module.__name__} uses `clock` but sets no CLOCK_START")
    now = [start]
    set_clock(lambda: now[0])
    return now


@pytest.fixture
def client(app: Flask, db_session: Any) -> Any:
    return app.test_client()


@pytest.fixture
def org(db_session: Any) -> Any:
    return factories.make_organization()


class ApiClient:
    """The Flask test client with an organization's Bearer key on every request."""

    def __init__(self, client: Any, raw_key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {raw_key}"}

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, headers=self.headers, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        return self.client.put(url, headers=self.headers, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.client.delete(url, headers=self.headers, **kwargs)


@pytest.fixture
def api_client(client: Any, org: Any) -> ApiClient:
    return ApiClient(client, factories.make_api_key(org))


class AgentClient:
    """The Flask test client signed in as an agent, sending the CSRF token like the console.

    `post(url, data=...)` adds the token to the form (and the header htmx sends); pass
    `csrf=False` to leave it out. `htmx=True` marks a request as coming from htmx.
    """

    def __init__(self, app: Flask, client: Any, agent: Any) -> None:
        self.client = client
        self.agent = agent
        raw = uuid.uuid4().hex
        with client.session_transaction() as session:
            session["_user_id"] = str(agent.id)
            session["_fresh"] = True
            session["csrf_token"] = raw
        self.csrf_token = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)

    def _headers(self, htmx: bool, csrf: bool, headers: dict[str, str] | None) -> dict[str, str]:
        result = dict(headers or {})
        if htmx:
            result["HX-Request"] = "true"
        if csrf:
            result["X-CSRFToken"] = self.csrf_token
        return result

    def get(self, url: str, *, htmx: bool = False, **kwargs: Any) -> Any:
        headers = self._headers(htmx, False, kwargs.pop("headers", None))
        return self.client.get(url, headers=headers, **kwargs)

    def post(
        self, url: str, data: Any = None, *, htmx: bool = False, csrf: bool = True, **kwargs: Any
    ) -> Any:
        headers = self._headers(htmx, csrf, kwargs.pop("headers", None))
        if csrf and (data is None or isinstance(data, dict)):
            data = {"csrf_token": self.csrf_token, **(data or {})}
        return self.client.post(url, data=data, headers=headers, **kwargs)


@pytest.fixture
def agent_client(app: Flask, client: Any, org: Any) -> AgentClient:
    """Signed in as an admin of `org`."""
    return AgentClient(app, client, factories.make_agent(org, "admin"))


@pytest.fixture
def make_agent_client(app: Flask, client: Any, org: Any) -> Any:
    """make_agent_client("viewer") → a client signed in as a new agent of `org` with that role."""

    def make(role: str) -> AgentClient:
        return AgentClient(app, app.test_client(), factories.make_agent(org, role))

    return make


# ---------------------------------------------------------------------------------------------
# Live server: a real HTTP server on a free port, for the official SDK and concurrency tests.


@dataclass
class LiveServer:
    url: str
    app: Flask

    def new_organization(self) -> tuple[Any, str]:
        """A committed organization of its own and its API key (tests isolate themselves so)."""
        with self.app.app_context():
            organization = factories.make_organization()
            raw_key = factories.make_api_key(organization)
            db.session.commit()
            return organization.id, raw_key

    def new_agent(self, organization_id: int, role: str = "admin") -> str:
        """A committed agent of that organization; returns its e-mail (password AGENT_PASSWORD)."""
        with self.app.app_context():
            organization = db.session.get_one(Organization, organization_id)
            agent = factories.make_agent(organization, role)
            db.session.commit()
            return agent.email

    def seed(self, organization_id: int, payloads: list[dict[str, Any]]) -> None:
        with self.app.app_context():
            organization = db.session.get_one(Organization, organization_id)
            for payload in payloads:
                factories.make_customer(organization, **payload)
            db.session.commit()


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[LiveServer]:
    live_app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", live_app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with live_app.app_context():
            db.engine.dispose()
