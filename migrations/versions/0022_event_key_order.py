"""Events: the idempotency key leads with the transaction id.

Revision ID: 0022
Revises: 0018
Create Date: 2026-12-01

`uq_events_transaction` was (organization, external subscription id, transaction id): a batch of
events for many subscriptions wrote to as many places of that index as it had subscriptions (a
page each in SQLite's WAL at every commit). In the order (organization, transaction id, external
subscription id) a client's new transaction ids, which grow, land together, and the key serves the
look-ups by transaction id that `ix_events_org_transaction` served (replays, `GET /events/<id>`),
so that index goes. Same columns, same uniqueness: stored events stay valid as they are. SQLite
rebuilds the table (its unique constraints live in the CREATE TABLE).
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("events", recreate="auto") as batch_op:
        batch_op.drop_constraint("uq_events_transaction", type_="unique")
        batch_op.create_unique_constraint(
            "uq_events_transaction",
            ["organization_id", "transaction_id", "external_subscription_id"],
        )
        batch_op.drop_index("ix_events_org_transaction")


def downgrade():
    with op.batch_alter_table("events", recreate="auto") as batch_op:
        batch_op.create_index(
            "ix_events_org_transaction", ["organization_id", "transaction_id"], unique=False
        )
        batch_op.drop_constraint("uq_events_transaction", type_="unique")
        batch_op.create_unique_constraint(
            "uq_events_transaction",
            ["organization_id", "external_subscription_id", "transaction_id"],
        )
