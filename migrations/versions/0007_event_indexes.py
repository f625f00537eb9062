"""Event indexes: the rejected-events index holds rejected events only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

`ix_events_org_errors` covered every event, so each batch of accepted events wrote to it too;
rejected events are rare, and the queries that use it (the organization's and a customer's
rejected events, newest first) all filter on `error_code IS NOT NULL`. Plain CREATE/DROP INDEX
statements: no table rebuild.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

REJECTED = sa.text('error_code IS NOT NULL')


def upgrade():
    op.drop_index('ix_events_org_errors', table_name='events')
    op.create_index(
        'ix_events_org_errors', 'events', ['organization_id', 'created_at'],
        sqlite_where=REJECTED, postgresql_where=REJECTED,
    )


def downgrade():
    op.drop_index('ix_events_org_errors', table_name='events')
    op.create_index(
        'ix_events_org_errors', 'events', ['organization_id', 'error_code', 'created_at']
    )
