"""Generated documents: invoice (and later credit-note) PDFs stored in the database.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

One row per (document type, owner): the unique key is what keeps two jobs processes, or the
job and an API download at the same moment, from storing a document twice. A new table only:
no rebuild of an existing one.
"""

import sqlalchemy as sa
from alembic import op

import billing.models.types

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('document_type', sa.String(length=16), nullable=False),
        sa.Column('owner_id', sa.BigInteger(), nullable=False),
        sa.Column('owner_lago_id', sa.Uuid(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('byte_size', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column(
            'generated_at', billing.models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.CheckConstraint(
            "document_type IN ('invoice', 'credit_note')", name='ck_documents_type'
        ),
        sa.CheckConstraint('byte_size = length(content)', name='ck_documents_byte_size'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('document_type', 'owner_id', name='uq_documents_owner'),
        sa.UniqueConstraint(
            'document_type', 'owner_lago_id', name='uq_documents_owner_lago_id'
        ),
    )
    op.create_index(
        'ix_documents_organization_id', 'documents', ['organization_id'], unique=False
    )


def downgrade():
    op.drop_index('ix_documents_organization_id', table_name='documents')
    op.drop_table('documents')
