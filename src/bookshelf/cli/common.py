"""What every command shares: its settings (or a one-line error), running its work against the
database (or a one-line error: the database unreachable, or a service's refusal), and progress
bars on stderr."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bookshelf.auth.schemas import normalise_email
from bookshelf.config import ConfigurationError, Settings, load_settings
from bookshelf.db.connections import opened_database
from bookshelf.db.database import Connection, unit_of_work
from bookshelf.db.exceptions import DatabaseError
from bookshelf.exceptions import DomainError

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn


def settings_or_exit() -> Settings:
    """Settings from the environment, or a one-line error naming the bad setting and exit 2."""
    try:
        return load_settings()
    except ConfigurationError as error:
        print(f"bookshelf: {error}", file=sys.stderr)
        raise typer.Exit(2) from None


Outcome = TypeVar("Outcome")


def email_or_exit(email: str, name: str) -> str:
    """``email`` normalised as the API stores it, or a usage error (exit 2) naming ``name``."""
    try:
        return normalise_email(email)
    except ValueError as error:
        print(f"bookshelf: {name}: {error}", file=sys.stderr)
        raise typer.Exit(2) from None


def run_with_database(work: Coroutine[Any, Any, Outcome], settings: Settings) -> Outcome:
    """Run ``work`` and return what it returns. A database that cannot be reached, or a
    service's refusal (the last admin, an unknown id: its detail), is a one-line error and
    exit 1."""
    try:
        return asyncio.run(work)
    except DomainError as refused:
        print(f"bookshelf: {refused.detail}", file=sys.stderr)
        raise typer.Exit(1) from None
    except (OSError, DBAPIError, DatabaseError) as error:
        url = make_url(settings.database_url.get_secret_value())
        where = url.render_as_string(hide_password=True)
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        print(f"bookshelf: cannot use the database at {where}: {reason}", file=sys.stderr)
        raise typer.Exit(1) from None


@asynccontextmanager
async def connection_to(settings: Settings, *, write: bool) -> AsyncIterator[Connection]:
    """One unit of work (committed on success) on the database, opened for it alone."""
    async with (
        opened_database(settings) as database,
        unit_of_work(database, write=write) as connection,
    ):
        yield connection


def progress_on_stderr(*columns: ProgressColumn) -> Progress:
    """A progress bar on stderr, so an export to stdout stays clean."""
    from rich.console import Console
    from rich.progress import Progress

    return Progress(*columns, console=Console(stderr=True))
