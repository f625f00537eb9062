"""Webhooks: endpoints, deliveries, inbound deliveries; the outbox's dispatch mark and each
organization's RSA key for JWT signatures.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

New columns of existing tables are plain ALTER TABLE ADD COLUMN (no batch rebuild). Outbox
events written before this revision are marked dispatched: they are history, not webhooks to send
to endpoints created from now on.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import billing.models.types

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = billing.models.types.UTCDateTime(timezone=True)
OPEN = sa.text("status IN ('pending', 'retrying')")
UNDISPATCHED = sa.text('dispatched_at IS NULL')


def upgrade():
    op.add_column('organizations', sa.Column('webhook_private_key', sa.Text(), nullable=True))
    op.add_column('outbox_events', sa.Column('dispatched_at', UTC, nullable=True))
    op.execute('UPDATE outbox_events SET dispatched_at = created_at')
    op.create_index(
        'ix_outbox_events_undispatched', 'outbox_events', ['id'],
        sqlite_where=UNDISPATCHED, postgresql_where=UNDISPATCHED,
    )
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('webhook_url', sa.String(length=1024), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('signature_algo', sa.String(length=8), nullable=False),
    sa.Column('event_types', JSON, nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.CheckConstraint("signature_algo IN ('jwt', 'hmac')", name='ck_webhook_endpoints_algo'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id'),
    sa.UniqueConstraint('organization_id', 'webhook_url', name='uq_webhook_endpoints_url')
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('outbox_event_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UTC, nullable=True),
    sa.Column('last_attempt_at', UTC, nullable=True),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_time_ms', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.CheckConstraint(
        "status IN ('pending', 'retrying', 'succeeded', 'failed')",
        name='ck_webhook_deliveries_status',
    ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.ForeignKeyConstraint(['outbox_event_id'], ['outbox_events.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id'),
    sa.UniqueConstraint('endpoint_id', 'outbox_event_id', name='uq_webhook_deliveries_event')
    )
    op.create_index(
        'ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'],
        sqlite_where=OPEN, postgresql_where=OPEN,
    )
    op.create_index(
        'ix_webhook_deliveries_endpoint', 'webhook_deliveries', ['endpoint_id', 'created_at']
    )
    op.create_index(
        'ix_webhook_deliveries_customer', 'webhook_deliveries', ['customer_id', 'created_at']
    )
    op.create_table('inbound_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.String(length=255), nullable=False),
    sa.Column('hook', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('response_status', sa.Integer(), nullable=False),
    sa.Column('response_body', JSON, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('organization_id', 'delivery_id', name='uq_inbound_deliveries_id')
    )
    op.create_index(
        'ix_inbound_deliveries_org_time', 'inbound_deliveries', ['organization_id', 'created_at']
    )


def downgrade():
    op.drop_index('ix_inbound_deliveries_org_time', table_name='inbound_deliveries')
    op.drop_table('inbound_deliveries')
    op.drop_index('ix_webhook_deliveries_customer', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_endpoint', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_endpoints')
    op.drop_index('ix_outbox_events_undispatched', table_name='outbox_events')
    op.drop_column('outbox_events', 'dispatched_at')
    op.drop_column('organizations', 'webhook_private_key')
