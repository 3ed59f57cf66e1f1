"""The ``bookshelf`` command: serve, migrate, seed, import, export, create-admin, purge, worker,
and the operator's groups ``users`` and ``mail``.

One module per use case (``serving``, ``database``, ``books``, ``accounts``, ``users``,
``mail``); the commands are registered here, in the order ``bookshelf --help`` lists them.

With one worker, ``bookshelf serve`` is the process that serves, so what this package imports
is in every such worker's memory: what only other commands need (SQLAlchemy's async engine
and ORM for a downgrade, rich's progress bars, the seeder) is imported inside them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bookshelf import __version__
from bookshelf.cli import accounts, books, database, mail, serving, users

app = typer.Typer(
    help="Bookshelf, a book catalog service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"bookshelf {__version__}")
        raise typer.Exit()


@app.callback()
def bookshelf(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Bookshelf, a book catalog service."""


app.command()(serving.serve)
app.command()(database.migrate)
app.command()(database.seed)
app.command()(database.purge)
app.command("import")(books.import_books)
app.command("export")(books.export_books)
app.command()(serving.worker)
app.command("create-admin")(accounts.create_admin)
app.add_typer(users.app, name="users")
app.add_typer(mail.app, name="mail")


def main() -> None:
    app()
