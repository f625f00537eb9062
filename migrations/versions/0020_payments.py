"""Payments against invoices, the payment-provider events seen, and the organization's
Stripe webhook signing secret.

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-01

Two new tables; one nullable column added to `organizations` (no table rebuild).
"""

import sqlalchemy as sa
from alembic import op

import billing.models.types

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'organizations', sa.Column('stripe_webhook_secret', sa.String(length=255), nullable=True)
    )
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('refunded_amount_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('payment_type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=True),
    sa.Column('reference', sa.String(length=40), nullable=True),
    sa.Column('paid_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('provider_payment_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name='ck_payments_amount_positive'),
    sa.CheckConstraint('refunded_amount_cents >= 0 AND refunded_amount_cents <= amount_cents', name='ck_payments_refunded'),
    sa.CheckConstraint("payment_type IN ('manual', 'provider')", name='ck_payments_type'),
    sa.CheckConstraint("status IN ('succeeded', 'failed', 'refunded')", name='ck_payments_status'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id'),
    sa.UniqueConstraint('organization_id', 'provider', 'provider_payment_id', name='uq_payments_provider_id')
    )
    op.create_index('ix_payments_invoice', 'payments', ['invoice_id'], unique=False)
    op.create_index('ix_payments_org_created', 'payments', ['organization_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_payments_customer', 'payments', ['customer_id'], unique=False)

    op.create_table('provider_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('event_type', sa.String(length=128), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('received_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('organization_id', 'provider', 'event_id', name='uq_provider_events_event_id')
    )
    op.create_index('ix_provider_events_org_time', 'provider_events', ['organization_id', 'received_at'], unique=False)


def downgrade():
    op.drop_index('ix_provider_events_org_time', table_name='provider_events')
    op.drop_table('provider_events')
    op.drop_index('ix_payments_customer', table_name='payments')
    op.drop_index('ix_payments_org_created', table_name='payments')
    op.drop_index('ix_payments_invoice', table_name='payments')
    op.drop_table('payments')
    with op.batch_alter_table('organizations') as batch_op:
        batch_op.drop_column('stripe_webhook_secret')
