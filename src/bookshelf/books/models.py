"""Tables of the books feature.

``books`` keeps each book in one row (authors and subjects as JSON arrays) so reading a book is one
primary-key lookup. ``book_authors`` and ``book_subjects`` repeat those names, case-folded, purely
so that the ``author`` and ``subject`` filters are served by an index on both databases.
Full-text search has a dialect-specific structure created by the migration (a generated
``tsvector`` column with a GIN index on PostgreSQL, an FTS5 table kept in step by triggers on
SQLite), which is why it does not appear here.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from bookshelf.db.metadata import metadata
from bookshelf.db.types import UtcDateTime

# Books without a publication date sort after every dated book (ascending), as NULLs do on
# PostgreSQL. A real value instead of NULL keeps keyset pagination a plain row comparison.
UNKNOWN_PUBLICATION_SORT_KEY = date(9999, 12, 31)

_JSON_LIST = JSON().with_variant(JSONB(), "postgresql")

books = Table(
    "books",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("isbn", String(13), unique=True),
    Column("title", String(300), nullable=False),
    Column("sort_title", Text, nullable=False),
    Column("subtitle", String(300)),
    Column("authors", _JSON_LIST, nullable=False),
    Column("publisher", String(200)),
    Column("published_date", String(10)),
    Column("published_sort", Date, nullable=False),
    Column("page_count", Integer),
    Column("language", String(2)),
    Column("subjects", _JSON_LIST, nullable=False),
    Column("description", Text),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("created_by", Uuid, ForeignKey("users.id", ondelete="SET NULL")),
    Column("updated_by", Uuid, ForeignKey("users.id", ondelete="SET NULL")),
    # Changed only by service.change_rating_totals, in the transaction of each review write.
    Column("rating_count", Integer, nullable=False, server_default="0"),
    Column("rating_sum", Integer, nullable=False, server_default="0"),
    Index("ix_books_sort_title_id", "sort_title", "id"),
    Index("ix_books_published_sort_id", "published_sort", "id"),
    Index("ix_books_created_at_id", "created_at", "id"),
    Index("ix_books_language", "language"),
)

book_authors = Table(
    "book_authors",
    metadata,
    Column("book_id", Uuid, ForeignKey("books.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name_key", Text, nullable=False),
    Index("ix_book_authors_name_key_book_id", "name_key", "book_id"),
)

book_subjects = Table(
    "book_subjects",
    metadata,
    Column("book_id", Uuid, ForeignKey("books.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name_key", Text, nullable=False),
    Index("ix_book_subjects_name_key_book_id", "name_key", "book_id"),
)
