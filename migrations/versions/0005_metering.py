"""Metering: billable metrics, plans and charges, subscriptions, events and usage buckets.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import billing.models.types

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('billable_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('aggregation_type', sa.String(length=32), nullable=False),
    sa.Column('field_name', sa.String(length=255), nullable=True),
    sa.Column('recurring', sa.Boolean(), nullable=False),
    sa.Column('weighted_interval', sa.String(length=16), nullable=True),
    sa.Column('rounding_function', sa.String(length=8), nullable=True),
    sa.Column('rounding_precision', sa.Integer(), nullable=True),
    sa.Column('expression', sa.Text(), nullable=True),
    sa.Column('filters', JSON, nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('billable_metrics', schema=None) as batch_op:
        batch_op.create_index('uq_billable_metrics_live_code', ['organization_id', 'code'], unique=True, sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))

    op.create_table('plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('invoice_display_name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('interval', sa.String(length=16), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('amount_currency', sa.String(length=3), nullable=False),
    sa.Column('pay_in_advance', sa.Boolean(), nullable=False),
    sa.Column('trial_period', sa.Integer(), nullable=False),
    sa.Column('bill_charges_monthly', sa.Boolean(), nullable=True),
    sa.Column('tax_codes', JSON, nullable=False),
    sa.Column('metadata', JSON, nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_cents >= 0', name='ck_plans_amount'),
    sa.CheckConstraint('trial_period >= 0', name='ck_plans_trial'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.create_index('uq_plans_live_code', ['organization_id', 'code'], unique=True, sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))

    op.create_table('charges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('billable_metric_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('charge_model', sa.String(length=32), nullable=False),
    sa.Column('properties', JSON, nullable=False),
    sa.Column('pay_in_advance', sa.Boolean(), nullable=False),
    sa.Column('invoiceable', sa.Boolean(), nullable=False),
    sa.Column('prorated', sa.Boolean(), nullable=False),
    sa.Column('regroup_paid_fees', sa.String(length=16), nullable=True),
    sa.Column('min_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('invoice_display_name', sa.String(length=255), nullable=True),
    sa.Column('tax_codes', JSON, nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('min_amount_cents >= 0', name='ck_charges_min_amount'),
    sa.ForeignKeyConstraint(['billable_metric_id'], ['billable_metrics.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_charges_billable_metric_id'), ['billable_metric_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_charges_plan_id'), ['plan_id'], unique=False)
        batch_op.create_index('uq_charges_live_code', ['plan_id', 'code'], unique=True, sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))

    op.create_table('subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('billing_time', sa.String(length=16), nullable=False),
    sa.Column('subscription_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ending_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('terminated_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('canceled_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('previous_subscription_id', sa.Integer(), nullable=True),
    sa.Column('on_termination_credit_note', sa.String(length=16), nullable=True),
    sa.Column('on_termination_invoice', sa.String(length=16), nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], ),
    sa.ForeignKeyConstraint(['previous_subscription_id'], ['subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_subscriptions_customer', ['customer_id', 'status'], unique=False)
        batch_op.create_index('ix_subscriptions_org_external_id', ['organization_id', 'external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscriptions_plan_id'), ['plan_id'], unique=False)
        batch_op.create_index('ix_subscriptions_status_start', ['status', 'subscription_at'], unique=False)
        batch_op.create_index('uq_subscriptions_active_external_id', ['organization_id', 'external_id'], unique=True, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    op.create_table('charge_filters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('charge_id', sa.Integer(), nullable=False),
    sa.Column('invoice_display_name', sa.String(length=255), nullable=True),
    sa.Column('properties', JSON, nullable=False),
    sa.Column('values', JSON, nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['charge_id'], ['charges.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('charge_filters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_charge_filters_charge_id'), ['charge_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.String(length=255), nullable=False),
    sa.Column('external_subscription_id', sa.String(length=255), nullable=False),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('timestamp', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('properties', JSON, nullable=False),
    sa.Column('precise_total_amount_cents', billing.models.types.ExactDecimal(), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=True),
    sa.Column('billable_metric_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['billable_metric_id'], ['billable_metrics.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('organization_id', 'external_subscription_id', 'transaction_id', name='uq_events_transaction')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_customer_created', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_events_org_created', ['organization_id', 'created_at'], unique=False)
        batch_op.create_index('ix_events_org_errors', ['organization_id', 'error_code', 'created_at'], unique=False)
        batch_op.create_index('ix_events_org_transaction', ['organization_id', 'transaction_id'], unique=False)
        batch_op.create_index('ix_events_subscription_metric_time', ['subscription_id', 'billable_metric_id', 'timestamp'], unique=False)

    op.create_table('usage_buckets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('billable_metric_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('dimensions', sa.String(length=1024), nullable=False),
    sa.Column('events_count', sa.BigInteger(), nullable=False),
    sa.Column('sum_value', billing.models.types.ExactDecimal(), nullable=False),
    sa.Column('max_value', billing.models.types.ExactDecimal(), nullable=True),
    sa.Column('latest_value', billing.models.types.ExactDecimal(), nullable=True),
    sa.Column('latest_timestamp', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['billable_metric_id'], ['billable_metrics.id'], ),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subscription_id', 'billable_metric_id', 'day', 'dimensions', name='uq_usage_buckets_key')
    )


def downgrade():
    op.drop_table('usage_buckets')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_subscription_metric_time')
        batch_op.drop_index('ix_events_org_transaction')
        batch_op.drop_index('ix_events_org_errors')
        batch_op.drop_index('ix_events_org_created')
        batch_op.drop_index('ix_events_customer_created')

    op.drop_table('events')
    with op.batch_alter_table('charge_filters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_charge_filters_charge_id'))

    op.drop_table('charge_filters')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index('uq_subscriptions_active_external_id', sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))
        batch_op.drop_index('ix_subscriptions_status_start')
        batch_op.drop_index(batch_op.f('ix_subscriptions_plan_id'))
        batch_op.drop_index('ix_subscriptions_org_external_id')
        batch_op.drop_index('ix_subscriptions_customer')

    op.drop_table('subscriptions')
    with op.batch_alter_table('charges', schema=None) as batch_op:
        batch_op.drop_index('uq_charges_live_code', sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_charges_plan_id'))
        batch_op.drop_index(batch_op.f('ix_charges_billable_metric_id'))

    op.drop_table('charges')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_index('uq_plans_live_code', sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))

    op.drop_table('plans')
    with op.batch_alter_table('billable_metrics', schema=None) as batch_op:
        batch_op.drop_index('uq_billable_metrics_live_code', sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))

    op.drop_table('billable_metrics')
