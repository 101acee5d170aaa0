"""Session revocations (issue 16): the ended sessions this service refuses, from
``provisioning.session.revoked`` (libs/common/sessions.py). Numbered apart (03xx): another
change of the same release may take the next number, both apply (every head is upgraded).

Revision ID: 0301
Revises: 0004
"""
from alembic import op

from libs.common.sessions import create_session_tables, drop_session_tables

revision = "0301"
down_revision = "0004"


def upgrade() -> None:
    create_session_tables(op)


def downgrade() -> None:
    drop_session_tables(op)
