"""Wallets (prepaid credits) and wallet transactions.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01

New tables only: no existing table is rebuilt. One active wallet per customer is a partial
unique index.
"""

import sqlalchemy as sa
from alembic import op

import billing.models.types

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status = 'active'")


def upgrade():
    op.create_table('wallets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rate_amount', billing.models.types.ExactDecimal(length=64), nullable=False),
    sa.Column('credits_balance', billing.models.types.ExactDecimal(length=64), nullable=False),
    sa.Column('balance_cents', sa.BigInteger(), nullable=False),
    sa.Column('consumed_credits', billing.models.types.ExactDecimal(length=64), nullable=False),
    sa.Column('consumed_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('expiration_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_consumed_credit_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('terminated_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'terminated')", name='ck_wallets_status'),
    sa.CheckConstraint('balance_cents >= 0 AND consumed_amount_cents >= 0', name='ck_wallets_amounts'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    op.create_index('uq_wallets_customer_active', 'wallets', ['customer_id'], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_index('ix_wallets_org_created', 'wallets', ['organization_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_wallets_status_expiration', 'wallets', ['status', 'expiration_at'], unique=False)

    op.create_table('wallet_transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('wallet_id', sa.Integer(), nullable=False),
    sa.Column('transaction_type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('transaction_status', sa.String(length=16), nullable=False),
    sa.Column('credit_amount', billing.models.types.ExactDecimal(length=64), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('settled_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("transaction_type IN ('inbound', 'outbound')", name='ck_wallet_transactions_type'),
    sa.CheckConstraint("status IN ('pending', 'settled', 'failed')", name='ck_wallet_transactions_status'),
    sa.CheckConstraint("transaction_status IN ('purchased', 'granted', 'voided', 'invoiced')", name='ck_wallet_transactions_transaction_status'),
    sa.CheckConstraint('amount_cents >= 0', name='ck_wallet_transactions_amount'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.ForeignKeyConstraint(['wallet_id'], ['wallets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    op.create_index('ix_wallet_transactions_wallet_created', 'wallet_transactions', ['wallet_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_wallet_transactions_invoice', 'wallet_transactions', ['invoice_id'], unique=False)


def downgrade():
    op.drop_index('ix_wallet_transactions_invoice', table_name='wallet_transactions')
    op.drop_index('ix_wallet_transactions_wallet_created', table_name='wallet_transactions')
    op.drop_table('wallet_transactions')
    op.drop_index('ix_wallets_status_expiration', table_name='wallets')
    op.drop_index('ix_wallets_org_created', table_name='wallets')
    op.drop_index('uq_wallets_customer_active', table_name='wallets')
    op.drop_table('wallets')
