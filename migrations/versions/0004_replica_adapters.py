"""replica adapters: which model version's adapter is loaded on which vLLM replica (issue 18)

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-30 03:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('replica_adapters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('replica_url', sa.String(length=1024), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'],
                            name=op.f('fk_replica_adapters_version_id_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replica_adapters')),
    sa.UniqueConstraint('replica_url', 'version_id', name=op.f('uq_replica_adapters_replica_url_version_id'))
    )
    with op.batch_alter_table('replica_adapters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replica_adapters_version_id'), ['version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('replica_adapters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replica_adapters_version_id'))

    op.drop_table('replica_adapters')
