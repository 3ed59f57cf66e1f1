"""The reviews table. A book's ``rating_count`` and ``rating_sum`` are kept in step with it in
the same transaction as every review write."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

from bookshelf.db.metadata import metadata
from bookshelf.db.types import UtcDateTime

reviews = Table(
    "reviews",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("book_id", Uuid, ForeignKey("books.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("body", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    UniqueConstraint("book_id", "user_id", name="uq_reviews_book_id_user_id"),
    Index("ix_reviews_book_id_created_at_id", "book_id", "created_at", "id"),
)
