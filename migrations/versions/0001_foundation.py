"""Foundation: organizations, API keys, agents, customers, audit trail, outbox, customer search.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('organizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('default_currency', sa.String(length=3), nullable=True),
    sa.Column('document_locale', sa.String(length=8), nullable=False),
    sa.Column('invoice_grace_period', sa.Integer(), nullable=False),
    sa.Column('net_payment_term', sa.Integer(), nullable=False),
    sa.Column('portal_embed_origins', JSON, nullable=False),
    sa.Column('webhook_secret', sa.String(length=128), nullable=False),
    sa.Column('inbound_secret', sa.String(length=128), nullable=False),
    sa.Column('customers_sequence', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('invoice_grace_period >= 0', name='ck_org_grace_period'),
    sa.CheckConstraint('net_payment_term >= 0', name='ck_org_net_payment_term'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.Enum('admin', 'support', 'viewer', name='agentrole', native_enum=False, length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agents_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index('uq_agents_email', ['email'], unique=True)

    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_keys_prefix'), ['prefix'], unique=False)

    op.create_table('customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('sequential_id', sa.Integer(), nullable=False),
    sa.Column('account_type', sa.String(length=16), nullable=False),
    sa.Column('customer_type', sa.String(length=16), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('firstname', sa.String(length=255), nullable=True),
    sa.Column('lastname', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=1024), nullable=True),
    sa.Column('phone', sa.String(length=255), nullable=True),
    sa.Column('url', sa.String(length=1024), nullable=True),
    sa.Column('logo_url', sa.String(length=1024), nullable=True),
    sa.Column('legal_name', sa.String(length=255), nullable=True),
    sa.Column('legal_number', sa.String(length=255), nullable=True),
    sa.Column('tax_identification_number', sa.String(length=255), nullable=True),
    sa.Column('address_line1', sa.String(length=255), nullable=True),
    sa.Column('address_line2', sa.String(length=255), nullable=True),
    sa.Column('city', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=255), nullable=True),
    sa.Column('zipcode', sa.String(length=255), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('shipping_address_line1', sa.String(length=255), nullable=True),
    sa.Column('shipping_address_line2', sa.String(length=255), nullable=True),
    sa.Column('shipping_city', sa.String(length=255), nullable=True),
    sa.Column('shipping_state', sa.String(length=255), nullable=True),
    sa.Column('shipping_zipcode', sa.String(length=255), nullable=True),
    sa.Column('shipping_country', sa.String(length=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('net_payment_term', sa.Integer(), nullable=True),
    sa.Column('finalize_zero_amount_invoice', sa.String(length=16), nullable=False),
    sa.Column('skip_invoice_custom_sections', sa.Boolean(), nullable=False),
    sa.Column('external_salesforce_id', sa.String(length=255), nullable=True),
    sa.Column('invoice_grace_period', sa.Integer(), nullable=True),
    sa.Column('document_locale', sa.String(length=8), nullable=True),
    sa.Column('payment_provider', sa.String(length=32), nullable=True),
    sa.Column('payment_provider_code', sa.String(length=255), nullable=True),
    sa.Column('provider_customer_id', sa.String(length=255), nullable=True),
    sa.Column('provider_payment_methods', JSON, nullable=True),
    sa.Column('sync', sa.Boolean(), nullable=True),
    sa.Column('sync_with_provider', sa.Boolean(), nullable=True),
    sa.Column('subscription_invoice_issuing_date_anchor', sa.String(length=32), nullable=True),
    sa.Column('subscription_invoice_issuing_date_adjustment', sa.String(length=32), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('invoice_grace_period IS NULL OR invoice_grace_period >= 0', name='ck_customers_grace'),
    sa.CheckConstraint('net_payment_term IS NULL OR net_payment_term >= 0', name='ck_customers_npt'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id'),
    sa.UniqueConstraint('organization_id', 'sequential_id', name='uq_customers_sequential_id')
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_live_created', ['organization_id', 'created_at', 'id'], unique=False, sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))
        batch_op.create_index('uq_customers_live_external_id', ['organization_id', 'external_id'], unique=True, sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))

    op.create_table('outbox_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('payload', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_events_org_time', ['organization_id', 'created_at'], unique=False)

    op.create_table('activity_logs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('activity_type', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('actor_label', sa.String(length=255), nullable=True),
    sa.Column('resource_type', sa.String(length=32), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('changes', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('activity_logs', schema=None) as batch_op:
        batch_op.create_index('ix_activity_logs_customer_time', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_activity_logs_org_time', ['organization_id', 'created_at'], unique=False)

    op.create_table('customer_metadata',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('display_in_invoice', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'key', name='uq_customer_metadata_key'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('customer_metadata', schema=None) as batch_op:
        batch_op.create_index('ix_customer_metadata_key_value', ['key', 'value'], unique=False)

    op.create_table('integration_customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('integration_type', sa.String(length=32), nullable=False),
    sa.Column('integration_code', sa.String(length=255), nullable=True),
    sa.Column('external_customer_id', sa.String(length=255), nullable=True),
    sa.Column('sync_with_provider', sa.Boolean(), nullable=False),
    sa.Column('subsidiary_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'integration_type', name='uq_integration_customers_type'),
    sa.UniqueConstraint('lago_id')
    )
    create_customer_search()


def downgrade():
    drop_customer_search()
    op.drop_table('integration_customers')
    with op.batch_alter_table('customer_metadata', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_metadata_key_value')

    op.drop_table('customer_metadata')
    with op.batch_alter_table('activity_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_logs_org_time')
        batch_op.drop_index('ix_activity_logs_customer_time')

    op.drop_table('activity_logs')
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_events_org_time')

    op.drop_table('outbox_events')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('uq_customers_live_external_id', sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))
        batch_op.drop_index('ix_customers_live_created', sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))

    op.drop_table('customers')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_prefix'))
        batch_op.drop_index(batch_op.f('ix_api_keys_organization_id'))

    op.drop_table('api_keys')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index('uq_agents_email')
        batch_op.drop_index(batch_op.f('ix_agents_organization_id'))

    op.drop_table('agents')
    op.drop_table('organizations')


# Customer search (billing/services/search.py): one trigram index over `search_text`, which
# answers substrings of 3+ characters and, through the word-starts line of search_text, word
# prefixes of 1-2 characters. Only live customers are indexed.
#
# SQLite: a contentless FTS5 table (it stores no copy of the text) kept by triggers; a row
# leaves it when the customer is soft-deleted. Its rowid is organization_id << 40 | id (the
# number 40 is search.ORG_ROWID_SHIFT), so one organization's customers are one rowid range and
# the index counts an organization's matches by itself. Contentless rows are removed with the
# 'delete' command and the values they were indexed with, which the triggers have (old.*).
# Later migrations that rebuild the customers table (batch mode) drop its triggers: they must
# run create_customer_search_triggers() again.

SQLITE_SEARCH_TABLE = """CREATE VIRTUAL TABLE customer_search USING fts5(
    search_text, content='', tokenize='trigram')"""

_SQLITE_INDEX_NEW = """INSERT INTO customer_search(rowid, search_text)
        SELECT (new.organization_id << 40) | new.id, new.search_text
        WHERE new.deleted_at IS NULL;"""
_SQLITE_UNINDEX_OLD = """INSERT INTO customer_search(customer_search, rowid, search_text)
        SELECT 'delete', (old.organization_id << 40) | old.id, old.search_text
        WHERE old.deleted_at IS NULL;"""

# One trigger per event: on an update the old entry must go before the new one comes (SQLite
# gives no order between two triggers of one event, and the two entries share their rowid).
SQLITE_SEARCH_TRIGGERS = [
    f"""CREATE TRIGGER customers_search_insert AFTER INSERT ON customers BEGIN
        {_SQLITE_INDEX_NEW}
    END""",
    f"""CREATE TRIGGER customers_search_update
        AFTER UPDATE OF search_text, deleted_at, organization_id ON customers BEGIN
        {_SQLITE_UNINDEX_OLD}
        {_SQLITE_INDEX_NEW}
    END""",
    f"""CREATE TRIGGER customers_search_delete AFTER DELETE ON customers BEGIN
        {_SQLITE_UNINDEX_OLD}
    END""",
]

POSTGRESQL_SEARCH = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """CREATE INDEX ix_customers_search_trgm ON customers
        USING gin (search_text gin_trgm_ops) WHERE deleted_at IS NULL""",
]

# Deleted customers are searched (the console's "deleted" list) by a LIKE on each of the
# organization's deleted customers, which this index finds without reading the live ones.
SEARCH_DELETED_INDEX = """CREATE INDEX ix_customers_search_deleted
    ON customers (organization_id, created_at) WHERE deleted_at IS NOT NULL"""


def create_customer_search_triggers():
    for statement in SQLITE_SEARCH_TRIGGERS:
        op.execute(statement)


def create_customer_search():
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SQLITE_SEARCH_TABLE)
        create_customer_search_triggers()
    else:
        for statement in POSTGRESQL_SEARCH:
            op.execute(statement)
    op.execute(SEARCH_DELETED_INDEX)


def drop_customer_search():
    op.execute("DROP INDEX IF EXISTS ix_customers_search_deleted")
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS customers_search_{trigger}")
        op.execute("DROP TABLE IF EXISTS customer_search")
    else:
        op.execute("DROP INDEX IF EXISTS ix_customers_search_trgm")
