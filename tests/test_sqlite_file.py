"""The SQLite database file: WAL mode set once, when the file is created, and a busy timeout set
first thing on every connection (so that even the connection's own pragmas wait for a lock)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app import create_app
from extensions import SQLITE_BUSY_TIMEOUT_MS, db
from tests.conftest import TEST_CONFIG


def journal_mode(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()


def test_a_new_database_file_is_created_in_wal_mode(tmp_path):
    path = tmp_path / "instance" / "ledgerline.db"

    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})

    assert path.exists()
    assert journal_mode(path) == "wal"
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        db.engine.dispose()


def test_the_journal_mode_of_an_existing_file_is_left_alone(tmp_path):
    """WAL is set once, at creation: starting the app and connecting do not set it again."""
    path = tmp_path / "existing.db"
    sqlite3.connect(path).close()
    assert journal_mode(path) == "delete"

    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "delete"
        db.engine.dispose()

    assert journal_mode(path) == "delete"


def test_every_connection_sets_the_busy_timeout_before_anything_else(tmp_path):
    statements: list[list[str]] = []

    def connect() -> sqlite3.Connection:
        # No timeout of the driver's own: the busy timeout seen below is the pragma's.
        connection = sqlite3.connect(tmp_path / "timeout.db", timeout=0, check_same_thread=False)
        traced: list[str] = []
        statements.append(traced)
        connection.set_trace_callback(traced.append)
        return connection

    # NullPool: each checkout is a new connection
    engine = create_engine(
        f"sqlite:///{tmp_path / 'timeout.db'}", creator=connect, poolclass=NullPool
    )
    timeouts = []
    for _ in range(2):
        with engine.connect() as connection:
            timeouts.append(connection.execute(text("PRAGMA busy_timeout")).scalar())

    assert len(statements) == 2
    assert timeouts == [SQLITE_BUSY_TIMEOUT_MS] * 2
    for traced in statements:
        assert traced[0] == f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
