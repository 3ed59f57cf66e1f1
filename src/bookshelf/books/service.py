"""Business rules and queries of the books feature (no web framework here).

Every function takes the request's ``Connection``; none commits (``get_connection`` does).
Reads are single statements; list queries are keyset-paginated and served by the indexes in
``books.models``.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Update,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from bookshelf.books import search
from bookshelf.books.exceptions import (
    BookNotFound,
    BookVersionMismatch,
    IsbnAlreadyExists,
    SearchTimedOut,
)
from bookshelf.books.fields import parse_partial_date
from bookshelf.books.models import (
    UNKNOWN_PUBLICATION_SORT_KEY,
    book_authors,
    book_subjects,
    books,
)
from bookshelf.books.ordering import PageRequest, apply_order, next_key, page_values
from bookshelf.books.schemas import (
    Book,
    BookCreate,
    BookFilters,
    BookListQuery,
    BookSort,
    BookUpdate,
)
from bookshelf.db.database import Connection
from bookshelf.db.exceptions import IntegrityViolation, StatementCancelled
from bookshelf.db.types import utc_now

BOOK_COLUMNS = (
    books.c.id,
    books.c.isbn,
    books.c.title,
    books.c.subtitle,
    books.c.authors,
    books.c.publisher,
    books.c.published_date,
    books.c.page_count,
    books.c.language,
    books.c.subjects,
    books.c.description,
    books.c.version,
    books.c.created_at,
    books.c.updated_at,
    books.c.created_by,
    books.c.updated_by,
    books.c.rating_count,
    books.c.rating_sum,
)


_CENTS = Decimal("0.01")


def book_from_row(row: Any) -> Book:
    """A Book from a row of BOOK_COLUMNS (extra columns, such as sort keys, are ignored)."""
    values = row._asdict()
    count, total = values["rating_count"], values.pop("rating_sum")
    values["rating_average"] = (
        float((Decimal(total) / count).quantize(_CENTS, rounding=ROUND_HALF_UP)) if count else None
    )
    return Book.model_validate(values)


def fold(text: str) -> str:
    """The case-insensitive key of a name, tag or title."""
    return text.strip().casefold()


def _derived_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Columns computed from the client's fields, kept in step on every write."""
    derived: dict[str, Any] = {}
    if "title" in values:
        derived["sort_title"] = fold(values["title"])
    if "published_date" in values:
        published = values["published_date"]
        derived["published_sort"] = (
            parse_partial_date(published)[0] if published else UNKNOWN_PUBLICATION_SORT_KEY
        )
    return derived


async def _write_name_keys(
    connection: Connection,
    book_id: UUID,
    *,
    authors: list[str] | None,
    subjects: list[str] | None,
    new_book: bool = False,
) -> None:
    """Replace the rows that index a book's authors and/or subjects (None = leave as is).
    A new book has none yet, so nothing is deleted first (a round trip saved per table)."""
    for table, names in ((book_authors, authors), (book_subjects, subjects)):
        if names is None:
            continue
        if not new_book:
            await connection.execute(delete(table).where(table.c.book_id == book_id))
        if names:
            await connection.execute(insert(table), name_key_rows(book_id, names))


_INSERT_BOOK = insert(books)


def _is_isbn_conflict(error: IntegrityViolation) -> bool:
    return error.concerns("isbn")


def new_book_row(data: BookCreate, *, actor: UUID | None, now: datetime) -> dict[str, Any]:
    """The ``books`` row of a new book (a fresh id, version 1), derived columns included."""
    return {
        **data.model_dump(),
        **_derived_columns({"title": data.title, "published_date": data.published_date}),
        "id": uuid4(),
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "created_by": actor,
        "updated_by": actor,
    }


def name_key_rows(book_id: UUID, names: list[str]) -> list[dict[str, Any]]:
    """The rows that index a book's authors (or subjects) by their case-folded names."""
    return [
        {"book_id": book_id, "position": position, "name_key": fold(name)}
        for position, name in enumerate(names)
    ]


async def create_book(connection: Connection, data: BookCreate, *, actor: UUID) -> Book:
    """Insert a book on behalf of ``actor``; a duplicate ISBN raises ``IsbnAlreadyExists``."""
    now = utc_now()
    fields = data.model_dump()
    row = new_book_row(data, actor=actor, now=now)
    book_id: UUID = row["id"]
    try:
        await connection.execute(_INSERT_BOOK, row)
    except IntegrityViolation as error:
        if data.isbn is not None and _is_isbn_conflict(error):
            raise IsbnAlreadyExists(data.isbn) from None
        raise
    await _write_name_keys(
        connection, book_id, authors=data.authors, subjects=data.subjects, new_book=True
    )
    return Book(
        **fields,
        id=book_id,
        version=1,
        created_at=now,
        updated_at=now,
        created_by=actor,
        updated_by=actor,
        rating_count=0,
        rating_average=None,
    )


# Statements are built once where their shape is fixed: building one per call, and its cache
# key (``db.statements``), costs more than running it (measured: bench/RESULTS.md); a prebuilt
# statement memoizes its cache key. Lists start from a prebuilt column list (its 18 columns are
# not coerced again per request).
_SELECT_BOOKS = select(*BOOK_COLUMNS)
_SELECT_BOOK = _SELECT_BOOKS.where(books.c.id == bindparam("book_id"))


