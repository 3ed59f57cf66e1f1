"""Books by the many: a page of the list (``GET /books``: filters, search, sort, keyset
pagination), an export's batches in id order, and a count (no web framework here).

Every function takes the request's ``Connection``; none commits. List queries are
keyset-paginated and served by the indexes in ``books.models``; rows become ``Book``s as in
``books.service``.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Integer, Select, bindparam, func, select

from bookshelf.books import search
from bookshelf.books.exceptions import SearchTimedOut
from bookshelf.books.fields import parse_partial_date
from bookshelf.books.models import book_authors, book_subjects, books
from bookshelf.books.ordering import PageRequest, apply_order, next_key, page_values
from bookshelf.books.schemas import Book, BookFilters, BookListQuery, BookSort
from bookshelf.books.service import SELECT_BOOKS, book_from_row, fold
from bookshelf.db.database import Connection
from bookshelf.db.exceptions import StatementCancelled


@dataclass(frozen=True)
class SearchBounds:
    """What one search may cost: how many matches it ranks, and how long its statement runs."""

    rank_candidates: int
    statement_timeout_ms: int


# The list's filters are bound parameters (named in ``_filter_values``): a statement is built
# once per shape (which filters, which sort, resumed or not, searching or not) and run with
# each request's values. Building one per request, and its cache key, was a large part of a
# search's CPU (measured: bench/RESULTS.md).
def _filter_values(filters: BookFilters) -> dict[str, Any]:
    """The values of the filters ``filters`` sets (the search text ``q`` apart)."""
    values: dict[str, Any] = {}
    if filters.author is not None:
        values["filter_author"] = fold(filters.author)
    if filters.subject is not None:
        values["filter_subject"] = fold(filters.subject)
    if filters.language is not None:
        values["filter_language"] = filters.language
    if filters.isbn is not None:
        values["filter_isbn"] = filters.isbn
    if filters.published_from is not None:
        values["filter_published_from"] = parse_partial_date(filters.published_from)[0]
    if filters.published_to is not None:
        values["filter_published_to"] = parse_partial_date(filters.published_to)[1]
    return values


def _filter_conditions(names: Collection[str]) -> list[ColumnElement[bool]]:
    """The WHERE conditions of the filters ``names`` (keys of ``_filter_values``)."""
    conditions: list[ColumnElement[bool]] = []
    for table, name in ((book_authors, "filter_author"), (book_subjects, "filter_subject")):
        if name in names:
            key = bindparam(name, type_=table.c.name_key.type)
            conditions.append(
                books.c.id.in_(select(table.c.book_id).where(table.c.name_key == key))
            )
    for column, name in ((books.c.language, "filter_language"), (books.c.isbn, "filter_isbn")):
        if name in names:
            conditions.append(column == bindparam(name, type_=column.type))
    published = books.c.published_sort
    if "filter_published_from" in names or "filter_published_to" in names:
        conditions.append(books.c.published_date.is_not(None))
    if "filter_published_from" in names:
        conditions.append(published >= bindparam("filter_published_from", type_=published.type))
    if "filter_published_to" in names:
        conditions.append(published <= bindparam("filter_published_to", type_=published.type))
    return conditions


@functools.lru_cache(maxsize=512)
def _list_statement(
    dialect: str, filters: tuple[str, ...], sort: BookSort, *, resumed: bool, searching: bool
) -> Select[Any]:
    """The statement of one shape of list page, its values left as bound parameters."""
    conditions = _filter_conditions(filters)
    if not searching:
        return apply_order(SELECT_BOOKS.where(*conditions), sort, resumed=resumed)
    if sort is not BookSort.RELEVANCE:
        matching = search.add_text_search(SELECT_BOOKS.where(*conditions), dialect=dialect)
        return apply_order(matching, sort, resumed=resumed)
    # Rank the capped candidates and pick the page among them by (rank, id) on the subquery's
    # two columns; only the page's rows are then joined to books for their columns (joining
    # first costs a primary-key lookup per candidate: bench/RESULTS.md, at 1M books).
    candidates = search.ranked_candidates(conditions, dialect=dialect)
    ranked = apply_order(
        select(candidates.c.id, candidates.c.rank),
        sort,
        resumed=resumed,
        ranked_by=(candidates.c.rank, candidates.c.id),
    ).subquery("page")
    return (
        SELECT_BOOKS.add_columns(ranked.c.sort_key)
        .join_from(ranked, books, books.c.id == ranked.c.id)
        .order_by(ranked.c.sort_key.desc(), ranked.c.id.desc())
    )


async def _bounded_search(
    connection: Connection, statement: Select[Any], values: dict[str, Any], timeout_ms: int
) -> list[Any]:
    try:
        async with search.bounded(connection, timeout_ms):
            return (await connection.execute(statement, values)).all()
    except StatementCancelled:
        raise SearchTimedOut() from None


async def list_books(
    connection: Connection, query: BookListQuery, *, search_bounds: SearchBounds
) -> tuple[Sequence[Book], str | None]:
    """One page of books matching ``query``, and the cursor of the next page (or None).

    A search (``q``) runs under ``search_bounds``: ``sort=relevance`` ranks at most
    ``rank_candidates`` matches (see ``books.search``), and a search that runs past its
    statement timeout raises ``SearchTimedOut``.
    """
    page = PageRequest(sort=query.effective_sort, cursor=query.cursor, limit=query.limit)
    filter_values = _filter_values(query)
    values = filter_values | page_values(page)
    statement = _list_statement(
        connection.dialect,
        tuple(filter_values),
        page.sort,
        resumed=page.cursor is not None,
        searching=query.q is not None,
    )
    if query.q is None:
        rows = (await connection.execute(statement, values)).all()
    else:
        values |= search.text_values(
            query.q, dialect=connection.dialect, cap=search_bounds.rank_candidates
        )
        rows = await _bounded_search(
            connection, statement, values, search_bounds.statement_timeout_ms
        )
    items = [book_from_row(row) for row in rows[: page.limit]]
    return items, next_key(page, rows)


@functools.lru_cache(maxsize=256)
def _batch_statement(
    dialect: str, filters: tuple[str, ...], *, resumed: bool, searching: bool
) -> Select[Any]:
    statement = SELECT_BOOKS.where(*_filter_conditions(filters))
    if resumed:
        statement = statement.where(books.c.id > bindparam("after_id", type_=books.c.id.type))
    if searching:
        statement = search.add_text_search(statement, dialect=dialect)
    return statement.order_by(books.c.id).limit(bindparam("batch_size", type_=Integer))


async def books_after(
    connection: Connection,
    filters: BookFilters,
    *,
    after: UUID | None,
    limit: int,
    search_timeout_ms: int,
) -> list[Book]:
    """Up to ``limit`` books matching ``filters`` whose id is greater than ``after``, in id
    order: one batch of an export. The id order is the primary key's, so each batch is an
    index range whatever the catalog's size. A search over ``search_timeout_ms`` (PostgreSQL)
    raises ``SearchTimedOut``."""
    values = _filter_values(filters)
    statement = _batch_statement(
        connection.dialect,
        tuple(values),
        resumed=after is not None,
        searching=filters.q is not None,
    )
    values |= {"batch_size": limit} | ({"after_id": after} if after is not None else {})
    if filters.q is None:
        rows = (await connection.execute(statement, values)).all()
    else:
        values |= search.text_values(filters.q, dialect=connection.dialect)
        rows = await _bounded_search(connection, statement, values, search_timeout_ms)
    return [book_from_row(row) for row in rows]


async def count_books(connection: Connection, filters: BookFilters) -> int:
    """How many books match ``filters`` (the command line's export shows it as progress)."""
    values = _filter_values(filters)
    statement = select(func.count()).select_from(books).where(*_filter_conditions(values))
    if filters.q is not None:
        statement = search.add_text_search(statement, dialect=connection.dialect)
        values |= search.text_values(filters.q, dialect=connection.dialect)
    return int(await connection.scalar(statement, values) or 0)
