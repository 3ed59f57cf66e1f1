"""The fast path's statement cache (``fastpath.statements.StatementCache``: compiled once per
shape, keyed as SQLAlchemy keys them) gives the driver exactly what compiling each statement
with public API gives (``db.statements.Statements``): the same SQL and the same arguments, for
each kind of statement the services build, on both dialects, whether it was compiled just now
or found in the cache with other values."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.sql.elements import ClauseElement

from bookshelf.books.models import book_authors, books
from bookshelf.db.statements import DialectName, Statements
from bookshelf.fastpath.statements import StatementCache, statements_for

Case = tuple[str, ClauseElement, dict[str, Any] | None]


def _cases(n: int) -> list[Case]:
    """The same shapes each time, with values that differ with ``n``."""
    book_id = uuid.UUID(int=n)
    languages = ["en", "fr", "de"][: 1 + n % 3]
    return [
        ("select by id", select(books.c.id, books.c.created_at).where(books.c.id == book_id), None),
        ("IN list", select(books.c.id).where(books.c.language.in_(languages)), None),
        (
            "order, limit, offset",
            select(books.c.title).order_by(books.c.title.desc()).limit(5 + n).offset(n),
            None,
        ),
        (
            "named parameter",
            select(books.c.id).where(books.c.isbn == bindparam("isbn")),
            {"isbn": f"97800{n}"},
        ),
        (
            "insert without values()",
            insert(book_authors),
            {"book_id": book_id, "position": n, "name_key": f"k{n}"},
        ),
        (
            "insert of JSON, dates and times",
            insert(books).values(
                id=book_id,
                authors=["Ada", f"Bo {n}"],
                published_sort=date(2020, 1, n),
                created_at=datetime(2024, 5, n, 12, tzinfo=UTC),
            ),
            None,
        ),
        (
            "update returning",
            update(books)
            .where(books.c.id == book_id, books.c.version == n)
            .values(version=books.c.version + 1, title=f"title {n}")
            .returning(books.c.version, books.c.updated_at),
            None,
        ),
        ("delete", delete(books).where(books.c.id == book_id), None),
        ("aggregate", select(func.count()).select_from(books).where(books.c.page_count > n), None),
        ("text", text("SELECT 1"), None),
    ]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_cache_binds_every_kind_of_statement_as_a_fresh_compile_does(
    dialect: DialectName,
) -> None:
    cache, public = StatementCache(dialect), Statements(dialect)
    for n in (1, 2, 3):  # the first round compiles, the others find the shapes in the cache
        for name, statement, parameters in _cases(n):
            ours, theirs = cache.bind(statement, parameters), public.bind(statement, parameters)
            assert (ours.sql, ours.arguments) == (theirs.sql, theirs.arguments), (name, n)
            assert ours.statement.returns_rows == theirs.statement.returns_rows, name
    assert len(cache._entries) == len(_cases(1))


def test_the_setting_chooses_the_statements() -> None:
    assert type(statements_for("sqlite", fast_path=True)) is StatementCache
    assert type(statements_for("sqlite", fast_path=False)) is Statements
