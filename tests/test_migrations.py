"""The migrations build exactly the schema the models describe (no forgotten migration)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from billing.models.migration_only import include_object
from extensions import db


def test_models_and_migrations_agree(app, db_session):
    connection = db_session.connection()
    context = MigrationContext.configure(
        connection, opts={"include_object": include_object, "compare_type": True}
    )
    assert compare_metadata(context, db.metadata) == []
