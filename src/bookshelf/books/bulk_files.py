"""Bulk import from, and export to, NDJSON files: the work behind ``bookshelf import`` and
``bookshelf export`` (``cli/books.py``), on the same service code as the API (``books.bulk``), with
the database directly rather than over HTTP.

Both stream: an import reads the file a batch of lines at a time, an export writes each batch
as it is read, so memory stays flat however large the file (an import remembers the ISBNs it
has seen, to report a repeated one). Progress goes to a callback, which the command line
draws as a bar on stderr.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bookshelf.books import bulk, listing
from bookshelf.books.exceptions import ImportRejected
from bookshelf.books.schemas import BookFilters
from bookshelf.db.database import Database, unit_of_work

IMPORT_BATCH_LINES = 1000

Progress = Callable[[int], None]


@dataclass
class ImportSummary:
    created: int = 0
    failures: list[bulk.LineOutcome] = field(default_factory=list)


def _batches(source: BinaryIO, size: int) -> Iterator[tuple[list[tuple[int, bytes]], int]]:
    """Numbered non-blank lines, ``size`` at a time, each batch with the bytes it spans."""
    batch: list[tuple[int, bytes]] = []
    spanned = 0
    for number, line in enumerate(source, start=1):
        spanned += len(line)
        if line.strip():
            batch.append((number, line))
        if len(batch) == size:
            yield batch, spanned
            batch, spanned = [], 0
    if batch or spanned:
        yield batch, spanned


async def import_file(
    database: Database,
    source: BinaryIO,
    *,
    all_or_nothing: bool,
    on_progress: Progress,
    batch_lines: int = IMPORT_BATCH_LINES,
) -> ImportSummary:
    """Import every line of ``source``. By default each batch commits on its own (the valid
    lines are kept whatever comes later); ``all_or_nothing`` runs the whole file in one
    transaction and rolls it back, reporting every bad line, if any line fails.
    ``on_progress`` gets the bytes read."""
    summary = ImportSummary()
    state = bulk.ImportState()
    if all_or_nothing:
        try:
            async with unit_of_work(database, write=True) as connection:
                for lines, spanned in _batches(source, batch_lines):
                    _count(
                        summary,
                        await bulk.import_books(connection, lines, actor=None, state=state),
                    )
                    on_progress(spanned)
                if summary.failures:
                    raise bulk.rejection(summary.failures)
        except ImportRejected:
            summary.created = 0
        return summary
    for lines, spanned in _batches(source, batch_lines):
        async with unit_of_work(database, write=True) as connection:
            outcomes = await bulk.import_books(connection, lines, actor=None, state=state)
        _count(summary, outcomes)
        on_progress(spanned)
    return summary


def _count(summary: ImportSummary, outcomes: list[bulk.LineOutcome]) -> None:
    for outcome in outcomes:
        if outcome.error is None:
            summary.created += 1
        else:
            summary.failures.append(outcome)


async def count_matching(database: Database, filters: BookFilters) -> int:
    async with unit_of_work(database, write=False) as connection:
        return await listing.count_books(connection, filters)


async def export_to(
    database: Database, filters: BookFilters, target: BinaryIO, *, on_progress: Progress
) -> int:
    """Write every book matching ``filters`` to ``target`` as NDJSON; the number written.
    ``on_progress`` gets the books written."""
    written = 0
    async for batch in bulk.export_batches(database, filters, search_timeout_ms=0):
        target.write(bulk.ndjson_lines(batch))
        written += len(batch)
        on_progress(len(batch))
    return written


async def export_file(
    database: Database, filters: BookFilters, path: Path, *, on_progress: Progress
) -> int:
    """``export_to`` a file, written under a temporary name and renamed when complete, so an
    interrupted export never leaves a truncated file that looks finished."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as target:
            written = await export_to(database, filters, target, on_progress=on_progress)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return written
