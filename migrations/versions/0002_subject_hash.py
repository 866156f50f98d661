"""Runs remember the keyed hash of the subject they erased or exported.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("subject_hash", sa.String(100)))
        batch.create_index("ix_runs_subject_hash", ["subject_hash"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_subject_hash")
        batch.drop_column("subject_hash")
