"""SQLite writers queue on `<database>-writers` for the length of their write transaction."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from sqlite3 import OperationalError

import pytest
from sqlalchemy import Engine, create_engine, text

import extensions
from extensions import reset_write_intent, set_write_intent


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def queue_is_free(tmp_path: Path) -> bool:
    """Whether another writer could take its turn now (probed without waiting)."""
    fd = os.open(tmp_path / "writers.db-writers", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing gives a probe's lock back
    return True


def test_a_write_transaction_holds_the_turn_until_commit(engine, tmp_path):
    with engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(text("INSERT INTO t VALUES (1)"))
        assert not queue_is_free(tmp_path)
        transaction.commit()
        assert queue_is_free(tmp_path)
        # committed before the turn was given back
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 1


def test_rollback_and_errors_give_the_turn_back(engine, tmp_path):
    with engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(text("INSERT INTO t VALUES (1)"))
        transaction.rollback()
        assert queue_is_free(tmp_path)
    with pytest.raises(ZeroDivisionError), engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (2)"))
        raise ZeroDivisionError
    assert queue_is_free(tmp_path)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 0


def test_a_connection_closed_inside_its_transaction_gives_the_turn_back(engine, tmp_path):
    connection = engine.connect()
    connection.begin()
    connection.execute(text("INSERT INTO t VALUES (1)"))
    connection.close()
    assert queue_is_free(tmp_path)


def test_read_only_transactions_do_not_queue(engine, tmp_path):
    token = set_write_intent(False)
    try:
        with engine.connect() as connection:
            connection.begin()
            connection.execute(text("SELECT count(*) FROM t"))
            assert queue_is_free(tmp_path)
    finally:
        reset_write_intent(token)


def test_a_writer_waits_at_most_the_busy_timeout_for_its_turn(engine, monkeypatch):
    """A stuck writer (here: another connection of the same thread) gives "database is locked"
    after the busy timeout, as SQLite would, instead of blocking the next writer for ever."""
    monkeypatch.setattr(extensions, "SQLITE_BUSY_TIMEOUT_MS", 50)
    with engine.connect() as holder:
        holder.begin()
        holder.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as waiter, pytest.raises(OperationalError, match="locked"):
            waiter.begin()
            waiter.execute(text("INSERT INTO t VALUES (2)"))
