"""Add-on taxes: the link applying taxes to an add-on (its `tax_codes`).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01

A new table only (plain CREATE TABLE, as 0012's links): no table is altered.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('add_on_taxes',
    sa.Column('add_on_id', sa.Integer(), nullable=False),
    sa.Column('tax_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['add_on_id'], ['add_ons.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tax_id'], ['taxes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('add_on_id', 'tax_id')
    )
    op.create_index('ix_add_on_taxes_tax_id', 'add_on_taxes', ['tax_id'], unique=False)


def downgrade():
    op.drop_index('ix_add_on_taxes_tax_id', table_name='add_on_taxes')
    op.drop_table('add_on_taxes')
