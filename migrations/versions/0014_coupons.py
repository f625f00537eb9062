"""Coupons: coupons and their plan/metric limits, coupons applied to customers, what each took
off an invoice, and each fee's exact share of its invoice's coupons.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01

The new fee column is a plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+), not batch mode.
"""

import sqlalchemy as sa
from alembic import op

import billing.models.types

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

LIVE = sa.text('deleted_at IS NULL')


def upgrade():
    op.create_table('coupons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('coupon_type', sa.String(length=16), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=True),
    sa.Column('amount_currency', sa.String(length=3), nullable=True),
    sa.Column('percentage_rate', billing.models.types.ExactDecimal(length=64), nullable=True),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('frequency_duration', sa.Integer(), nullable=True),
    sa.Column('reusable', sa.Boolean(), nullable=False),
    sa.Column('expiration', sa.String(length=16), nullable=False),
    sa.Column('expiration_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('limited_plans', sa.Boolean(), nullable=False),
    sa.Column('limited_billable_metrics', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('terminated_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("coupon_type IN ('fixed_amount', 'percentage')", name='ck_coupons_coupon_type'),
    sa.CheckConstraint("frequency IN ('once', 'recurring', 'forever')", name='ck_coupons_frequency'),
    sa.CheckConstraint("status IN ('active', 'terminated')", name='ck_coupons_status'),
    sa.CheckConstraint("coupon_type <> 'fixed_amount' OR (amount_cents > 0 AND amount_currency IS NOT NULL)", name='ck_coupons_fixed_amount'),
    sa.CheckConstraint("coupon_type <> 'percentage' OR percentage_rate IS NOT NULL", name='ck_coupons_percentage'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    op.create_index('uq_coupons_live_code', 'coupons', ['organization_id', 'code'], unique=True,
                    sqlite_where=LIVE, postgresql_where=LIVE)

    op.create_table('coupon_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('billable_metric_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(plan_id IS NULL) <> (billable_metric_id IS NULL)', name='ck_coupon_targets_one'),
    sa.ForeignKeyConstraint(['billable_metric_id'], ['billable_metrics.id'], ),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('coupon_id', 'billable_metric_id', name='uq_coupon_targets_metric'),
    sa.UniqueConstraint('coupon_id', 'plan_id', name='uq_coupon_targets_plan')
    )

    op.create_table('applied_coupons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=True),
    sa.Column('amount_cents_remaining', sa.BigInteger(), nullable=True),
    sa.Column('amount_currency', sa.String(length=3), nullable=True),
    sa.Column('percentage_rate', billing.models.types.ExactDecimal(length=64), nullable=True),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('frequency_duration', sa.Integer(), nullable=True),
    sa.Column('frequency_duration_remaining', sa.Integer(), nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('terminated_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('active', 'terminated')", name='ck_applied_coupons_status'),
    sa.CheckConstraint('amount_cents_remaining IS NULL OR amount_cents_remaining >= 0', name='ck_applied_coupons_amount_remaining'),
    sa.CheckConstraint('frequency_duration_remaining IS NULL OR frequency_duration_remaining >= 0', name='ck_applied_coupons_duration_remaining'),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    op.create_index('ix_applied_coupons_customer', 'applied_coupons', ['customer_id', 'status', 'created_at'], unique=False)
    op.create_index('ix_applied_coupons_org_created', 'applied_coupons', ['organization_id', 'created_at', 'id'], unique=False)

    op.create_table('invoice_coupons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('applied_coupon_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('before_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('after_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name='ck_invoice_coupons_amount'),
    sa.ForeignKeyConstraint(['applied_coupon_id'], ['applied_coupons.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_id', 'applied_coupon_id', name='uq_invoice_coupons_pair'),
    sa.UniqueConstraint('lago_id')
    )
    op.create_index('ix_invoice_coupons_applied_coupon', 'invoice_coupons', ['applied_coupon_id'], unique=False)

    op.add_column('fees', sa.Column('precise_coupons_amount_cents', billing.models.types.ExactDecimal(length=64), server_default='0', nullable=False))


def downgrade():
    op.drop_column('fees', 'precise_coupons_amount_cents')
    op.drop_index('ix_invoice_coupons_applied_coupon', table_name='invoice_coupons')
    op.drop_table('invoice_coupons')
    op.drop_index('ix_applied_coupons_org_created', table_name='applied_coupons')
    op.drop_index('ix_applied_coupons_customer', table_name='applied_coupons')
    op.drop_table('applied_coupons')
    op.drop_table('coupon_targets')
    op.drop_index('uq_coupons_live_code', table_name='coupons')
    op.drop_table('coupons')
