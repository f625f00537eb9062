"""Rate limit counters: fixed windows per key, shared by every web process.

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-01

One small table: a row per limited key (login e-mail, login address, inbound hook sender),
rewritten at each new window; the jobs process deletes the rows whose window has ended.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'rate_limit_counters',
        sa.Column('key', sa.String(length=300), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index(
        'ix_rate_limit_counters_window_end', 'rate_limit_counters', ['window_end']
    )


def downgrade():
    op.drop_index('ix_rate_limit_counters_window_end', table_name='rate_limit_counters')
    op.drop_table('rate_limit_counters')
