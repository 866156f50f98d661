"""Replay by the erased person, not by recorded keys; every identifier of an erasure.

`erased_subjects`: per erasure and database, the root row of the person — its key
sealed (AES-GCM, as holds keep theirs: a key may be personal) and a keyed fingerprint
of its identifier values (and, for a root row anonymised rather than deleted, of the
values it was left with) — recorded only once the erasure committed. `replay` re-finds
the row by its key, acts only when the fingerprint matches (a reused key belongs to
someone else), and erases again from it through the subject graph.

`run_subjects`: the keyed hash of every identifier of the erased root row (erased by
CPR, asked by e-mail), so `audit find` answers by any of them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_subjects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("database_name", sa.String(64), nullable=False),
        sa.Column("table_name", sa.String(257), nullable=False),
        sa.Column("row_key_sealed", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(80), nullable=False),
        sa.Column("anonymised_fingerprint", sa.String(80)),
    )
    op.create_index("ix_erased_subjects_run", "erased_subjects", ["run_id"])
    op.create_table(
        "run_subjects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("subject_hash", sa.String(100), nullable=False),
    )
    op.create_index("ix_run_subjects_hash", "run_subjects", ["subject_hash"])


def downgrade() -> None:
    op.drop_index("ix_run_subjects_hash", table_name="run_subjects")
    op.drop_table("run_subjects")
    op.drop_index("ix_erased_subjects_run", table_name="erased_subjects")
    op.drop_table("erased_subjects")
