"""An index on the audit trail's kind and database: each run looks for partition
removals a killed run left unfinished (`partition-drop-start` without an outcome) in
every database it sweeps, and must not read the whole trail to find them.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_entries_kind", "audit_entries", ["kind", "database_name"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_kind", table_name="audit_entries")
