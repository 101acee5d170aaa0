"""Review, lists to the district, batches to the city, list uploads and e-mail replies.

Revision ID: 0002
Revises: 0001
"""
import re
import secrets
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fold(value: str) -> str:
    # The matching key of services/intake/text.py:fold, frozen here for the backfill.
    text = unicodedata.normalize("NFD", (value or "").replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def upgrade() -> None:
    columns = [
        sa.Column("status_token", sa.String(40), nullable=False, server_default=""),
        sa.Column("district_path", sa.String(60), nullable=False, server_default=""),
        sa.Column("notes", sa.String(500)),
        sa.Column("source", sa.String(10), nullable=False, server_default="form"),
        sa.Column("upload_id", sa.Uuid()),
        sa.Column("name_key", sa.String(300), nullable=False, server_default=""),
        sa.Column("address_key", sa.String(300), nullable=False, server_default=""),
        sa.Column("reviewed_at", sa.DateTime(timezone=True)),
        sa.Column("reviewed_by", sa.String(200)),
        sa.Column("review_reason", sa.String(500)),
        sa.Column("duplicate_of", sa.Uuid()),
        sa.Column("exempt_reason", sa.String(20)),
        sa.Column("list_id", sa.Uuid()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("batch_id", sa.Uuid()),
        sa.Column("forwarded_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    ]
    for column in columns:
        op.add_column("registrations", column)

    # Existing rows: their district, an unguessable status token and the matching keys.
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, commune_path, unit_name, address FROM registrations")).all()
    for row in rows:
        bind.execute(
            sa.text("UPDATE registrations SET status_token = :token, district_path = :district, "
                    "name_key = :name_key, address_key = :address_key WHERE id = :id"),
            {"token": secrets.token_urlsafe(16), "district": "/".join(row.commune_path.split("/")[:2]),
             "name_key": _fold(row.unit_name)[:300], "address_key": _fold(row.address)[:300], "id": row.id},
        )
    op.create_index("ix_registrations_district_path", "registrations", ["district_path"])
    op.create_index("ix_registrations_tax_code", "registrations", ["tax_code"])
    op.create_index("ix_registrations_name_key", "registrations", ["name_key"])
    op.create_index("ix_registrations_list_id", "registrations", ["list_id"])
    op.create_index("ix_registrations_batch_id", "registrations", ["batch_id"])
    op.create_index("ix_registrations_status", "registrations", ["status"])

    op.create_table(
        "registration_history",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("registration_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("actor_path", sa.String(60)),
        sa.Column("note", sa.String(500)),
    )
    op.create_table(
        "commune_lists",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("reference", sa.String(20), nullable=False, unique=True),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("district_path", sa.String(60), nullable=False, index=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("reference", sa.String(20), nullable=False, unique=True),
        sa.Column("district_path", sa.String(60), nullable=False, index=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("forwarded_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("reference", sa.String(20), nullable=False, unique=True),
        sa.Column("scope_path", sa.String(60), nullable=False, index=True),
        sa.Column("district_path", sa.String(60), nullable=False, index=True),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(200)),
        sa.Column("sender_email", sa.String(254)),
        sa.Column("message_id", sa.String(300)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("phase", sa.String(20)),
        sa.Column("processed_rows", sa.Integer(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("report", sa.Text()),
        sa.Column("registration_count", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Double()),
        sa.Column("reviewed_by", sa.String(200)),
        sa.Column("review_note", sa.String(500)),
    )
    op.create_table(
        "mail_outbox",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("upload_id", sa.Uuid()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(300)),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Double()),
    )
    op.create_index("ix_mail_outbox_due", "mail_outbox", ["sent_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("mail_outbox")
    op.drop_table("uploads")
    op.drop_table("batches")
    op.drop_table("commune_lists")
    op.drop_table("registration_history")
    for name in ("status", "batch_id", "list_id", "name_key", "tax_code", "district_path"):
        op.drop_index(f"ix_registrations_{name}", "registrations")
    with op.batch_alter_table("registrations") as batch:
        for name in ("status_token", "district_path", "notes", "source", "upload_id", "name_key", "address_key",
                     "reviewed_at", "reviewed_by", "review_reason", "duplicate_of", "exempt_reason", "list_id",
                     "sent_at", "batch_id", "forwarded_at", "updated_at"):
            batch.drop_column(name)
