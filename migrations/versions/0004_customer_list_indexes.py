"""Indexes for sorting and filtering the console's customer list (name, e-mail, country, currency).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("name", "email", "country", "currency")
LIVE = sa.text("deleted_at IS NULL")


def upgrade():
    for column in COLUMNS:
        op.create_index(
            f"ix_customers_live_{column}",
            "customers",
            ["organization_id", column],
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )


def downgrade():
    for column in COLUMNS:
        op.drop_index(f"ix_customers_live_{column}", table_name="customers")
