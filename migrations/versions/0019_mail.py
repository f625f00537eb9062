"""E-mail: SMTP settings, invoice e-mails, dunning, agent invitations.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01

Columns added to `organizations`, `customers` and `agents` (no table rebuild, so the customers'
search triggers stay as they are), and the `emails` table: every message, queued in the
transaction that causes it and delivered by the jobs process.
"""

import sqlalchemy as sa

import billing.models.types
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = billing.models.types.UTCDateTime(timezone=True)


def upgrade():
    op.add_column("organizations", sa.Column("smtp_host", sa.String(255), nullable=True))
    op.add_column("organizations", sa.Column("smtp_port", sa.Integer(), nullable=True))
    op.add_column(
        "organizations",
        sa.Column("smtp_security", sa.String(8), nullable=False, server_default="starttls"),
    )
    op.add_column("organizations", sa.Column("smtp_username", sa.String(255), nullable=True))
    op.add_column("organizations", sa.Column("smtp_password_encrypted", sa.Text(), nullable=True))
    op.add_column("organizations", sa.Column("mail_from_address", sa.String(255), nullable=True))
    op.add_column("organizations", sa.Column("mail_from_name", sa.String(255), nullable=True))
    op.add_column(
        "organizations",
        sa.Column("invoice_emails", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "organizations",
        sa.Column("dunning_schedule", JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column(
        "customers",
        sa.Column("invoice_emails", sa.String(8), nullable=False, server_default="inherit"),
    )
    op.add_column("agents", sa.Column("invited_at", UTC_DATETIME, nullable=True))
    op.create_table(
        "emails",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lago_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column(
            "organization_id", sa.Integer(), sa.ForeignKey("organizations.id"), nullable=False
        ),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=True),
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=True),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id"), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(128), nullable=True),
        sa.Column("recipients", sa.String(1024), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("context", JSON, nullable=False),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("attachment_name", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=True),
        sa.Column("last_attempt_at", UTC_DATETIME, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.UniqueConstraint("organization_id", "dedupe_key", name="uq_emails_dedupe_key"),
        sa.CheckConstraint(
            "status IN ('queued', 'retrying', 'sent', 'stored', 'failed', 'canceled')",
            name="ck_emails_status",
        ),
    )
    op.create_index(
        "ix_emails_due",
        "emails",
        ["next_attempt_at"],
        sqlite_where=sa.text("status IN ('queued', 'retrying')"),
        postgresql_where=sa.text("status IN ('queued', 'retrying')"),
    )
    op.create_index("ix_emails_org_created", "emails", ["organization_id", "created_at"])
    op.create_index("ix_emails_customer", "emails", ["customer_id", "created_at"])
    op.create_index("ix_emails_invoice", "emails", ["invoice_id"])


def downgrade():
    op.drop_table("emails")
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("invited_at")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("invoice_emails")
    with op.batch_alter_table("organizations") as batch_op:
        for name in (
            "dunning_schedule",
            "invoice_emails",
            "mail_from_name",
            "mail_from_address",
            "smtp_password_encrypted",
            "smtp_username",
            "smtp_security",
            "smtp_port",
            "smtp_host",
        ):
            batch_op.drop_column(name)
