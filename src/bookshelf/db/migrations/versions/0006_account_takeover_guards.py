"""Guards against account takeover: at most one live mailed token per account and holder's
purpose (a unique partial index), and the address buckets each account has signed in from
(``sign_in_addresses``), which the per-account budget of sign-in attempts spares.

Before the index is made, older duplicates of live tokens (two issued at the same moment could
both stay alive) are marked used, keeping the newest.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bookshelf.db.types import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "used_at IS NULL AND purpose <> 'cancel-email-change'"


def upgrade() -> None:
    # Keep each account's newest live token of a purpose; supersede the rest (the same
    # statement on both databases).
    op.execute(
        sa.text(
            "UPDATE account_tokens SET used_at = created_at"
            " WHERE used_at IS NULL AND purpose <> 'cancel-email-change' AND EXISTS ("
            "SELECT 1 FROM account_tokens AS newer WHERE newer.user_id = account_tokens.user_id"
            " AND newer.purpose = account_tokens.purpose AND newer.used_at IS NULL"
            " AND (newer.created_at > account_tokens.created_at OR (newer.created_at ="
            " account_tokens.created_at AND newer.token_hash > account_tokens.token_hash)))"
        )
    )
    op.create_index(
        "ux_account_tokens_one_alive",
        "account_tokens",
        ["user_id", "purpose"],
        unique=True,
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
    )
    op.create_table(
        "sign_in_addresses",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_sign_in_addresses_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "address_hash", name="pk_sign_in_addresses"),
    )
    op.create_index("ix_sign_in_addresses_expires_at", "sign_in_addresses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_addresses_expires_at", table_name="sign_in_addresses")
    op.drop_table("sign_in_addresses")
    op.drop_index("ux_account_tokens_one_alive", table_name="account_tokens")
