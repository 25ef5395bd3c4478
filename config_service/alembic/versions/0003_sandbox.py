"""sandbox sessions, transcripts and the platform MCP allow-list

Revision ID: 0003_sandbox
Revises: 0002_runs
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_sandbox"
down_revision = "0002_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sandbox_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=128), nullable=True),
        sa.Column("workspace", sa.String(length=512), nullable=False),
        sa.Column("ttl_s", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("busy", sa.Boolean(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("scheduling", sa.JSON(), nullable=False),
        sa.Column("slack_channel", sa.String(length=64), nullable=True),
        sa.Column("slack_thread_ts", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_sessions")),
        sa.UniqueConstraint("uid", name=op.f("uq_sandbox_sessions_uid")),
    )
    with op.batch_alter_table("sandbox_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sandbox_sessions_org_team_created", ["org_id", "team_id", "created_at"],
                              unique=False)
        batch_op.create_index("ix_sandbox_sessions_status_expires", ["status", "expires_at"], unique=False)
        batch_op.create_index("ix_sandbox_sessions_slack_thread", ["slack_channel", "slack_thread_ts"], unique=False)

    op.create_table(
        "sandbox_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sandbox_sessions.id"],
                                name=op.f("fk_sandbox_messages_session_id_sandbox_sessions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_messages")),
        sa.UniqueConstraint("session_id", "seq", name=op.f("uq_sandbox_messages_session_id_seq")),
    )
    with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sandbox_messages_session_id"), ["session_id"], unique=False)

    op.create_table(
        "sandbox_mcp_allowlist",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=True),
        sa.Column("env", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tool_timeout_s", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sandbox_mcp_allowlist")),
    )


def downgrade() -> None:
    op.drop_table("sandbox_mcp_allowlist")
    with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandbox_messages_session_id"))
    op.drop_table("sandbox_messages")
    with op.batch_alter_table("sandbox_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sandbox_sessions_slack_thread")
        batch_op.drop_index("ix_sandbox_sessions_status_expires")
        batch_op.drop_index("ix_sandbox_sessions_org_team_created")
    op.drop_table("sandbox_sessions")
