"""scheduler

Revision ID: 0004_scheduler
Revises: 0003_sandbox
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_scheduler'
down_revision = '0003_sandbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('reports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('schedule_id', sa.String(length=64), nullable=True),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('chart_png', sa.LargeBinary(), nullable=True),
    sa.Column('channel', sa.String(length=64), nullable=True),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('post_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports'))
    )
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index('ix_reports_org_team_created', ['org_id', 'team_id', 'created_at'], unique=False)

    op.create_table('schedule_claims',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('schedule_key', sa.String(length=200), nullable=False),
    sa.Column('org_id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('schedule_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=False),
    sa.Column('catch_up', sa.Boolean(), nullable=False),
    sa.Column('claimed_by', sa.String(length=128), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report_id', sa.String(length=40), nullable=True),
    sa.Column('run_id', sa.String(length=40), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_claims')),
    sa.UniqueConstraint('schedule_key', 'scheduled_for', name=op.f('uq_schedule_claims_schedule_key_scheduled_for'))
    )
    with op.batch_alter_table('schedule_claims', schema=None) as batch_op:
        batch_op.create_index('ix_schedule_claims_status', ['status', 'claimed_at'], unique=False)

    op.create_table('schedule_cursors',
    sa.Column('schedule_key', sa.String(length=200), nullable=False),
    sa.Column('considered_until', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('schedule_key', name=op.f('pk_schedule_cursors'))
    )
    


def downgrade() -> None:
    
    op.drop_table('schedule_cursors')
    with op.batch_alter_table('schedule_claims', schema=None) as batch_op:
        batch_op.drop_index('ix_schedule_claims_status')

    op.drop_table('schedule_claims')
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index('ix_reports_org_team_created')

    op.drop_table('reports')
    
