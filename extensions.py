"""Flask extensions, created unbound and bound in create_app()."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, Pool, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
babel = Babel()
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
        files = [row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main"]
        cursor.close()
        if files and files[0]:
            # the writers' queue of this database file (see _take_writer_turn)
            connection_record.info[_WRITER_QUEUE] = (
                os.getpid(),
                os.open(files[0] + "-writers", os.O_RDWR | os.O_CREAT, 0o600),
            )
        # exact arithmetic on text decimals, for usage bucket upserts done in SQL
        dbapi_connection.create_function("ll_decimal_add", 2, _decimal_add, deterministic=True)
        dbapi_connection.create_function("ll_decimal_max", 2, _decimal_max, deterministic=True)
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own transaction
        # handling would defer it and break savepoints).
        dbapi_connection.isolation_level = None


# SQLite's own wait for the write lock is a busy handler that sleeps 1, 2, 5, 10… ms between
# tries: a worker that finds the lock taken sleeps far longer than a short write holds it, while
# the cores idle. Writers therefore first queue on an exclusive flock() of `<database>-writers`
# (one open file per connection, so threads queue too), tried again every millisecond at most,
# so the next writer starts right after the previous one committed. Processes that do not queue
# (the sqlite3 shell) are still waited for by the busy handler. The turn is given back right
# after COMMIT or ROLLBACK.
_WRITER_QUEUE = "ledgerline_writer_queue"
_WRITER_TURN = "ledgerline_writer_turn"


def _take_writer_turn(info: dict) -> None:
    """Wait for this connection's turn to write, at most the busy timeout (then "database is
    locked", as SQLite itself would say): a writer stuck in its transaction, or a thread that
    already holds a turn on another connection, must not block the others for ever."""
    queue = info.get(_WRITER_QUEUE)
    if queue is None or queue[0] != os.getpid() or info.get(_WRITER_TURN):
        return  # no file (in memory), or a descriptor inherited across fork(): no queue
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.0001
    while True:
        try:
            fcntl.flock(queue[1], fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError("database is locked") from None
            time.sleep(pause)  # short: a turn lasts about a millisecond
            pause = min(pause * 2, 0.001)
    info[_WRITER_TURN] = True


def _give_writer_turn_back(info: dict) -> None:
    if info.pop(_WRITER_TURN, False):
        fcntl.flock(info[_WRITER_QUEUE][1], fcntl.LOCK_UN)


@event.listens_for(Engine, "begin")
def _on_begin(connection) -> None:  # noqa: ANN001
    if connection.dialect.name == "sqlite":
        # On the DBAPI connection itself: SQLAlchemy's execution path (events, result object)
        # costs more than BEGIN does, and every transaction pays it.
        driver_connection = connection.connection.driver_connection
        if not _sqlite_write_intent.get():
            driver_connection.execute("BEGIN")
            return
        info = connection.connection.info
        _take_writer_turn(info)
        try:
            driver_connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            _give_writer_turn_back(info)
            raise


@event.listens_for(Engine, "commit")
def _on_commit(connection) -> None:  # noqa: ANN001
    """Commit on the DBAPI connection first (SQLAlchemy's own commit then finds nothing to do),
    so that the next writer's turn starts once the data is committed, not before."""
    info = connection.connection.info
    if connection.dialect.name != "sqlite" or not info.get(_WRITER_TURN):
        return
    try:
        connection.connection.driver_connection.commit()
    except Exception:  # noqa: BLE001  (SQLAlchemy's commit, next, raises it as it should)
        return
    _give_writer_turn_back(info)


@event.listens_for(Engine, "rollback")
def _on_rollback(connection) -> None:  # noqa: ANN001
    info = connection.connection.info
    if connection.dialect.name != "sqlite" or not info.get(_WRITER_TURN):
        return
    try:
        connection.connection.driver_connection.rollback()
    finally:
        _give_writer_turn_back(info)


@event.listens_for(Pool, "checkin")
def _on_checkin(dbapi_connection, connection_record) -> None:  # noqa: ANN001
    """A connection back in the pool holds no turn (a transaction ended without an event)."""
    if connection_record is not None:
        _give_writer_turn_back(connection_record.info)


@event.listens_for(Pool, "close")
def _on_close(dbapi_connection, connection_record) -> None:  # noqa: ANN001
    if connection_record is None:
        return
    queue = connection_record.info.pop(_WRITER_QUEUE, None)
    connection_record.info.pop(_WRITER_TURN, None)
    if queue is not None and queue[0] == os.getpid():
        os.close(queue[1])  # closing the file gives the turn back too
