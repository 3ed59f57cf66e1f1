"""The catalog's files: ``import`` and ``export`` (NDJSON, straight to the database, on the
API's own bulk code: ``books.bulk_files``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from bookshelf.books import bulk, bulk_files
from bookshelf.books.schemas import BookFilters
from bookshelf.cli.common import progress_on_stderr, run_with_database, settings_or_exit
from bookshelf.db import migrate as migrations
from bookshelf.db.connections import opened_database


def _line_problem(outcome: bulk.LineOutcome) -> str:
    """``line 3: <detail>``, then one indented line per bad field."""
    error = outcome.error
    lines = [f"line {outcome.line}: {error.detail if error else 'created'}"]
    for item in getattr(error, "errors", None) or []:
        location = item["loc"] if isinstance(item["loc"], list) else []
        where = ".".join(str(part) for part in location[2:]) or "line"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def import_books(
    file: Annotated[
        Path, typer.Argument(help="NDJSON file: one book (as POST /books takes it) per line.")
    ],
    all_or_nothing: Annotated[
        bool,
        typer.Option(
            "--all-or-nothing", help="Import nothing if any line fails (one transaction)."
        ),
    ] = False,
) -> None:
    """Add the books of an NDJSON file to the catalog (straight to the database).

    Each line is checked as POST /books checks a body. By default the valid lines are kept and
    each bad one is reported on stderr; exit status 1 when any line failed.
    """
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn

    settings = settings_or_exit()
    try:
        source = file.open("rb")
    except OSError as error:
        print(f"bookshelf: cannot read {file}: {error.strerror}", file=sys.stderr)
        raise typer.Exit(2) from None
    summaries: list[bulk_files.ImportSummary] = []

    async def run() -> None:
        async with opened_database(settings) as database:
            if settings.should_auto_migrate:
                await migrations.upgrade_database(settings)
            columns = (TextColumn("importing"), BarColumn(), DownloadColumn())
            with source, progress_on_stderr(*columns, TimeRemainingColumn()) as progress:
                task = progress.add_task("bytes", total=os.fstat(source.fileno()).st_size)
                summaries.append(
                    await bulk_files.import_file(
                        database,
                        source,
                        all_or_nothing=all_or_nothing,
                        on_progress=lambda done: progress.advance(task, done),
                    )
                )

    run_with_database(run(), settings)
    summary = summaries[0]
    for failure in summary.failures:
        print(_line_problem(failure), file=sys.stderr)
    if summary.failures and all_or_nothing:
        print(
            f"bookshelf: {len(summary.failures)} line(s) failed: nothing imported",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    typer.echo(f"imported {summary.created} books; {len(summary.failures)} line(s) failed")
    if summary.failures:
        raise typer.Exit(1)


def export_books(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write [default: standard output]."),
    ] = None,
    q: Annotated[str | None, typer.Option(help="Search text.")] = None,
    author: Annotated[str | None, typer.Option(help="Books by this author.")] = None,
    subject: Annotated[str | None, typer.Option(help="Books with this subject.")] = None,
    language: Annotated[str | None, typer.Option(help="ISO 639-1 code.")] = None,
    isbn: Annotated[str | None, typer.Option(help="ISBN-10 or ISBN-13.")] = None,
    published_from: Annotated[str | None, typer.Option(help="YYYY[-MM[-DD]].")] = None,
    published_to: Annotated[str | None, typer.Option(help="YYYY[-MM[-DD]].")] = None,
) -> None:
    """Write the books (all, or those matching the filters of GET /books) as NDJSON, one per
    line, in id order, as GET /books/export does."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    settings = settings_or_exit()
    given = {
        "q": q,
        "author": author,
        "subject": subject,
        "language": language,
        "isbn": isbn,
        "published_from": published_from,
        "published_to": published_to,
    }
    try:
        filters = BookFilters(**{name: value for name, value in given.items() if value})
    except ValidationError as error:
        for item in error.errors():
            name = str(item["loc"][0]).replace("_", "-") if item["loc"] else "filters"
            print(f"bookshelf: --{name}: {item['msg']}", file=sys.stderr)
        raise typer.Exit(2) from None
    written: list[int] = []

    async def run() -> None:
        async with opened_database(settings) as database:
            total = await bulk_files.count_matching(database, filters)
            columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn())
            with progress_on_stderr(*columns, TimeRemainingColumn()) as progress:
                task = progress.add_task("books", total=total)

                def advance(done: int) -> None:
                    progress.advance(task, done)

                if output is None:
                    count = await bulk_files.export_to(
                        database, filters, sys.stdout.buffer, on_progress=advance
                    )
                else:
                    count = await bulk_files.export_file(
                        database, filters, output, on_progress=advance
                    )
                written.append(count)

    run_with_database(run(), settings)
    print(f"exported {written[0]} books", file=sys.stderr)
