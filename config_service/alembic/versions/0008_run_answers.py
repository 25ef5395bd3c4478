"""run_answers: where a run's RCA was answered besides Slack (GitHub, PagerDuty, incident.io)

Revision ID: 0008_run_answers
Revises: 0007_thread_turns
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_run_answers"
down_revision = "0007_thread_turns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_answers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_answers_run_id_runs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_answers")),
        sa.UniqueConstraint("run_id", "destination", name=op.f("uq_run_answers_run_id_destination")),
    )
    op.create_index(op.f("ix_run_answers_run_id"), "run_answers", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_run_answers_run_id"), table_name="run_answers")
    op.drop_table("run_answers")
