"""The installation secret: a signing key generated once and shared by every process.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01

Without SECRET_KEY in the environment each process used to make up a random key of its own, so
the jobs process signed portal links the web server refused, gunicorn workers could not read one
another's sessions, and a restart made the stored SMTP passwords unreadable. The key is generated
here, once, by the migration (not by whichever process starts first: no race), and create_app
reads it when SECRET_KEY is not set.
"""

import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "installation_secret",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret_key", sa.String(length=128), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint("id = 1", name="ck_installation_secret_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "secret_key": secrets.token_hex(32)}])


def downgrade():
    op.drop_table("installation_secret")
