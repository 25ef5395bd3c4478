"""config service tables (filled in by the config-service work)

Revision ID: 0001_config
Revises:
"""

revision = "0001_config"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
