"""The ``bookshelf`` command: serve, migrate, seed, import, export, create-admin, purge, worker.

One module per use case (``serving``, ``database``, ``books``, ``accounts``); the commands are
registered here, in the order ``bookshelf --help`` lists them.

With one worker, ``bookshelf serve`` is the process that serves, so what this package imports
is in every such worker's memory: what only other commands need (SQLAlchemy's async engine
and ORM for a downgrade, rich's progress bars, the seeder) is imported inside them.
"""

from __future__ import annotations

import typer

from bookshelf.cli import accounts, books, database, serving

app = typer.Typer(
    help="Bookshelf, a book catalog service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command()(serving.serve)
app.command()(database.migrate)
app.command()(database.seed)
app.command()(database.purge)
app.command("import")(books.import_books)
app.command("export")(books.export_books)
app.command()(serving.worker)
app.command("create-admin")(accounts.create_admin)


def main() -> None:
    app()
