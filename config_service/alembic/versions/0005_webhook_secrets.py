"""per-org and per-team webhook signing secrets (issue 12)

Revision ID: 0005_webhook_secrets
Revises: 0004_scheduler
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_webhook_secrets"
down_revision = "0004_scheduler"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_secrets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("node_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("current", sa.String(length=2048), nullable=False),
        sa.Column("previous", sa.String(length=2048), nullable=True),
        sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id", "node_id"], ["config_nodes.org_id", "config_nodes.node_id"],
                                name=op.f("fk_webhook_secrets_org_id_config_nodes"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_secrets")),
        sa.UniqueConstraint("org_id", "node_id", "source", name=op.f("uq_webhook_secrets_org_id_node_id_source")),
    )


def downgrade() -> None:
    op.drop_table("webhook_secrets")
