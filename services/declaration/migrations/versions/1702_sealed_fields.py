"""Personal fields encrypted at rest (issue 17, item 2): the sealed columns are widened to
hold the sealed form (libs/common/fieldcrypt.py), the birth date becomes text (it is
sealed as its ISO form), and the blind index columns of the ID number and phone are added
with their indexes.

Rows stored before stay readable (a value without the sealed prefix reads as it is);
``khaibao keys reseal declaration`` seals them and fills their index columns, after which
the lookups by ID number or phone find them too.

SQLite does not enforce a text column's length: there only the birth date's declared type
changes (a copy of the table, SQLite's way), so that a reader of the schema (a reflected
table, a tool) takes its values for text and not for dates.

Revision ID: 1702 (a branch of its own from 0004, applied with the other heads)
"""
import sqlalchemy as sa
from alembic import op

from libs.common.fieldcrypt import sealed_length

revision = "1702"
down_revision = "0004"

WIDENED = {
    "declarations": {"full_name": 100, "id_number": 20, "phone": 15, "street": 200, "symptom_other": 200,
                     "birth_date": 10},
    "suspected_cases": {"full_name": 100, "id_number": 20, "phone": 15, "note": 1000},
}
INDEXED = ("id_number_index", "phone_index")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, columns in WIDENED.items():
        if postgres:
            for column, plain in columns.items():
                using = f"{column}::text" if column == "birth_date" else None
                op.alter_column(table, column, type_=sa.String(sealed_length(plain)), postgresql_using=using)
        if not postgres and "birth_date" in columns:
            with op.batch_alter_table(table) as batch:
                batch.alter_column("birth_date", type_=sa.String(sealed_length(10)))
        for column in INDEXED:
            op.add_column(table, sa.Column(column, sa.String(32), nullable=True))
            op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table in WIDENED:
        for column in INDEXED:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
            op.drop_column(table, column)
    # The widened columns stay wide: sealed values would not fit the former lengths.
