"""Audit entries name their resource; imports record when they last made progress.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("activity_logs") as batch_op:
        batch_op.add_column(sa.Column("resource_label", sa.String(length=255), nullable=True))
    with op.batch_alter_table("customer_imports") as batch_op:
        batch_op.add_column(sa.Column("progressed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("customer_imports") as batch_op:
        batch_op.drop_column("progressed_at")
    with op.batch_alter_table("activity_logs") as batch_op:
        batch_op.drop_column("resource_label")
