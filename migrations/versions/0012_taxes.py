"""Taxes: the organization's taxes, their links to customers, plans and charges, and the taxes
applied to fees and invoices (snapshots, so finalized invoices never change).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

Plans and charges kept their `tax_codes` in a JSON column while taxes did not exist (codes were
echoed, never checked); the links now live in association tables, and those columns go. Plain
ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+), not batch mode: no table is rebuilt.
"""

import sqlalchemy as sa
from alembic import op

import billing.models.types

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_EXACT = billing.models.types.ExactDecimal(length=64)
_UTC = billing.models.types.UTCDateTime(timezone=True)


def _snapshot_columns():
    """What fee and invoice applied taxes share (models.taxes._TaxSnapshot)."""
    return [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('lago_id', sa.Uuid(), nullable=False),
        sa.Column('lago_tax_id', sa.Uuid(), nullable=False),
        sa.Column('tax_code', sa.String(length=255), nullable=False),
        sa.Column('tax_name', sa.String(length=255), nullable=False),
        sa.Column('tax_rate', _EXACT, nullable=False),
        sa.Column('tax_description', sa.Text(), nullable=True),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('created_at', _UTC, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('lago_id'),
    ]


def _link_table(name):
    op.create_table(f'{name}_taxes',
    sa.Column(f'{name}_id', sa.Integer(), nullable=False),
    sa.Column('tax_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint([f'{name}_id'], [f'{name}s.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tax_id'], ['taxes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint(f'{name}_id', 'tax_id')
    )
    op.create_index(f'ix_{name}_taxes_tax_id', f'{name}_taxes', ['tax_id'], unique=False)


def upgrade():
    op.create_table('taxes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('rate', _EXACT, nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('applied_to_organization', sa.Boolean(), nullable=False),
    sa.Column('created_at', _UTC, nullable=False),
    sa.Column('updated_at', _UTC, nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id'),
    sa.UniqueConstraint('organization_id', 'code', name='uq_taxes_code')
    )
    op.create_index('ix_taxes_org_created', 'taxes', ['organization_id', 'created_at', 'id'], unique=False)
    for name in ('customer', 'plan', 'charge'):
        _link_table(name)

    op.create_table('fee_applied_taxes',
    *_snapshot_columns(),
    sa.Column('fee_id', sa.Integer(), nullable=False),
    sa.Column('base_amount_cents', _EXACT, nullable=False),
    sa.Column('precise_amount_cents', _EXACT, nullable=False),
    sa.CheckConstraint('amount_cents >= 0', name='ck_fee_applied_taxes_amount'),
    sa.ForeignKeyConstraint(['fee_id'], ['fees.id'], ondelete='CASCADE'),
    )
    op.create_index('ix_fee_applied_taxes_fee', 'fee_applied_taxes', ['fee_id'], unique=False)

    op.create_table('invoice_applied_taxes',
    *_snapshot_columns(),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('fees_amount_cents', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_cents >= 0 AND fees_amount_cents >= 0', name='ck_invoice_applied_taxes_amount'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.UniqueConstraint('invoice_id', 'tax_code', name='uq_invoice_applied_taxes_code')
    )

    op.add_column('fees', sa.Column('taxes_rate', _EXACT, server_default='0', nullable=False))
    op.drop_column('plans', 'tax_codes')
    op.drop_column('charges', 'tax_codes')


def downgrade():
    op.add_column('charges', sa.Column('tax_codes', sa.JSON(), server_default='[]', nullable=False))
    op.add_column('plans', sa.Column('tax_codes', sa.JSON(), server_default='[]', nullable=False))
    op.drop_column('fees', 'taxes_rate')
    op.drop_table('invoice_applied_taxes')
    op.drop_index('ix_fee_applied_taxes_fee', table_name='fee_applied_taxes')
    op.drop_table('fee_applied_taxes')
    for name in ('charge', 'plan', 'customer'):
        op.drop_index(f'ix_{name}_taxes_tax_id', table_name=f'{name}_taxes')
        op.drop_table(f'{name}_taxes')
    op.drop_index('ix_taxes_org_created', table_name='taxes')
    op.drop_table('taxes')
