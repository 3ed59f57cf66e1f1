"""Bulk import and export of books (NDJSON), shared by the API and the command line.

Export reads the catalog in keyset batches by id, each in a unit of work of its own, so no
connection is held while the consumer (a slow client, a file) takes the previous batch, and
memory stays at one batch whatever the catalog's size. It is not a snapshot: each batch sees
the catalog as it is then, so a book that exists throughout appears exactly once, and one added
or deleted meanwhile may or may not.

Import validates every line, then writes the valid ones without savepoints: the ISBNs of the
batch are checked against the file (the first line with an ISBN wins) and against the catalog
in one query per 1,000, and the rows are inserted in multi-row statements with ``ON CONFLICT
DO NOTHING``, so a book with the same ISBN committed by someone else in between is reported as
that line's duplicate (its id is missing from ``RETURNING``) instead of failing the request.
Like every service, nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import Insert, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bookshelf.books import service
from bookshelf.books.exceptions import (
    FieldErrors,
    ImportRejected,
    InvalidImportLine,
    IsbnAlreadyExists,
    IsbnRepeatedInImport,
    MalformedImportLine,
)
from bookshelf.books.models import book_authors, book_subjects, books
from bookshelf.books.schemas import Book, BookCreate, BookFilters
from bookshelf.db.database import Connection, Database, unit_of_work
from bookshelf.db.types import utc_now
from bookshelf.exceptions import DomainError

EXPORT_BATCH_SIZE = 500
# ISBNs looked up per query, and rows per INSERT: well inside both databases' bind limits.
_ISBN_LOOKUP_SIZE = 1000
_INSERT_BATCH_SIZE = 500
# Lines validated between two yields to the event loop: validating 10,000 lines takes a few
# hundred milliseconds of CPU, which other requests on the worker should not wait for.
_PARSE_SLICE = 250
NDJSON_MEDIA_TYPE = "application/x-ndjson"


# --- export ---------------------------------------------------------------------------------


async def export_batches(
    database: Database,
    filters: BookFilters,
    *,
    search_timeout_ms: int,
    batch_size: int | None = None,
    after: UUID | None = None,
) -> AsyncIterator[list[Book]]:
    """Every book matching ``filters`` with an id greater than ``after``, in id order, one
    batch at a time. Each batch is read in its own short unit of work, and the connection is
    back in the pool before the batch is yielded (``batch_size``: ``EXPORT_BATCH_SIZE``)."""
    size = batch_size or EXPORT_BATCH_SIZE
    while True:
        async with unit_of_work(database, write=False) as connection:
            batch = await service.books_after(
                connection,
                filters,
                after=after,
                limit=size,
                search_timeout_ms=search_timeout_ms,
            )
        if batch:
            yield batch
        if len(batch) < size:
            return
        after = batch[-1].id


def ndjson_lines(batch: Sequence[Book]) -> bytes:
    """One JSON object per line, each line ending with a newline."""
    return b"".join(book.__pydantic_serializer__.to_json(book) + b"\n" for book in batch)


# --- import ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportLine:
    """A line that is a valid new book."""

    line: int
    book: BookCreate


@dataclass(frozen=True)
class LineOutcome:
    """What became of one line: created (``book_id``) or refused (``error``)."""

    line: int
    book_id: UUID | None = None
    error: DomainError | None = None


@dataclass
class ImportState:
    """What an import remembers across its batches: the line of each ISBN seen so far."""

    seen_isbns: dict[str, int] = field(default_factory=dict)


def numbered_lines(body: bytes) -> list[tuple[int, bytes]]:
    """The non-blank lines of an NDJSON body with their 1-based line numbers (a blank line,
    such as the one after the last newline, is skipped but still counted)."""
    return [
        (number, line) for number, line in enumerate(body.split(b"\n"), start=1) if line.strip()
    ]


def _field_errors(error: ValidationError, line: int) -> FieldErrors:
    return [
        {"loc": ["body", line, *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False)
    ]


def parse_line(number: int, text: bytes) -> ImportLine | LineOutcome:
    """A line as a new book, or the outcome that says why it is not one."""
    try:
        return ImportLine(number, BookCreate.model_validate_json(text))
    except ValidationError as error:
        if any(item["type"] == "json_invalid" for item in error.errors()):
            return LineOutcome(number, error=MalformedImportLine(number))
        return LineOutcome(number, error=InvalidImportLine(number, _field_errors(error, number)))


async def parse_lines(
    lines: Iterable[tuple[int, bytes]],
) -> tuple[list[ImportLine], list[LineOutcome]]:
    """Validate every line: the valid books, and the outcomes of the invalid lines."""
    valid: list[ImportLine] = []
    invalid: list[LineOutcome] = []
    for index, (number, text) in enumerate(lines, start=1):
        parsed = parse_line(number, text)
        if isinstance(parsed, ImportLine):
            valid.append(parsed)
        else:
            invalid.append(parsed)
        if index % _PARSE_SLICE == 0:
            await asyncio.sleep(0)
    return valid, invalid


async def _isbns_in_catalog(connection: Connection, isbns: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(isbns), _ISBN_LOOKUP_SIZE):
        chunk = isbns[start : start + _ISBN_LOOKUP_SIZE]
        rows = await connection.execute(select(books.c.isbn).where(books.c.isbn.in_(chunk)))
        found.update(row.isbn for row in rows)
    return found


async def _without_duplicates(
    connection: Connection, lines: Sequence[ImportLine], state: ImportState
) -> tuple[list[ImportLine], list[LineOutcome]]:
    """The lines whose ISBN is neither earlier in the import nor in the catalog, and the
    outcomes of those that are."""
    unique: list[ImportLine] = []
    duplicates: list[LineOutcome] = []
    for item in lines:
        isbn = item.book.isbn
        if isbn is None:
            unique.append(item)
        elif (first := state.seen_isbns.setdefault(isbn, item.line)) != item.line:
            duplicates.append(LineOutcome(item.line, error=IsbnRepeatedInImport(isbn, first)))
        else:
            unique.append(item)
    in_catalog = await _isbns_in_catalog(
        connection, [item.book.isbn for item in unique if item.book.isbn is not None]
    )
    if in_catalog:
        duplicates.extend(
            LineOutcome(item.line, error=IsbnAlreadyExists(item.book.isbn))
            for item in unique
            if item.book.isbn in in_catalog
        )
        unique = [item for item in unique if item.book.isbn not in in_catalog]
    return unique, duplicates


def _insert_ignoring_conflicts(connection: Connection) -> Insert:
    statement = (
        postgresql_insert(books) if connection.dialect == "postgresql" else sqlite_insert(books)
    )
    return statement.on_conflict_do_nothing().returning(books.c.id)


async def _insert(
    connection: Connection, lines: Sequence[ImportLine], *, actor: UUID | None
) -> list[LineOutcome]:
    """Insert the books, a batch per statement; a line whose ISBN another transaction committed
    meanwhile is skipped by the database and reported as a duplicate."""
    outcomes: list[LineOutcome] = []
    insert_books = _insert_ignoring_conflicts(connection)
    now = utc_now()
    for start in range(0, len(lines), _INSERT_BATCH_SIZE):
        batch = lines[start : start + _INSERT_BATCH_SIZE]
        rows = [service.new_book_row(item.book, actor=actor, now=now) for item in batch]
        # One statement per batch (multi-row VALUES): RETURNING says which rows went in.
        inserted = {row.id for row in await connection.execute(insert_books.values(rows))}
        authors: list[dict[str, Any]] = []
        subjects: list[dict[str, Any]] = []
        for item, row in zip(batch, rows, strict=True):
            book_id: UUID = row["id"]
            if book_id not in inserted:
                isbn = item.book.isbn or ""
                outcomes.append(LineOutcome(item.line, error=IsbnAlreadyExists(isbn)))
                continue
            authors.extend(service.name_key_rows(book_id, item.book.authors))
            subjects.extend(service.name_key_rows(book_id, item.book.subjects))
            outcomes.append(LineOutcome(item.line, book_id=book_id))
        for table, keys in ((book_authors, authors), (book_subjects, subjects)):
            if keys:
                await connection.execute_many(insert(table), keys)
    return outcomes


async def import_books(
    connection: Connection,
    lines: Iterable[tuple[int, bytes]],
    *,
    actor: UUID | None,
    all_or_nothing: bool = False,
    state: ImportState | None = None,
) -> list[LineOutcome]:
    """Import numbered NDJSON lines: one outcome per line, in line order.

    By default every valid line is written and every other one reported. With
    ``all_or_nothing``, any bad line raises ``ImportRejected`` listing them all; it is raised
    before anything is written, unless a concurrent write made a line a duplicate during the
    insert, and then the caller's rollback undoes the rest. ``state`` carries the ISBNs seen
    across the calls of one import that arrives in several batches (the command line's).
    """
    state = state if state is not None else ImportState()
    valid, failed = await parse_lines(lines)
    unique, duplicates = await _without_duplicates(connection, valid, state)
    failed.extend(duplicates)
    if all_or_nothing and failed:
        raise rejection(failed)
    written = await _insert(connection, unique, actor=actor)
    outcomes = sorted([*failed, *written], key=lambda outcome: outcome.line)
    if all_or_nothing and any(outcome.error is not None for outcome in written):
        raise rejection(outcomes)
    return outcomes


def rejection(outcomes: Sequence[LineOutcome]) -> ImportRejected:
    """The 422 of an all-or-nothing import: an ``errors`` entry per problem of every bad line."""
    errors: FieldErrors = []
    bad = sorted((o for o in outcomes if o.error is not None), key=lambda o: o.line)
    for outcome in bad:
        error = outcome.error
        if error is None:  # filtered out above; for the type checker
            continue
        field_errors: FieldErrors | None = getattr(error, "errors", None)
        if field_errors:
            errors.extend(field_errors)
        else:
            location: list[object] = ["body", outcome.line]
            if isinstance(error, IsbnAlreadyExists | IsbnRepeatedInImport):
                location.append("isbn")
            errors.append({"loc": location, "msg": error.detail, "type": error.slug})
    return ImportRejected(errors, bad_lines=len(bad))
