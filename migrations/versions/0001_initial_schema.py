"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 08:59:11.776017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('config_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('code_version', sa.String(length=64), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("kind IN ('experiment', 'debate_batch')", name=op.f('ck_runs_kind')),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_runs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_config_hash'), ['config_hash'], unique=False)

    op.create_table('examples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('task', sa.String(length=64), nullable=False),
    sa.Column('split', sa.String(length=16), nullable=True),
    sa.Column('source_id', sa.String(length=128), nullable=False),
    sa.Column('candidate_id', sa.String(length=64), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('context', sa.Text(), nullable=True),
    sa.Column('candidate', sa.Text(), nullable=False),
    sa.Column('label', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("split IS NULL OR split IN ('weak_train', 'strong_train', 'test')", name=op.f('ck_examples_split')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_examples_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_examples')),
    sa.UniqueConstraint('run_id', 'task', 'source_id', 'candidate_id', name=op.f('uq_examples_run_id_task_source_id_candidate_id'))
    )
    with op.batch_alter_table('examples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_examples_run_id'), ['run_id'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('not_before', sa.DateTime(), nullable=True),
    sa.Column('progress', sa.JSON(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_jobs_status')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_jobs_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_jobs_idempotency_key'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_claim', ['status', 'kind', 'priority'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_run_id'), ['run_id'], unique=False)

    op.create_table('models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('base', sa.String(length=1024), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('condition', sa.String(length=64), nullable=True),
    sa.Column('member', sa.Integer(), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=True),
    sa.Column('checkpoint_path', sa.String(length=1024), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("role IN ('weak', 'strong')", name=op.f('ck_models_role')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_models_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models')),
    sa.UniqueConstraint('name', name=op.f('uq_models_name'))
    )
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_models_run_id'), ['run_id'], unique=False)

    op.create_table('job_dependencies',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('depends_on_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['depends_on_id'], ['jobs.id'], name=op.f('fk_job_dependencies_depends_on_id_jobs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_dependencies_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'depends_on_id', name=op.f('pk_job_dependencies'))
    )
    with op.batch_alter_table('job_dependencies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_dependencies_depends_on_id'), ['depends_on_id'], unique=False)

    op.create_table('labels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('example_id', sa.Integer(), nullable=False),
    sa.Column('soft_label', sa.Float(), nullable=False),
    sa.Column('hard_label', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['example_id'], ['examples.id'], name=op.f('fk_labels_example_id_examples'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_labels_model_id_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_labels')),
    sa.UniqueConstraint('model_id', 'example_id', name=op.f('uq_labels_model_id_example_id'))
    )
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_labels_example_id'), ['example_id'], unique=False)

    op.create_table('metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('condition', sa.String(length=64), nullable=False),
    sa.Column('split', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_metrics_model_id_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_metrics_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics')),
    sa.UniqueConstraint('run_id', 'model_id', 'condition', 'split', 'name', name=op.f('uq_metrics_run_id_model_id_condition_split_name'))
    )
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_metrics_run_id'), ['run_id'], unique=False)

    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('served_name', sa.String(length=200), nullable=False),
    sa.Column('adapter_path', sa.String(length=1024), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_model_versions_model_id_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['model_versions.id'], name=op.f('fk_model_versions_parent_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('model_id', 'version', name=op.f('uq_model_versions_model_id_version')),
    sa.UniqueConstraint('served_name', name=op.f('uq_model_versions_served_name'))
    )
    op.create_table('debates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('example_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=64), nullable=True),
    sa.Column('protocol', sa.String(length=32), nullable=False),
    sa.Column('order', sa.String(length=16), nullable=False),
    sa.Column('num_turns', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('swap', sa.Boolean(), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('sampling', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('latency_s', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'running', 'succeeded', 'failed')", name=op.f('ck_debates_status')),
    sa.ForeignKeyConstraint(['example_id'], ['examples.id'], name=op.f('fk_debates_example_id_examples'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_debates_model_version_id_model_versions')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_debates_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_debates')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_debates_dedupe_key'))
    )
    with op.batch_alter_table('debates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_debates_example_id'), ['example_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_debates_run_id'), ['run_id'], unique=False)

    op.create_table('turns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('debate_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('speaker', sa.String(length=16), nullable=False),
    sa.Column('stance', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('finish_reason', sa.String(length=32), nullable=True),
    sa.Column('latency_s', sa.Float(), nullable=True),
    sa.Column('quotes_verified', sa.Integer(), nullable=False),
    sa.Column('quotes_unverified', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['debate_id'], ['debates.id'], name=op.f('fk_turns_debate_id_debates'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_turns')),
    sa.UniqueConstraint('debate_id', 'index', name=op.f('uq_turns_debate_id_index'))
    )


def downgrade() -> None:
    op.drop_table('turns')
    with op.batch_alter_table('debates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_debates_run_id'))
        batch_op.drop_index(batch_op.f('ix_debates_example_id'))

    op.drop_table('debates')
    op.drop_table('model_versions')
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_metrics_run_id'))

    op.drop_table('metrics')
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_labels_example_id'))

    op.drop_table('labels')
    with op.batch_alter_table('job_dependencies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_dependencies_depends_on_id'))

    op.drop_table('job_dependencies')
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_models_run_id'))

    op.drop_table('models')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_run_id'))
        batch_op.drop_index('ix_jobs_claim')

    op.drop_table('jobs')
    with op.batch_alter_table('examples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_examples_run_id'))

    op.drop_table('examples')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_config_hash'))

    op.drop_table('runs')
