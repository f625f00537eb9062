"""Flask extensions, created unbound and bound in create_app()."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()

#: busy wait for SQLite's write lock, in milliseconds
SQLITE_BUSY_TIMEOUT_MS = 15000

# SQLite allows one writer. A transaction that reads first and writes later cannot wait for the
# lock (SQLite answers "database is locked" at once when the snapshot it read is stale), so
# every transaction that may write starts with BEGIN IMMEDIATE and queues for the lock instead.
# Read-only requests (GET) switch this off and run concurrently.
_sqlite_write_intent: ContextVar[bool] = ContextVar("sqlite_write_intent", default=True)


def set_write_intent(value: bool) -> object:
    """Say whether the next transactions on this thread may write; returns a reset token."""
    return _sqlite_write_intent.set(value)


def reset_write_intent(token: object) -> None:
    _sqlite_write_intent.reset(token)  # type: ignore[arg-type]


@contextmanager
def write_intent() -> Iterator[None]:
    """Run the transactions opened inside the block with SQLite's write lock taken up front."""
    token = _sqlite_write_intent.set(True)
    try:
        yield
    finally:
        _sqlite_write_intent.reset(token)


def _decimal_add(a: str | None, b: str | None) -> str | None:
    """SQLite's exact `+` for decimals stored as text (ExactDecimal): Decimal arithmetic."""
    if a is None or b is None:
        return b if a is None else a
    return format(Decimal(a) + Decimal(b), "f")


def _decimal_max(a: str | None, b: str | None) -> str | None:
    """The greater of two text decimals, ignoring nulls like PostgreSQL's GREATEST."""
    if a is None or b is None:
        return b if a is None else a
    return a if Decimal(a) >= Decimal(b) else b


@event.listens_for(Engine, "connect")
def _on_connect(dbapi_connection, connection_record) -> None:  # noqa: ANN001
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        # The busy timeout goes first, so that even the next pragmas wait for a lock.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # 64 MB of page cache per connection (the default is 2 MB): search and list pages
        # read the index and the customers table's hot pages from memory.
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.close()
        # exact arithmetic on text decimals, for usage bucket upserts done in SQL
        dbapi_connection.create_function("ll_decimal_add", 2, _decimal_add, deterministic=True)
        dbapi_connection.create_function("ll_decimal_max", 2, _decimal_max, deterministic=True)
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own transaction
        # handling would defer it and break savepoints).
        dbapi_connection.isolation_level = None


@event.listens_for(Engine, "begin")
def _on_begin(connection) -> None:  # noqa: ANN001
    if connection.dialect.name == "sqlite":
        # On the DBAPI connection itself: SQLAlchemy's execution path (events, result object)
        # costs more than BEGIN does, and every transaction pays it.
        connection.connection.driver_connection.execute(
            "BEGIN IMMEDIATE" if _sqlite_write_intent.get() else "BEGIN"
        )
