"""Credit notes: credit notes, their items (the credited part of each fee) and the credits
they give later invoices (lago-api.md §14).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01

New tables only: no existing table is rebuilt.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import billing.models.types


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table('credit_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('sequential_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=80), nullable=False),
    sa.Column('issuing_date', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('credit_status', sa.String(length=16), nullable=False),
    sa.Column('refund_status', sa.String(length=16), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('sub_total_excluding_taxes_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('taxes_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('total_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('credit_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('refund_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('offset_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('balance_amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('metadata', JSON, nullable=False),
    sa.Column('refunded_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('voided_at', billing.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("credit_status IN ('available', 'consumed', 'voided')", name='ck_credit_notes_credit_status'),
    sa.CheckConstraint("refund_status IS NULL OR refund_status IN ('pending', 'succeeded', 'failed')", name='ck_credit_notes_refund_status'),
    sa.CheckConstraint('balance_amount_cents >= 0 AND balance_amount_cents <= credit_amount_cents AND credit_amount_cents >= 0 AND refund_amount_cents >= 0 AND offset_amount_cents >= 0 AND taxes_amount_cents >= 0', name='ck_credit_notes_amounts'),
    sa.CheckConstraint('total_amount_cents = credit_amount_cents + refund_amount_cents + offset_amount_cents', name='ck_credit_notes_split'),
    sa.CheckConstraint('total_amount_cents = sub_total_excluding_taxes_amount_cents + taxes_amount_cents', name='ck_credit_notes_total'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_id', 'sequential_id', name='uq_credit_notes_invoice_sequence'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.create_index('ix_credit_notes_customer_available', ['customer_id', 'credit_status', 'currency'], unique=False)
        batch_op.create_index('ix_credit_notes_org_created', ['organization_id', 'created_at', 'id'], unique=False)

    op.create_table('invoice_credits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('credit_note_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name='ck_invoice_credits_amount'),
    sa.ForeignKeyConstraint(['credit_note_id'], ['credit_notes.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('invoice_credits', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_credits_credit_note', ['credit_note_id'], unique=False)
        batch_op.create_index('ix_invoice_credits_invoice', ['invoice_id'], unique=False)

    op.create_table('credit_note_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lago_id', sa.Uuid(), nullable=False),
    sa.Column('credit_note_id', sa.Integer(), nullable=False),
    sa.Column('fee_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', billing.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents >= 0', name='ck_credit_note_items_amount'),
    sa.ForeignKeyConstraint(['credit_note_id'], ['credit_notes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['fee_id'], ['fees.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lago_id')
    )
    with op.batch_alter_table('credit_note_items', schema=None) as batch_op:
        batch_op.create_index('ix_credit_note_items_credit_note', ['credit_note_id'], unique=False)
        batch_op.create_index('ix_credit_note_items_fee', ['fee_id'], unique=False)



def downgrade():
    with op.batch_alter_table('credit_note_items', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_note_items_fee')
        batch_op.drop_index('ix_credit_note_items_credit_note')

    op.drop_table('credit_note_items')
    with op.batch_alter_table('invoice_credits', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_credits_invoice')
        batch_op.drop_index('ix_invoice_credits_credit_note')

    op.drop_table('invoice_credits')
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_notes_org_created')
        batch_op.drop_index('ix_credit_notes_customer_available')

    op.drop_table('credit_notes')
