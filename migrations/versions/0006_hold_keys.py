"""Holds on any primary key: a key that may be personal is stored sealed (AES-GCM).

`row_key` (the integer key, in clear as before) becomes nullable; a key that is not a
single integer — text, UUID, composite — is stored in `row_key_sealed`, encrypted
under a key derived from the hash key, and shown as `row_key_label` (the keyed-hash
label the audit trail records, or the integers themselves). Existing holds keep their
integer `row_key` and work unchanged.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("holds") as batch:
        batch.alter_column("row_key", existing_type=sa.BigInteger, nullable=True)
        batch.add_column(sa.Column("row_key_sealed", sa.Text))
        batch.add_column(sa.Column("row_key_label", sa.String(128)))


def downgrade() -> None:
    # Dropping the sealed keys would silently end legal holds: refuse while any exist.
    sealed = (
        op.get_bind().execute(sa.text("SELECT count(*) FROM holds WHERE row_key IS NULL")).scalar()
    )
    if sealed:
        raise RuntimeError(
            f"{sealed} hold(s) name a key that is not a single integer; release and delete "
            "them before downgrading below revision 0006"
        )
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("row_key_label")
        batch.drop_column("row_key_sealed")
        batch.alter_column("row_key", existing_type=sa.BigInteger, nullable=False)
