"""The person of an alert and of each red declaration counted in it (name, ID number, phone,
birth, address), the symptoms, exposures and note are stored sealed (issue 17: personal
fields encrypted at rest, libs/common/fieldcrypt.py): the columns are widened to hold the
sealed form. ``phone_key`` and ``id_key`` become blind indexes under the ring's index key
(32 hex digits, as before). Rows written before keep reading (a value without the sealed
prefix is returned as it is); their keys, made with the secret key, no longer match a new
red, so a repeat of a person alerted before the upgrade makes a new alert once.

Revision ID: 1702 (after 0301)
"""
import sqlalchemy as sa
from alembic import op

revision = "1702"
down_revision = "0301"

# (plain, sealed) widths: fieldcrypt.sealed_length written out (a migration does not follow later code).
SEALED = {
    "alerts": {"person": (4000, 21383, True), "note": (2000, 10716, True), "symptoms": (2000, 10716, False),
               "exposures": (2000, 10716, False)},
    "alert_declarations": {"person": (4000, 21383, True), "symptoms": (2000, 10716, False)},
}


def _alter(widen: bool) -> None:
    for table, columns in SEALED.items():
        with op.batch_alter_table(table) as batch:
            for column, (plain, sealed, nullable) in columns.items():
                old, new = (plain, sealed) if widen else (sealed, plain)
                batch.alter_column(column, type_=sa.String(new), existing_type=sa.String(old),
                                   existing_nullable=nullable)


def upgrade() -> None:
    _alter(widen=True)


def downgrade() -> None:
    # Sealed values do not fit the plain width: downgrade only a database without them.
    _alter(widen=False)
