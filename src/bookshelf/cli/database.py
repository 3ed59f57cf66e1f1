"""The database's commands: ``migrate``, ``seed`` and ``purge``."""

from __future__ import annotations

from typing import Annotated

import typer

from bookshelf.cli.common import progress_on_stderr, run_with_database, settings_or_exit
from bookshelf.config import Settings
from bookshelf.db import migrate as migrations
from bookshelf.db.connections import opened_database
from bookshelf.retention import PurgeReport, purge_expired


async def _downgrade(settings: Settings, revision: str) -> None:
    from bookshelf.db.engine import create_engine

    engine = create_engine(settings)
    try:
        await migrations.downgrade(engine, revision)
    finally:
        await engine.dispose()


def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    downgrade: Annotated[bool, typer.Option(help="Go down to the revision instead.")] = False,
) -> None:
    """Apply database migrations (up to the latest by default)."""
    settings = settings_or_exit()
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
