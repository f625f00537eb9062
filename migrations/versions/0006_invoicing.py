"""Invoicing: invoices, the billing periods they invoice, fees, invoice metadata; the
per-customer invoice counter and each subscription's next invoice time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

The two new columns of existing tables are plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+), not
batch mode: rebuilding `customers` would drop the search triggers of 0001.
"""

import sqlalchemy as sa
from alembic import op

import billing.models.types

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('sequential_id', sa.Integer(), nullable=True),
    sa.Column('invoice_type', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payment_status', sa.String(length=16), nullable=False),
    sa.Column('payment_overdue', sa.Boolean(), nullable=False),
    sa.Column('issuing_date', sa.Date(), nullable=False),
    sa.Column('payment_due_date', sa.Date(), nullable=False),
    sa.Column('net_payment_term', sa.Integer(), nullable=False),
    sa.Column('grace_period_ends_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('fees_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('coupons_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('taxes_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('credit_notes_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('prepaid_credit_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('progressive_billing_credit_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('sub_total_excluding_taxes_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('sub_total_including_taxes_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('total_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('total_paid_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('version_number', sa.Integer(), nullable=False),
    sa.Column('finalized_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('voided_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("payment_status IN ('pending', 'succeeded', 'failed')", name='ck_invoices_payment_status'),
    sa.CheckConstraint("status IN ('draft', 'finalized', 'voided')", name='ck_invoices_status'),
    sa.CheckConstraint('fees_amount_cents >= 0 AND coupons_amount_cents >= 0 AND taxes_amount_cents >= 0 AND credit_notes_amount_cents >= 0 AND prepaid_credit_amount_cents >= 0 AND total_paid_amount_cents >= 0 AND total_amount_cents >= 0', name='ck_invoices_amounts_not_negative'),
    sa.CheckConstraint('sub_total_excluding_taxes_amount_cents = fees_amount_cents - coupons_amount_cents - progressive_billing_credit_amount_cents', name='ck_invoices_sub_total_excluding_taxes'),
    sa.CheckConstraint('sub_total_including_taxes_amount_cents = sub_total_excluding_taxes_amount_cents + taxes_amount_cents', name='ck_invoices_sub_total_including_taxes'),
    sa.CheckConstraint('total_amount_cents = sub_total_including_taxes_amount_cents - credit_notes_amount_cents - prepaid_credit_amount_cents', name='ck_invoices_total'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'sequential_id', name='uq_invoices_customer_sequence'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_customer_created', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_invoices_org_created', ['organization_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_invoices_overdue_scan', ['payment_status', 'payment_overdue', 'payment_due_date'], unique=False)
        batch_op.create_index('ix_invoices_status_grace', ['status', 'grace_period_ends_at'], unique=False)

    op.create_table('invoice_metadata',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_id', 'key', name='uq_invoice_metadata_key'),
    sa.UniqueConstraint('lago_id')
    )
    op.create_table('invoice_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('invoicing_reason', sa.String(length=32), nullable=False),
    sa.Column('from_datetime', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('to_datetime', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('charges_from_datetime', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('charges_to_datetime', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subscription_id', 'invoicing_reason', 'charges_from_datetime', 'charges_to_datetime', 'from_datetime', 'to_datetime', name='uq_invoice_subscriptions_period')
    )
    with op.batch_alter_table('invoice_subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_subscriptions_invoice', ['invoice_id'], unique=False)

    op.create_table('fees',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=True),
    sa.Column('charge_id', sa.Integer(), nullable=True),
    sa.Column('charge_filter_id', sa.Integer(), nullable=True),
    sa.Column('fee_type', sa.String(length=16), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('precise_amount', billing.models.types.ExactDecimal(length=64), nullable=False),
    sa.Column('taxes_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('units', billing.models.types.ExactDecimal(length=64), nullable=False),
    sa.Column('total_aggregated_units', billing.models.types.ExactDecimal(length=64), nullable=False),
    sa.Column('events_count', sa.BigInteger(), nullable=False),
    sa.Column('precise_unit_amount', billing.models.types.ExactDecimal(length=64), nullable=False),
    sa.Column('invoice_display_name', sa.String(length=255), nullable=True),
    sa.Column('from_datetime', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('to_datetime', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pay_in_advance', sa.Boolean(), nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents >= 0', name='ck_fees_amount'),
    sa.ForeignKeyConstraint(['charge_filter_id'], ['charge_filters.id'], ),
    sa.ForeignKeyConstraint(['charge_id'], ['charges.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('fees', schema=None) as batch_op:
        batch_op.create_index('ix_fees_invoice', ['invoice_id'], unique=False)
        batch_op.create_index('ix_fees_subscription', ['subscription_id', 'fee_type'], unique=False)

    op.add_column('customers', sa.Column('invoices_sequence', sa.Integer(), server_default='0', nullable=False))
    op.add_column('subscriptions', sa.Column('next_invoice_at', billing.models.types.UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_subscriptions_next_invoice', 'subscriptions', ['next_invoice_at'], unique=False)



def downgrade():
    op.drop_index('ix_subscriptions_next_invoice', table_name='subscriptions')
    op.drop_column('subscriptions', 'next_invoice_at')
    op.drop_column('customers', 'invoices_sequence')

    with op.batch_alter_table('fees', schema=None) as batch_op:
        batch_op.drop_index('ix_fees_subscription')
        batch_op.drop_index('ix_fees_invoice')

    op.drop_table('fees')
    with op.batch_alter_table('invoice_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_subscriptions_invoice')

    op.drop_table('invoice_subscriptions')
    op.drop_table('invoice_metadata')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_status_grace')
        batch_op.drop_index('ix_invoices_overdue_scan')
        batch_op.drop_index('ix_invoices_org_created')
        batch_op.drop_index('ix_invoices_customer_created')

    op.drop_table('invoices')
