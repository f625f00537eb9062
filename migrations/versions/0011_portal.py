"""Customer portal: each customer's portal link version (bumped to revoke every link).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

A plain ADD COLUMN on both backends: a batch rebuild of `customers` would drop its search
triggers (see 0001).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'customers',
        sa.Column('portal_version', sa.Integer(), nullable=False, server_default='0'),
    )


def downgrade():
    # SQLite ≥ 3.35 and PostgreSQL both drop a plain column in place (no table rebuild).
    op.execute('ALTER TABLE customers DROP COLUMN portal_version')
