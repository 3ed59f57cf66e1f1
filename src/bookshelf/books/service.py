"""Business rules and queries of the books feature, one book at a time (no web framework here):
create, read, change and delete a book, and its rating totals (which reviews change through
this module). Lists of books, an export's batches and counts are ``books.listing``.

Every function takes the request's ``Connection``; none commits (``get_connection`` does).
Each read is a single statement.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Update, bindparam, delete, insert, select, update

from bookshelf.books.exceptions import BookNotFound, BookVersionMismatch, IsbnAlreadyExists
from bookshelf.books.fields import parse_partial_date
from bookshelf.books.models import UNKNOWN_PUBLICATION_SORT_KEY, book_authors, book_subjects, books
from bookshelf.books.schemas import Book, BookCreate, BookUpdate
from bookshelf.db.database import Connection
from bookshelf.db.exceptions import IntegrityViolation
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
# statement memoizes its cache key. Lists (``books.listing``) start from a prebuilt column list
# (its 18 columns are not coerced again per request).
SELECT_BOOKS = select(*BOOK_COLUMNS)
_SELECT_BOOK = SELECT_BOOKS.where(books.c.id == bindparam("book_id"))


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
