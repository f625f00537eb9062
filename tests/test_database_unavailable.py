"""When the database cannot answer (down, restarting, locked beyond the wait), the API answers a
503 in Lago's error shape and the console a plain page: no stack trace, no HTML on the API, and
the next request succeeds once the database is back (tests/faults/ restart a real PostgreSQL)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy import exc as sa_exc

from billing.services import customers as customer_service
from tests import factories

LOST = sa_exc.OperationalError(
    "SELECT 1", {}, psycopg.OperationalError("server closed the connection unexpectedly")
)
LOCKED = sa_exc.OperationalError(
    "BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")
)


def failing_once(monkeypatch, error):
    """list_customers raises `error` on its first call, then works again."""
    real = customer_service.list_customers
    calls = []

    def list_customers(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(customer_service, "list_customers", list_customers)


@pytest.mark.parametrize(
    "error",
    [
        LOST,
        LOCKED,
        # raised by the driver itself, for statements run on the DBAPI cursor
        psycopg.OperationalError("connection failed: Connection refused"),
        sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
    ],
    ids=["connection lost", "sqlite locked", "raw driver error", "pool timeout"],
)
def test_api_answers_503_in_lagos_shape_and_recovers(api_client, org, monkeypatch, error):
    factories.make_customer(org, name="Still here")
    failing_once(monkeypatch, error)

    response = api_client.get("/api/v1/customers")

    assert response.status_code == 503
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "status": 503,
        "error": "Service Unavailable",
        "code": "database_unavailable",
    }
    assert response.headers["Retry-After"] == "1"
    assert b"Traceback" not in response.data
    assert b"server closed" not in response.data  # the driver's message stays in the log

    again = api_client.get("/api/v1/customers")
    assert again.status_code == 200
    assert [c["name"] for c in again.get_json()["customers"]] == ["Still here"]


def test_a_statement_error_stays_a_500(api_client, monkeypatch):
    """A wrong statement is a bug, not an outage: retrying would not help."""
    failing_once(
        monkeypatch,
        sa_exc.OperationalError("SELECT x", {}, sqlite3.OperationalError("no such column: x")),
    )

    response = api_client.get("/api/v1/customers")

    assert response.status_code == 500
    assert response.get_json() == {"status": 500, "error": "Internal Server Error"}


def test_console_shows_a_plain_503_page(agent_client, monkeypatch):
    failing_once(monkeypatch, LOST)

    response = agent_client.get("/customers")

    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert b"Temporarily unavailable" in response.data
    assert b"Traceback" not in response.data
    assert agent_client.get("/customers").status_code == 200
