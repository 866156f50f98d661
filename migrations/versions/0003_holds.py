"""Legal holds on single rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("database_name", sa.String(64), nullable=False),
        sa.Column("table_name", sa.String(257), nullable=False),
        sa.Column("row_key", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("until", sa.Date),
        sa.Column("released_at", sa.String(40)),
        sa.Column("released_by", sa.String(255)),
    )
    op.create_index("ix_holds_target", "holds", ["database_name", "table_name"])


def downgrade() -> None:
    op.drop_index("ix_holds_target", table_name="holds")
    op.drop_table("holds")
