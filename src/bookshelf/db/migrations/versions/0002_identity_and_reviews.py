"""Accounts, sign-in sessions and refresh tokens; reviews; book authorship and rating totals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bookshelf.db.migrations.sqlite_fts import BOOKS_FTS_REBUILD, BOOKS_FTS_TRIGGERS
from bookshelf.db.types import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.CheckConstraint("role IN ('reader', 'editor', 'admin')", name="ck_users_role_known"),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_auth_sessions_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_auth_sessions_user_id", "auth_sessions", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth_sessions.id"],
            name="fk_refresh_tokens_session_id_auth_sessions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])

    if op.get_bind().dialect.name == "sqlite":
        # ADD COLUMN keeps the table (and so its rowids, which the FTS index follows); batch
        # mode would copy it. SQLite accepts REFERENCES on a column added with a NULL default.
        for column in ("created_by", "updated_by"):
            op.execute(
                f"ALTER TABLE books ADD COLUMN {column} CHAR(32) "
                "REFERENCES users (id) ON DELETE SET NULL"
            )
    else:
        for column in ("created_by", "updated_by"):
            op.add_column("books", sa.Column(column, sa.Uuid(), nullable=True))
            op.create_foreign_key(
                f"fk_books_{column}_users", "books", "users", [column], ["id"], ondelete="SET NULL"
            )
    for column in ("rating_count", "rating_sum"):
        op.add_column("books", sa.Column(column, sa.Integer(), nullable=False, server_default="0"))

    op.create_table(
        "reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("book_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sa.ForeignKeyConstraint(
            ["book_id"], ["books.id"], name="fk_reviews_book_id_books", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_reviews_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("book_id", "user_id", name="uq_reviews_book_id_user_id"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_reviews_rating_range"),
    )
    op.create_index("ix_reviews_book_id_created_at_id", "reviews", ["book_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("reviews")
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite cannot drop a column that has a foreign key: batch mode rebuilds the table, which
    # drops its triggers and may renumber rowids, so the FTS triggers and index are rebuilt.
    with op.batch_alter_table("books") as batch:
        for column in ("rating_sum", "rating_count", "updated_by", "created_by"):
            batch.drop_column(column)
    if sqlite:
        for statement in BOOKS_FTS_TRIGGERS:
            op.execute(statement)
        op.execute(BOOKS_FTS_REBUILD)
    op.drop_table("refresh_tokens")
    op.drop_table("auth_sessions")
    op.drop_table("users")
