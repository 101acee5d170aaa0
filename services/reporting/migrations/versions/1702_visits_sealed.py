"""The name and phone of a visit are stored sealed (issue 17: personal fields encrypted at
rest, libs/common/fieldcrypt.py): the columns are widened to hold the sealed form, and
``phone_index`` (the phone's blind index) is added, indexed with the time, for a case's own
visits by phone. Rows written before keep reading (a value without the sealed prefix is
returned as it is; no index) until ``khaibao keys reseal`` rewrites them, or retention erases them.

Revision ID: 1702 (after 1701)
"""
import sqlalchemy as sa
from alembic import op

revision = "1702"
down_revision = "1701"

# fieldcrypt.sealed_length(200) and (30), written out: a migration does not follow later code.
SEALED = {"full_name": (200, 1116), "phone": (30, 210)}


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        for column, (plain, sealed) in SEALED.items():
            batch.alter_column(column, type_=sa.String(sealed), existing_type=sa.String(plain), existing_nullable=True)
        batch.add_column(sa.Column("phone_index", sa.String(32)))
    op.create_index("visits_phone_time", "visits", ["phone_index", "submitted_at"])


def downgrade() -> None:
    # Sealed values do not fit the plain width: downgrade only a database without them.
    op.drop_index("visits_phone_time", "visits")
    with op.batch_alter_table("visits") as batch:
        batch.drop_column("phone_index")
        for column, (plain, sealed) in SEALED.items():
            batch.alter_column(column, type_=sa.String(plain), existing_type=sa.String(sealed), existing_nullable=True)
