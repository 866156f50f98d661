"""The keys of the rows each erasure deleted or anonymised, for replay after a restore.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_rows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("database_name", sa.String(64), nullable=False),
        sa.Column("table_name", sa.String(257), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("row_key", sa.Text, nullable=False),
        sa.Column("replayable", sa.Boolean, nullable=False),
        sa.Column("strategies", sa.Text),
    )
    op.create_index("ix_erased_rows_run", "erased_rows", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_erased_rows_run", table_name="erased_rows")
    op.drop_table("erased_rows")
