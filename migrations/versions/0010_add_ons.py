"""Add-ons and one-off invoices: the add_ons table, and the add-on and description of fees.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

The two new columns of `fees` are plain ALTER TABLE ADD COLUMN (the foreign key inline, which
SQLite accepts for a nullable column); dropping them on SQLite needs batch mode (SQLite refuses
DROP COLUMN on a column with a foreign key). `fees` has no triggers to re-create.
"""

import sqlalchemy as sa
from alembic import op

import billing.models.types

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

LIVE = sa.text('deleted_at IS NULL')


def upgrade():
    op.create_table('add_ons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('invoice_display_name', sa.String(length=255), nullable=True),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('amount_currency', sa.String(length=3), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_cents >= 0', name='ck_add_ons_amount'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    op.create_index(
        'uq_add_ons_live_code', 'add_ons', ['organization_id', 'code'], unique=True,
        sqlite_where=LIVE, postgresql_where=LIVE,
    )
    op.create_index(
        'ix_add_ons_org_created', 'add_ons', ['organization_id', 'created_at', 'id'], unique=False
    )
    op.add_column(
        'fees',
        sa.Column('add_on_id', sa.Integer(), sa.ForeignKey('add_ons.id'), nullable=True),
        inline_references=True,
    )
    op.add_column('fees', sa.Column('description', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('fees', schema=None) as batch_op:
        batch_op.drop_column('description')
        batch_op.drop_column('add_on_id')
    op.drop_index('ix_add_ons_org_created', table_name='add_ons')
    op.drop_index('uq_add_ons_live_code', table_name='add_ons')
    op.drop_table('add_ons')
