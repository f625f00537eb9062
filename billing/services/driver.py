"""Statements of the hot paths of ingestion and authentication, run on the DBAPI cursor.

SQLAlchemy's per-execution machinery (statement cache keys, parameter processing, the result
proxy) costs more than these one-row look-ups and small writes take in the database. A prebuilt
statement is compiled once per dialect and run on the cursor of the session's connection,
inside the session's transaction. Parameters go through the bind processors of their columns'
types and result columns through their result processors (UTCDateTime, ExactDecimal, JSON,
Uuid), so what is written and read is what SQLAlchemy would write and read.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ClauseElement, Engine

from extensions import db


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: parameter names, in the SQL's order when the dialect's parameters are positional
    names: tuple[str, ...]
    positional: bool
    bind_processors: tuple[Callable[[Any], Any] | None, ...]
    #: a namedtuple class of the result columns (None for a statement without rows)
    row: Any
    result_processors: tuple[Callable[[Any], Any] | None, ...]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        bound = [
            values[name] if process is None else process(values[name])
            for name, process in zip(self.names, self.bind_processors, strict=True)
        ]
        return bound if self.positional else dict(zip(self.names, bound, strict=True))

    def many_parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The parameters of several rows, column by column. A column holding the very same
        object in every row (a batch's organization, creation time, default timestamp) is
        processed once: the processors are pure functions of the value."""
        columns = []
        for name, process in zip(self.names, self.bind_processors, strict=True):
            values = [row[name] for row in rows]
            if process is not None:
                first = values[0]
                if all(value is first for value in values):
                    values = [process(first)] * len(values)
                else:
                    values = list(map(process, values))
            columns.append(values)
        if self.positional:
            return list(zip(*columns, strict=True))
        return [dict(zip(self.names, bound, strict=True)) for bound in zip(*columns, strict=True)]


_compiled: dict[tuple[str, Hashable], _Compiled] = {}


def connection() -> Any:
    """The session's connection (its transaction begins if none has). Each call costs tens of
    microseconds of session bookkeeping: a request's hot path takes it once and passes it on."""
    return db.session.connection()


def _compile(
    key: Hashable,
    build: Callable[[str], ClauseElement],
    column_keys: list[str] | None,
    connection: Any | None,
) -> tuple[Any, _Compiled]:
    """The connection (the session's when None) and the statement `build(dialect name)`,
    compiled once per dialect under `key` (an INSERT for the columns `column_keys`)."""
    if connection is None:
        connection = db.session.connection()
    return connection, _compiled_for(connection.dialect, key, build, column_keys)


def _compiled_for(
    dialect: Any,
    key: Hashable,
    build: Callable[[str], ClauseElement],
    column_keys: list[str] | None,
) -> _Compiled:
    compiled = _compiled.get((dialect.name, key))
    if compiled is None:
        statement: Any = build(dialect.name).compile(dialect=dialect, column_keys=column_keys)
        names = (
            tuple(statement.positiontup or ()) if statement.positional else tuple(statement.binds)
        )
        columns = statement._result_columns or []  # noqa: SLF001  (what Core's result reads)
        compiled = _compiled[(dialect.name, key)] = _Compiled(
            statement.string,
            names,
            statement.positional,
            tuple(
                statement.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            ),
            namedtuple("Row", [column.keyname for column in columns]) if columns else None,
            tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            ),
        )
    return compiled


def fetch(
    key: Hashable,
    build: Callable[[str], ClauseElement],
    parameters: Mapping[str, Any],
    connection: Any | None = None,
) -> list[Any]:
    """The rows of the SELECT `build(dialect name)` (compiled once under `key`) with
    `parameters`, single values only (no expanding IN), on `connection` (default: the
    session's)."""
    connection, compiled = _compile(key, build, None, connection)
    return _rows(compiled, _fetchall(connection.connection.driver_connection, compiled, parameters))


def fetch_before_transaction(
    key: Hashable, build: Callable[[str], ClauseElement], parameters: Mapping[str, Any]
) -> list[Any]:
    """`fetch`, except that on SQLite, when the session has no transaction yet, the SELECT runs
    on a pooled connection of its own in autocommit: a read that takes no lock. A request's
    transaction, and with it SQLite's single write lock (BEGIN IMMEDIATE), then begins at its
    first statement, not at authentication: what a request does in between (parsing and
    checking a batch of events) no longer holds the other workers' writes back."""
    session = db.session()
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or not isinstance(bind, Engine) or session.in_transaction():
        return fetch(key, build, parameters)  # (tests bind the session to a Connection)
    compiled = _compiled_for(bind.dialect, key, build, None)
    raw = bind.raw_connection()
    try:
        fetched = _fetchall(raw.driver_connection, compiled, parameters)
    finally:
        raw.close()
    return _rows(compiled, fetched)


def _fetchall(driver_connection: Any, compiled: _Compiled, parameters: Mapping[str, Any]) -> Any:
    cursor = driver_connection.cursor()
    try:
        cursor.execute(compiled.sql, compiled.parameters(parameters))
        return cursor.fetchall()
    finally:
        cursor.close()


def _rows(compiled: _Compiled, fetched: Sequence[Any]) -> list[Any]:
    """The fetched rows as namedtuples, through the columns' result processors."""
    processed = [
        (index, process)
        for index, process in enumerate(compiled.result_processors)
        if process is not None
    ]
    if not processed:
        return [compiled.row._make(row) for row in fetched]
    rows = []
    for row in fetched:
        values = list(row)
        for index, process in processed:
            values[index] = process(values[index])
        rows.append(compiled.row._make(values))
    return rows


def execute(
    key: Hashable,
    build: Callable[[str], ClauseElement],
    rows: Sequence[Mapping[str, Any]],
    connection: Any | None = None,
) -> int:
    """Run the statement `build(dialect name)` (no RETURNING; compiled once under `key` for the
    columns of `rows`) once per row on `connection` (default: the session's); the number of rows
    it changed."""
    connection, compiled = _compile(key, build, list(rows[0]), connection)
    cursor = connection.connection.driver_connection.cursor()
    try:
        if len(rows) == 1:
            cursor.execute(compiled.sql, compiled.parameters(rows[0]))
        else:
            cursor.executemany(compiled.sql, compiled.many_parameters(rows))
        return int(cursor.rowcount)
    finally:
        cursor.close()
