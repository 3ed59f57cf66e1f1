"""Bulk import and export of books (NDJSON), shared by the API and the command line.

Export reads the catalog in keyset batches by id, each in a unit of work of its own, so no
connection is held while the consumer (a slow client, a file) takes the previous batch, and
memory stays at one batch whatever the catalog's size. It is not a snapshot: each batch sees
the catalog as it is then, so a book that exists throughout appears exactly once, and one added
or deleted meanwhile may or may not.

An import's body is split into lines as it arrives (``LineReader``), which stops at the line
cap; a line longer than any book (``MAX_LINE_BYTES``) is refused unparsed, and a line's
result keeps at most ``MAX_ERRORS_PER_LINE`` field errors, so what an import holds is bounded
by its caps whatever the body's shape (measured in bench/RESULTS.md).

Import validates every line, then writes the valid ones without savepoints: the ISBNs of the
batch are checked against the file (the first line with an ISBN wins) and against the catalog
in one query per 1,000, and the rows are inserted in multi-row statements with ``ON CONFLICT
DO NOTHING``, so a book with the same ISBN committed by someone else in between is reported as
that line's duplicate (its id is missing from ``RETURNING``) instead of failing the request.
Like every service, nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import Insert, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bookshelf.books import listing, service
from bookshelf.books.exceptions import (
    FieldErrors,
    ImportLineTooLong,
    ImportRejected,
    InvalidImportLine,
    IsbnAlreadyExists,
    IsbnRepeatedInImport,
    MalformedImportLine,
    TooManyImportLines,
)
from bookshelf.books.models import book_authors, book_subjects, books
from bookshelf.books.schemas import Book, BookCreate, BookFilters
from bookshelf.db.database import Connection, Database, unit_of_work
from bookshelf.db.types import utc_now
from bookshelf.exceptions import DomainError
from bookshelf.slots import Slots

EXPORT_BATCH_SIZE = 500
# ISBNs looked up per query, and rows per INSERT: well inside both databases' bind limits.
_ISBN_LOOKUP_SIZE = 1000
_INSERT_BATCH_SIZE = 500
# Lines validated between two yields to the event loop: validating 10,000 lines takes a few
# hundred milliseconds of CPU, which other requests on the worker should not wait for.
_PARSE_SLICE = 250
# The longest line an import parses: past any valid book, even with every field at its
# maximum and every character escaped (~17,000 characters, 6 bytes each as \uXXXX), and small
# enough that a line of unknown fields (one validation error each) stays cheap to validate.
MAX_LINE_BYTES = 256 * 1024
# Field errors kept in a line's result: a book has few fields, and a line of thousands of
# unknown fields must not become thousands of errors in memory and in the answer.
MAX_ERRORS_PER_LINE = 5
NDJSON_MEDIA_TYPE = "application/x-ndjson"


# --- export ---------------------------------------------------------------------------------


async def export_batches(
    database: Database,
    filters: BookFilters,
    *,
    search_timeout_ms: int,
    batch_size: int | None = None,
    after: UUID | None = None,
    search_slots: Slots | None = None,
) -> AsyncIterator[list[Book]]:
    """Every book matching ``filters`` with an id greater than ``after``, in id order, one
    batch at a time. Each batch is read in its own short unit of work, and the connection is
    back in the pool before the batch is yielded (``batch_size``: ``EXPORT_BATCH_SIZE``).
    With ``search_slots``, the query of each batch of a search (``q``) takes a slot first, as
    a search does, and gives it back before the batch is yielded."""
    size = batch_size or EXPORT_BATCH_SIZE
    slots = search_slots if filters.q else None
    while True:
        async with (
            slots.held() if slots is not None else nullcontext(),
            unit_of_work(database, write=False) as connection,
        ):
            batch = await listing.books_after(
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


_NOT_WHITESPACE = re.compile(rb"\S")
# A line is kept up to one byte past the longest parsed, enough to tell it is too long.
_KEPT_BYTES = MAX_LINE_BYTES + 1


class LineReader:
    """The non-blank lines of an NDJSON body with their 1-based line numbers (a blank line,
    such as the one after the last newline, is skipped but still counted), split as the body's
    chunks arrive (``feed``, then ``end``). The line after the ``max_lines``-th non-blank one
    raises ``TooManyImportLines`` as soon as it starts; a line longer than ``MAX_LINE_BYTES``
    is kept cut short, enough for ``parse_line`` to refuse it. Blank lines are skipped by the
    regular expression engine, not one by one: a body of newlines costs no Python loop."""

    def __init__(self, *, max_lines: int) -> None:
        self._max_lines = max_lines
        self._lines = 0  # non-blank ones, so far
        self._newlines = 0  # so far: the current line's number is one more
        self._partial: bytearray | None = None  # a non-blank line that goes on in later chunks

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        """The lines that end in ``chunk`` (none is kept here)."""
        lines: list[tuple[int, bytes]] = []
        at = 0
        while True:
            if self._partial is None:
                found = _NOT_WHITESPACE.search(chunk, at)
                if found is None:
                    self._newlines += chunk.count(b"\n", at)
                    return lines
                start = found.start()
                self._newlines += chunk.count(b"\n", at, start)
                if self._lines == self._max_lines:
                    raise TooManyImportLines(self._max_lines)
                self._lines += 1
                end = chunk.find(b"\n", start)
                if end == -1:
                    self._partial = bytearray(chunk[start : start + _KEPT_BYTES])
                    return lines
                line = chunk[start : min(end, start + _KEPT_BYTES)]
            else:
                end = chunk.find(b"\n", at)
                room = _KEPT_BYTES - len(self._partial)
                if end == -1:
                    self._partial += chunk[at : at + room]
                    return lines
                self._partial += chunk[at : at + min(room, end - at)]
                line, self._partial = bytes(self._partial), None
            self._newlines += 1
            lines.append((self._newlines, line))
            at = end + 1

    def end(self) -> list[tuple[int, bytes]]:
        """The last line, if the body does not end with a newline."""
        if self._partial is None:
            return []
        line, self._partial = bytes(self._partial), None
        return [(self._newlines + 1, line)]


def _field_errors(error: ValidationError, line: int) -> FieldErrors:
    # Only what the result shows of each error: no input (a copy of the line's value), no
    # context, no documentation link. The messages and types repeat from line to line: one
    # string each (interned) instead of one per error of every line (measured: a quarter less).
    errors = error.errors(include_url=False, include_context=False, include_input=False)
    return [
        {
            "loc": ["body", line, *item["loc"]],
            "msg": sys.intern(item["msg"]),
            "type": sys.intern(item["type"]),
        }
        for item in errors[:MAX_ERRORS_PER_LINE]
    ]


def parse_line(number: int, text: bytes) -> ImportLine | LineOutcome:
    """A line as a new book, or the outcome that says why it is not one."""
    if len(text) > MAX_LINE_BYTES:
        return LineOutcome(number, error=ImportLineTooLong(number, MAX_LINE_BYTES))
    try:
        return ImportLine(number, BookCreate.model_validate_json(text))
    except ValidationError as error:
        errors = _field_errors(error, number)
        if any(item["type"] == "json_invalid" for item in errors):
            return LineOutcome(number, error=MalformedImportLine(number))
        return LineOutcome(
            number, error=InvalidImportLine(number, errors, count=error.error_count())
        )


@dataclass
class ParsedLines:
    """Lines validated so far: the valid books, and the outcomes of the invalid lines."""

    valid: list[ImportLine] = field(default_factory=list)
    invalid: list[LineOutcome] = field(default_factory=list)


async def parse_lines(
    lines: Iterable[tuple[int, bytes]], *, into: ParsedLines | None = None
) -> ParsedLines:
    """Validate every line, adding each to ``into`` (or to new ``ParsedLines``)."""
    parsed = into if into is not None else ParsedLines()
    for index, (number, text) in enumerate(lines, start=1):
        line = parse_line(number, text)
        if isinstance(line, ImportLine):
            parsed.valid.append(line)
        else:
            parsed.invalid.append(line)
        if index % _PARSE_SLICE == 0:
            await asyncio.sleep(0)
    return parsed


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
    parsed = await parse_lines(lines)
    return await import_parsed(
        connection, parsed, actor=actor, all_or_nothing=all_or_nothing, state=state
    )


async def import_parsed(
    connection: Connection,
    parsed: ParsedLines,
    *,
    actor: UUID | None,
    all_or_nothing: bool = False,
    state: ImportState | None = None,
) -> list[LineOutcome]:
    """``import_books`` of lines already validated (``parse_lines``): the API validates each
    part of the body as it arrives, and keeps no line's text once it is a book."""
    state = state if state is not None else ImportState()
    failed = parsed.invalid
    unique, duplicates = await _without_duplicates(connection, parsed.valid, state)
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
