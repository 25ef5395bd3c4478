"""the platform egress allow-list

Revision ID: 0006_egress
Revises: 0005_webhook_secrets
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_egress"
down_revision = "0005_webhook_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "egress_allowlist",
        sa.Column("entry", sa.String(length=300), nullable=False),
        sa.Column("comment", sa.String(length=300), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry", name=op.f("pk_egress_allowlist")),
    )


def downgrade() -> None:
    op.drop_table("egress_allowlist")
