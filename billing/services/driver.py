"""Look-ups on the hot path of ingestion and authentication, run on the DBAPI cursor.

SQLAlchemy's per-execution machinery (statement cache keys, parameter processing, the result
proxy) costs more than these one-row look-ups take in the database. `fetch` compiles a prebuilt
SELECT once per dialect and runs it on the cursor of the session's connection, inside the
session's transaction, passing each result column through its type's result processor (so a
row reads as SQLAlchemy would return it: UUIDs, UTC datetimes, JSON).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from extensions import db


@dataclass(frozen=True)
class _Query:
    sql: str
    #: parameter names, in the SQL's order when the dialect's parameters are positional
    names: tuple[str, ...]
    positional: bool
    #: a namedtuple class of the result columns
    row: Any
    processors: tuple[Callable[[Any], Any] | None, ...]


_queries: dict[tuple[str, Hashable], _Query] = {}


def fetch(
    key: Hashable, build: Callable[[str], Select[Any]], parameters: Mapping[str, Any]
) -> list[Any]:
    """The rows of the statement `build(dialect name)` (cached under `key`) with `parameters`:
    plain ids and strings, single values only (no expanding IN)."""
    connection = db.session.connection()
    dialect = connection.dialect
    query = _queries.get((dialect.name, key))
    if query is None:
        compiled = build(dialect.name).compile(dialect=dialect)
        columns = compiled._result_columns  # noqa: SLF001  (what Core's own result reads)
        query = _queries[(dialect.name, key)] = _Query(
            compiled.string,
            tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds),
            compiled.positional,
            namedtuple("Row", [column.keyname for column in columns]),
            tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            ),
        )
    bound: Any = [parameters[name] for name in query.names]
    if not query.positional:
        bound = {name: parameters[name] for name in query.names}
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(query.sql, bound)
        fetched = cursor.fetchall()
    finally:
        cursor.close()
    return [
        query.row(
            *(
                value if process is None else process(value)
                for value, process in zip(row, query.processors, strict=True)
            )
        )
        for row in fetched
    ]
