"""Database objects that only the migrations create, which the models cannot describe.

Customer search lives in FTS5 tables (SQLite) and expression indexes (PostgreSQL). Alembic's
autogenerate and the models-vs-migrations test leave them alone through `include_object`.
"""

from __future__ import annotations

from typing import Any

PREFIXES = ("customer_search", "ix_customers_search")


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    return not (name or "").startswith(PREFIXES)
