"""sandbox tables — PLACEHOLDER created by the lead so the chain is continuous; the sandbox
engineer replaces this file with the real migration (same revision id).

Revision ID: 0003_sandbox
Revises: 0002_runs
"""

revision = "0003_sandbox"
down_revision = "0002_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
