"""Analytics: the overdue-customer index, the `closed` invoice status, the organization's
zero-amount invoice setting.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

- `ix_invoices_overdue_customer`: a partial index of the overdue (finalized) invoices by customer, which
  answers the customer list's overdue badge and filter (an EXISTS per customer) without reading
  the customer's other invoices.
- `closed`: a zero-amount invoice that is not finalized (`finalize_zero_amount_invoice` skip),
  as Lago. On PostgreSQL the CHECK constraint is replaced. SQLite cannot alter a CHECK
  constraint, and rebuilding `invoices` in batch mode would drop the table, which (foreign keys
  on) deletes its fees, billing periods and metadata through their ON DELETE CASCADE. So the
  constraint's text is edited in place, SQLite's documented procedure for changing a CHECK
  constraint that existing rows still satisfy (a value is only added to the allowed list).
- `organizations.finalize_zero_amount_invoice`: Lago's organization setting (true: finalize).
  A plain ALTER TABLE ADD COLUMN on SQLite (no rebuild).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

OVERDUE_PG = sa.text("payment_overdue AND status = 'finalized'")
OVERDUE_SQLITE = sa.text("payment_overdue = 1 AND status = 'finalized'")
OLD_STATUSES = "status IN ('draft', 'finalized', 'voided')"
NEW_STATUSES = "status IN ('draft', 'finalized', 'voided', 'closed')"


def _sqlite_check(old: str, new: str) -> None:
    connection = op.get_bind()
    version = connection.exec_driver_sql('PRAGMA schema_version').scalar()
    connection.exec_driver_sql('PRAGMA writable_schema = ON')
    connection.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'invoices'",
        (old, new),
    )
    connection.exec_driver_sql(f'PRAGMA schema_version = {int(version) + 1}')
    connection.exec_driver_sql('PRAGMA writable_schema = OFF')


def upgrade():
    op.create_index(
        'ix_invoices_overdue_customer', 'invoices', ['customer_id'],
        sqlite_where=OVERDUE_SQLITE, postgresql_where=OVERDUE_PG,
    )
    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_check(OLD_STATUSES, NEW_STATUSES)
    else:
        op.drop_constraint('ck_invoices_status', 'invoices', type_='check')
        op.create_check_constraint('ck_invoices_status', 'invoices', NEW_STATUSES)
    op.add_column(
        'organizations',
        sa.Column(
            'finalize_zero_amount_invoice', sa.Boolean(), nullable=False,
            server_default=sa.true(),
        ),
    )


def downgrade():
    op.drop_column('organizations', 'finalize_zero_amount_invoice')
    op.execute("UPDATE invoices SET status = 'voided' WHERE status = 'closed'")
    if op.get_bind().dialect.name == 'sqlite':
        _sqlite_check(NEW_STATUSES, OLD_STATUSES)
    else:
        op.drop_constraint('ck_invoices_status', 'invoices', type_='check')
        op.create_check_constraint('ck_invoices_status', 'invoices', OLD_STATUSES)
    op.drop_index('ix_invoices_overdue_customer', table_name='invoices')
