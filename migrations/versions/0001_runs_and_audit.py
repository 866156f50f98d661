"""Runs and the hash-chained audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("command", sa.String(20), nullable=False),
        sa.Column("as_of", sa.String(40), nullable=False),
        sa.Column("config_digest", sa.String(80), nullable=False),
        sa.Column("plan_digest", sa.String(80)),
        sa.Column("user_name", sa.String(120), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("tool_version", sa.String(40), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text),
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("database_name", sa.String(64)),
        sa.Column("rule_id", sa.String(100)),
        sa.Column("table_name", sa.String(257)),
        sa.Column("action", sa.String(20)),
        sa.Column("rows", sa.BigInteger),
        sa.Column("key_from", sa.String(128)),
        sa.Column("key_to", sa.String(128)),
        sa.Column("details", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_audit_entries_run_id", "audit_entries", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_run_id", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("runs")
