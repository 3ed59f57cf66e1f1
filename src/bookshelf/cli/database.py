"""The database's commands: ``migrate``, ``seed`` and ``purge``."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated

import typer

from bookshelf.cli.common import (
    connection_to,
    progress_on_stderr,
    run_with_database,
    settings_or_exit,
)
from bookshelf.cli.output import JsonOption, print_json, print_table
from bookshelf.config import Settings
from bookshelf.db import migrate as migrations
from bookshelf.db.connections import opened_database
from bookshelf.retention import PurgeReport, purge_expired

# ``migrate --status``'s exit status, for scripts (0: at the head; 1 and 2 are every command's
# database and usage errors).
STATUS_EXIT = {"at-head": 0, "behind": 3, "unknown-revision": 4}


async def _downgrade(settings: Settings, revision: str) -> None:
    from bookshelf.db.engine import create_engine

    engine = create_engine(settings)
    try:
        await migrations.downgrade(engine, revision)
    finally:
        await engine.dispose()


async def _revisions(settings: Settings) -> tuple[str, ...]:
    async with connection_to(settings, write=False) as connection:
        return await migrations.revisions_of(connection)


def _print_status(status: migrations.MigrationStatus, json_output: bool) -> None:
    if json_output:
        print_json({"state": status.state, **asdict(status)})
        return
    pending = f"{len(status.pending)} migration(s) to apply" if status.pending else None
    print_table(
        None,
        [
            ("database", " ".join(status.current) or "never migrated"),
            ("head", " ".join(status.heads)),
            ("state", status.state + (f": {pending}" if pending else "")),
        ],
    )
    if status.pending:
        typer.echo("")
        print_table(("pending", "name"), [(item.revision, item.name) for item in status.pending])
    if status.unknown:
        print(
            f"bookshelf: the database is at {' '.join(status.unknown)}, which this release "
            "does not know: a newer release migrated it",
            file=sys.stderr,
        )


def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    downgrade: Annotated[bool, typer.Option(help="Go down to the revision instead.")] = False,
    status: Annotated[
        bool,
        typer.Option(
            "--status",
            help="Change nothing: show the database's revision, the head and the pending "
            "migrations. Exit 0 at the head, 3 behind it, 4 at a revision this release does "
            "not know.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Apply database migrations (up to the latest by default), or show them (--status)."""
    settings = settings_or_exit()
    if status:
        if downgrade or revision != "head":
            print("bookshelf: --status takes no revision and no --downgrade", file=sys.stderr)
            raise typer.Exit(2)
        found = migrations.migration_status(run_with_database(_revisions(settings), settings))
        _print_status(found, json_output)
        raise typer.Exit(STATUS_EXIT[found.state])
    if json_output:
        print("bookshelf: --json goes with --status", file=sys.stderr)
        raise typer.Exit(2)
    if downgrade:
        run_with_database(_downgrade(settings, revision), settings)
    else:
        run_with_database(migrations.upgrade_database(settings, revision), settings)
    typer.echo(f"database at revision {revision}")


def seed(
    books: Annotated[int, typer.Option(min=1, help="How many books to add.")] = 1000,
    random_seed: Annotated[int, typer.Option("--seed", help="Random seed (reproducible).")] = 42,
    batch_size: Annotated[int, typer.Option(min=100, max=100_000)] = 5000,
) -> None:
    """Add realistic fake books (PostgreSQL loads a million in a few minutes)."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from bookshelf.books.seed import seed_books

    settings = settings_or_exit()

    async def run() -> None:
        async with opened_database(settings) as database:
            await migrations.upgrade_database(settings)
            columns = (TextColumn("seeding books"), BarColumn(), MofNCompleteColumn())
            with progress_on_stderr(*columns, TimeRemainingColumn()) as progress:
                task = progress.add_task("books", total=books)
                await seed_books(
                    database,
                    books,
                    seed=random_seed,
                    batch_size=batch_size,
                    on_progress=lambda done: progress.advance(task, done),
                )

    run_with_database(run(), settings)
    typer.echo(f"added {books} books")


def purge() -> None:
    """Delete expired sign-in sessions, refresh tokens and idempotency records now (each
    instance also does it every BOOKSHELF_PURGE_INTERVAL_SECONDS)."""
    settings = settings_or_exit()
    reports: list[PurgeReport] = []

    async def run() -> None:
        async with opened_database(settings) as database:
            reports.append(await purge_expired(database))

    run_with_database(run(), settings)
    for table, count in reports[0].deleted.items():
        typer.echo(f"{table}: {count} expired row(s) deleted")
