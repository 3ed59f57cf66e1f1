"""Full-text search over title, subtitle and authors, one implementation per database.

PostgreSQL: a generated ``tsvector`` column (``simple`` configuration: lower-cased, no stemming,
so it works for every language in the catalog) with a GIN index, queried with
``plainto_tsquery`` (every word must match; no operator syntax, so it never fails on user input
and means the same as on SQLite) and ranked with ``ts_rank``.
SQLite: an FTS5 table kept in step with ``books`` by triggers, ranked with ``bm25``.
Both add a ``rank`` column (higher is better) for ``sort=relevance``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnClause, Double, Select, cast, column, func, literal_column, table

from bookshelf.books.models import books

_FTS_TABLE = table("books_fts", column("rowid"))
_SEARCH_VECTOR: ColumnClause[Any] = literal_column("books.search_vector")


def fts5_query(text: str) -> str:
    """Turn free text into an FTS5 query that matches every word, whatever punctuation it holds.

    Each word becomes a quoted string (FTS5 syntax has no meaning inside quotes), so input such as
    ``title:"x" OR NEAR(`` searches for those words instead of failing as a syntax error.
    """
    words = [word.replace('"', '""') for word in text.split()]
    return " ".join(f'"{word}"' for word in words if any(c.isalnum() for c in word))


def add_text_search(statement: Select[Any], text: str, *, dialect: str) -> Select[Any]:
    if dialect == "postgresql":
        query = func.plainto_tsquery(literal_column("'simple'::regconfig"), text)
        return statement.where(_SEARCH_VECTOR.op("@@")(query)).add_columns(
            cast(func.ts_rank(_SEARCH_VECTOR, query), Double).label("rank")
        )
    fts: ColumnClause[Any] = literal_column("books_fts")
    return (
        statement.join_from(books, _FTS_TABLE, _FTS_TABLE.c.rowid == literal_column("books.rowid"))
        .where(fts.op("MATCH")(fts5_query(text)))
        .add_columns(cast(-func.bm25(fts), Double).label("rank"))
    )