async def get_book(connection: Connection, book_id: UUID) -> Book:
    row = (await connection.execute(_SELECT_BOOK, {"book_id": book_id})).first()
    if row is None:
        raise BookNotFound(book_id)
    return book_from_row(row)


async def book_exists(connection: Connection, book_id: UUID) -> bool:
    return await connection.scalar(select(books.c.id).where(books.c.id == book_id)) is not None


async def _missing_or_changed(connection: Connection, book_id: UUID) -> Exception:
    """After a guarded write touched no row: was the book gone, or at another version?"""
    if await book_exists(connection, book_id):
        return BookVersionMismatch()
    return BookNotFound(book_id)


@functools.lru_cache(maxsize=256)
def _update_statement(columns: tuple[str, ...], *, guarded: bool) -> Update:
    """The UPDATE of a patch that sets ``columns``, guarded by ``If-Match`` or not, with every
    value a bound parameter (named ``new_<column>``: a column's own name is reserved for
    SQLAlchemy's SET clause): one statement per shape, built once instead of per request with
    its cache key. The shapes are bounded: subsets of a book's dozen columns, and the cache
    keeps the 256 latest."""
    statement = update(books).where(books.c.id == bindparam("book_id"))
    if guarded:
        statement = statement.where(books.c.version.in_(bindparam("if_versions", expanding=True)))
    values: dict[str, Any] = {
        name: bindparam(f"new_{name}", type_=books.c[name].type)
        for name in (*columns, "updated_at", "updated_by")
    }
    values["version"] = books.c.version + 1
    return statement.values(values).returning(*BOOK_COLUMNS)


async def update_book(
    connection: Connection,
    book_id: UUID,
    patch: BookUpdate,
    *,
    actor: UUID,
    if_versions: Collection[int] | None = None,
) -> Book:
    """Apply a merge patch; with ``if_versions``, only if the book is at one of those versions."""
    changes = patch.changes()
    if not changes:
        book = await get_book(connection, book_id)
        if if_versions is not None and book.version not in if_versions:
            raise BookVersionMismatch()
        return book
    values = {**changes, **_derived_columns(changes)}
    statement = _update_statement(tuple(values), guarded=if_versions is not None)
    values |= {"updated_at": utc_now(), "updated_by": actor}
    parameters = {f"new_{name}": value for name, value in values.items()}
    parameters["book_id"] = book_id
    if if_versions is not None:
        parameters["if_versions"] = list(if_versions)
    try:
        row = (await connection.execute(statement, parameters)).first()
    except IntegrityViolation as error:
        if changes.get("isbn") and _is_isbn_conflict(error):
            raise IsbnAlreadyExists(changes["isbn"]) from None
        raise
    if row is None:
        raise await _missing_or_changed(connection, book_id)
    await _write_name_keys(
        connection,
        book_id,
        authors=changes.get("authors"),
        subjects=changes.get("subjects"),
    )
    return book_from_row(row)


async def delete_book(
    connection: Connection,
    book_id: UUID,
    *,
    if_versions: Collection[int] | None = None,
) -> None:
    statement = delete(books).where(books.c.id == book_id)
    if if_versions is not None:
        statement = statement.where(books.c.version.in_(list(if_versions)))
    deleted = (await connection.execute(statement.returning(books.c.id))).first()
    if deleted is None:
        raise await _missing_or_changed(connection, book_id)


async def lock_book_for_review(connection: Connection, book_id: UUID) -> None:
    """Lock the book's row (``FOR UPDATE``) before a review write touches the review row, so all
    review writes take their locks in the same order (book, then review) and cannot deadlock
    each other. ``BookNotFound`` if there is no such book."""
    found = await connection.scalar(
        select(books.c.id).where(books.c.id == book_id).with_for_update()
    )
    if found is None:
        raise BookNotFound(book_id)


async def change_rating_totals(
    connection: Connection, book_id: UUID, *, count: int, rating: int
) -> None:
    """Add ``count`` reviews and ``rating`` stars to a book's rating totals (negative numbers
    take them away), in the transaction of the review write that calls it.

    A relative UPDATE, so it locks the book's row and concurrent review writes of one book
    serialise; the totals always equal the reviews. The version goes up because the book's
    representation (its rating) changes. ``BookNotFound`` if there is no such book.
    """
    changed = await connection.execute(
        update(books)
        .where(books.c.id == book_id)
        .values(
            rating_count=books.c.rating_count + count,
            rating_sum=books.c.rating_sum + rating,
            version=books.c.version + 1,
        )
        .returning(books.c.id)
    )
    if changed.first() is None:
        raise BookNotFound(book_id)


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
        return apply_order(_SELECT_BOOKS.where(*conditions), sort, resumed=resumed)
    if sort is not BookSort.RELEVANCE:
        matching = search.add_text_search(_SELECT_BOOKS.where(*conditions), dialect=dialect)
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
        _SELECT_BOOKS.add_columns(ranked.c.sort_key)
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
    statement = _SELECT_BOOKS.where(*_filter_conditions(filters))
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
