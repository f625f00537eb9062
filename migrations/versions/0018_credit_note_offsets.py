"""Credit note offsets: what credit notes took off an invoice's amount due.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01

One column added to `invoices` (no table rebuild): the sum of the offset amounts of the
invoice's credit notes, so "amount due" (total − paid − offset) stays one SQL expression.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'invoices',
        sa.Column('offset_amount_cents', sa.BigInteger(), nullable=False, server_default='0'),
    )


def downgrade():
    with op.batch_alter_table('invoices') as batch_op:
        batch_op.drop_column('offset_amount_cents')
