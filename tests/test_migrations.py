"""The migrations build exactly the schema the models describe (no forgotten migration)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from extensions import db

# Search structures live only in the migration (FTS5 tables on SQLite, expression indexes on
# PostgreSQL): the models cannot describe them.
MIGRATION_ONLY = ("customer_search", "ix_customers_search")


def include_object(obj, name, type_, reflected, compare_to):
    return not (name or "").startswith(MIGRATION_ONLY)


def test_models_and_migrations_agree(app, db_session):
    connection = db_session.connection()
    context = MigrationContext.configure(
        connection, opts={"include_object": include_object, "compare_type": True}
    )
    assert compare_metadata(context, db.metadata) == []
