"""thread conversations: runs.parent_run_id, runs.turns, runs.evidence

Revision ID: 0007_thread_turns
Revises: 0006_egress
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_thread_turns"
down_revision = "0006_egress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("parent_run_id", sa.String(length=40), nullable=True))
        # Existing rows have had no turns: an empty list, on SQLite and PostgreSQL alike.
        batch.add_column(sa.Column("turns", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("evidence", sa.JSON(), nullable=True))
        batch.create_index(batch.f("ix_runs_parent_run_id"), ["parent_run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index(batch.f("ix_runs_parent_run_id"))
        batch.drop_column("evidence")
        batch.drop_column("turns")
        batch.drop_column("parent_run_id")
