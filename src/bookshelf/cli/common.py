"""What every command shares: its settings (or a one-line error), running its work against the
database (or a one-line error), and progress bars on stderr."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bookshelf.config import ConfigurationError, Settings, load_settings
from bookshelf.db.exceptions import DatabaseError

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn


def settings_or_exit() -> Settings:
    """Settings from the environment, or a one-line error naming the bad setting and exit 2."""
    try:
        return load_settings()
    except ConfigurationError as error:
        print(f"bookshelf: {error}", file=sys.stderr)
        raise typer.Exit(2) from None


def run_with_database(work: Coroutine[Any, Any, None], settings: Settings) -> None:
    """Run ``work``; a database that cannot be reached is a one-line error and exit 1."""
    try:
        asyncio.run(work)
    except (OSError, DBAPIError, DatabaseError) as error:
        url = make_url(settings.database_url.get_secret_value())
        where = url.render_as_string(hide_password=True)
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        print(f"bookshelf: cannot use the database at {where}: {reason}", file=sys.stderr)
        raise typer.Exit(1) from None


def progress_on_stderr(*columns: ProgressColumn) -> Progress:
    """A progress bar on stderr, so an export to stdout stays clean."""
    from rich.console import Console
    from rich.progress import Progress

    return Progress(*columns, console=Console(stderr=True))
