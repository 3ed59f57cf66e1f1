"""Books, their author/subject name keys, full-text search, and idempotency records.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from bookshelf.db.migrations.sqlite_fts import BOOKS_FTS_TABLE, BOOKS_FTS_TRIGGERS
from bookshelf.db.types import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# PostgreSQL: a generated tsvector (title and authors weigh more than the subtitle) with a GIN
# index. The 'simple' configuration lower-cases without stemming, whatever the book's language.
_POSTGRES_SEARCH = [
    """ALTER TABLE books ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, title), 'A')
        || setweight(jsonb_to_tsvector('simple'::regconfig, authors, '["string"]'), 'A')
        || setweight(to_tsvector('simple'::regconfig, coalesce(subtitle, '')), 'B')
    ) STORED""",
    "CREATE INDEX ix_books_search_vector ON books USING gin (search_vector)",
]


def upgrade() -> None:
    op.create_table(
        "books",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("isbn", sa.String(13), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("sort_title", sa.Text(), nullable=False),
        sa.Column("subtitle", sa.String(300), nullable=True),
        sa.Column("authors", _JSON_LIST, nullable=False),
        sa.Column("publisher", sa.String(200), nullable=True),
        sa.Column("published_date", sa.String(10), nullable=True),
        sa.Column("published_sort", sa.Date(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(2), nullable=True),
        sa.Column("subjects", _JSON_LIST, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_books"),
        sa.UniqueConstraint("isbn", name="uq_books_isbn"),
    )
    op.create_index("ix_books_sort_title_id", "books", ["sort_title", "id"])
    op.create_index("ix_books_published_sort_id", "books", ["published_sort", "id"])
    op.create_index("ix_books_created_at_id", "books", ["created_at", "id"])
    op.create_index("ix_books_language", "books", ["language"])
    for table in ("book_authors", "book_subjects"):
        op.create_table(
            table,
            sa.Column("book_id", sa.Uuid(), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.Column("name_key", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(
                ["book_id"],
                ["books.id"],
                name=f"fk_{table}_book_id_books",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("book_id", "position", name=f"pk_{table}"),
        )
        op.create_index(f"ix_{table}_name_key_book_id", table, ["name_key", "book_id"])
    op.create_table(
        "idempotency_records",
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("locked_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_records"),
    )
    op.create_index("ix_idempotency_records_expires_at", "idempotency_records", ["expires_at"])

    dialect = op.get_bind().dialect.name
    for statement in (
        _POSTGRES_SEARCH if dialect == "postgresql" else [BOOKS_FTS_TABLE, *BOOKS_FTS_TRIGGERS]
    ):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE books_fts")  # its triggers go with the books table
    op.drop_table("idempotency_records")
    op.drop_table("book_subjects")
    op.drop_table("book_authors")
    op.drop_table("books")
