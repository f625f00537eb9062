"""The installation secret: a signing key generated once and shared by every process.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01

Without SECRET_KEY in the environment each process used to make up a random key of its own, so
the jobs process signed portal links the web server refused, gunicorn workers could not read one
another's sessions, and a restart made the stored SMTP passwords unreadable. The key is generated
here, once, by the migration (not by whichever process starts first: no race), and create_app
reads it when SECRET_KEY is not set. The database draws it, so that the SQL which
`flask db upgrade --sql` prints for a DBA holds no key: each database that runs it draws its own.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
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
    # 64 hex digits from the database's random source: on PostgreSQL (13+) two version-4 UUIDs
    # of its strong random generator, 244 random bits; on SQLite 32 bytes of randomblob (its
    # generator is seeded by the operating system)
    random_hex = (
        "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"
        if op.get_context().dialect.name == "postgresql"
        else "lower(hex(randomblob(32)))"
    )
    op.execute(f"INSERT INTO installation_secret (id, secret_key) VALUES (1, {random_hex})")


def downgrade():
    op.drop_table("installation_secret")
