"""The ``bookshelf`` command: serve, migrate, seed, import, export, create-admin, purge.

With one worker, ``bookshelf serve`` is the process that serves, so what this module imports
is in every such worker's memory: what only other commands need (SQLAlchemy's async engine
and ORM for a downgrade, rich's progress bars, the seeder) is imported inside them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn
from prometheus_client import start_http_server
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import ChangeReload, Multiprocess

from bookshelf.auth import service as auth_service
from bookshelf.auth.exceptions import EmailAlreadyRegistered
from bookshelf.auth.passwords import password_problems
from bookshelf.auth.schemas import normalise_email
from bookshelf.books import bulk, bulk_files
from bookshelf.books.schemas import BookFilters
from bookshelf.config import ConfigurationError, Settings, load_settings
from bookshelf.db import migrate as migrations
from bookshelf.db.connections import opened_database
from bookshelf.db.database import unit_of_work
from bookshelf.db.exceptions import DatabaseError
from bookshelf.mail.worker import MailWorker
from bookshelf.main import build_auth, configure_process
from bookshelf.ops.metrics import MULTIPROCESS_ENV
from bookshelf.retention import PurgeReport, purge_expired
from bookshelf.users.schemas import Role

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn

# How long uvicorn's supervisor waits for a worker to answer its ping before replacing it.
WORKER_PING_TIMEOUT_SECONDS = 60

app = typer.Typer(
    help="Bookshelf, a book catalog service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


async def _upgrade(settings: Settings, revision: str) -> None:
    await migrations.upgrade_database(settings, revision)


async def _downgrade(settings: Settings, revision: str) -> None:
    from bookshelf.db.engine import create_engine

    engine = create_engine(settings)
    try:
        await migrations.downgrade(engine, revision)
    finally:
        await engine.dispose()


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _metrics_directory() -> str | None:
    """A fresh folder where the worker processes share their metrics samples (set in the
    environment they inherit), or None when one is given already; one-line error and exit 2
    when no temporary directory is writable (a read-only root filesystem without a volume)."""
    if os.environ.get(MULTIPROCESS_ENV):
        return None
    try:
        directory = tempfile.mkdtemp(prefix="bookshelf-metrics-")
    except OSError as error:
        print(
            "bookshelf: several workers share their metrics through a writable temporary "
            f"folder: mount a volume there, or set TMPDIR or {MULTIPROCESS_ENV} ({error})",
            file=sys.stderr,
        )
        raise typer.Exit(2) from None
    os.environ[MULTIPROCESS_ENV] = directory
    return directory


def _listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``, inheritable by spawned worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        print(f"bookshelf: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        raise typer.Exit(1) from None
    listener.set_inheritable(True)
    return listener


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes [default: BOOKSHELF_WORKERS, else 1]."),
    ] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Run the HTTP server (uvicorn, with uvloop and httptools).

    With BOOKSHELF_ADMIN_PORT set, the probes and metrics are served on that port of the same
    host, and only there.
    """
    settings = settings_or_exit()
    workers = workers or settings.workers
    if settings.admin_port == port:
        print("bookshelf: BOOKSHELF_ADMIN_PORT must differ from --port", file=sys.stderr)
        raise typer.Exit(2)
    if settings.should_auto_migrate:
        # Once here, before any worker starts, rather than racing in every worker's start-up.
        run_with_database(_upgrade(settings, "head"), settings)
    # uvicorn restores the SIGTERM handler it found and re-raises the signal once it has shut
    # down gracefully; with Python's default that kills the process (exit 143). This one makes
    # a drained shutdown exit 0, as orchestrators expect.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    config = uvicorn.Config(
        # Called in each process that serves (every worker): it configures that process's
        # logging, then builds the app.
        "bookshelf.main:create_app_for_process",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        loop="uvloop",
        http="httptools",
        # Logging is configured by create_app_for_process (structlog), not by uvicorn, and the
        # access log is the app's own (ops.observability).
        log_config=None,
        access_log=False,
        log_level=settings.log_level.lower(),
        # Proxy headers are handled by the app, from BOOKSHELF_TRUSTED_PROXIES.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        # The supervisor kills a worker that does not answer its ping in time, and a spawned
        # worker answers only once it has imported the app: uvicorn's 5 s made workers on a
        # busy or CPU-throttled machine die and respawn forever, never serving.
        timeout_worker_healthcheck=WORKER_PING_TIMEOUT_SECONDS,
    )
    # uvicorn.run() binds one socket; the admin port is a second one, served by the same
    # process(es), so the sockets are bound here and handed to uvicorn's supervisors.
    sockets = [_listener(host, port)]
    if settings.admin_port is not None:
        sockets.append(_listener(host, settings.admin_port))
    # Workers are separate processes: they share metrics through files in this folder.
    metrics_directory = _metrics_directory() if config.workers > 1 else None
    server = uvicorn.Server(config)
    try:
        if config.should_reload:
            ChangeReload(config, target=server.run, sockets=sockets).run()
        elif config.workers > 1:
            Multiprocess(config, sockets=sockets).run()
        else:
            server.run(sockets=sockets)
    finally:
        for listener in sockets:
            listener.close()
        if metrics_directory is not None:
            shutil.rmtree(metrics_directory, ignore_errors=True)
    if not server.started and not config.should_reload and config.workers == 1:
        raise typer.Exit(STARTUP_FAILURE)


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    downgrade: Annotated[bool, typer.Option(help="Go down to the revision instead.")] = False,
) -> None:
    """Apply database migrations (up to the latest by default)."""
    settings = settings_or_exit()
    if downgrade:
        run_with_database(_downgrade(settings, revision), settings)
    else:
        run_with_database(_upgrade(settings, revision), settings)
    typer.echo(f"database at revision {revision}")


@app.command()
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
            with _progress(*columns, TimeRemainingColumn()) as progress:
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


@app.command()
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


def _progress(*columns: ProgressColumn) -> Progress:
    """A progress bar on stderr, so an export to stdout stays clean."""
    from rich.console import Console
    from rich.progress import Progress

    return Progress(*columns, console=Console(stderr=True))


def _line_problem(outcome: bulk.LineOutcome) -> str:
    """``line 3: <detail>``, then one indented line per bad field."""
    error = outcome.error
    lines = [f"line {outcome.line}: {error.detail if error else 'created'}"]
    for item in getattr(error, "errors", None) or []:
        location = item["loc"] if isinstance(item["loc"], list) else []
        where = ".".join(str(part) for part in location[2:]) or "line"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


@app.command("import")
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
            with source, _progress(*columns, TimeRemainingColumn()) as progress:
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


@app.command("export")
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
            with _progress(*columns, TimeRemainingColumn()) as progress:
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


@app.command()
def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics (the mail_* series) on this port."),
    ] = None,
) -> None:
    """Deliver the mail outbox (SMTP, or the log without BOOKSHELF_SMTP_URL) until SIGTERM,
    which finishes the message in hand. Any number may run: each message goes to one."""
    settings = settings_or_exit()
    configure_process(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if settings.should_auto_migrate:
            await migrations.upgrade_database(settings)
        async with opened_database(settings) as database:
            await MailWorker.from_settings(database, settings).run(stop)

    if metrics_port is not None:
        start_http_server(metrics_port, addr="0.0.0.0")  # noqa: S104 - probes and scrapes
    run_with_database(run(), settings)


def _read_new_password() -> str:
    """From an interactive prompt (typed twice, hidden), or one line of piped stdin."""
    if sys.stdin.isatty():
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\r\n")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email (also the login).")],
    display_name: Annotated[str | None, typer.Option(help="Name shown on reviews.")] = None,
    promote: Annotated[
        bool,
        typer.Option(
            help="If the email already has an account, make it an admin: its password becomes "
            "the one given here and it is signed out everywhere."
        ),
    ] = False,
) -> None:
    """Create an admin (password from a prompt, or from stdin when piped).

    An email that already has an account is refused and nothing changes, unless --promote
    says to take that account over.
    """
    settings = settings_or_exit()
    try:
        normalised = normalise_email(email)
    except ValueError as error:
        print(f"bookshelf: --email: {error}", file=sys.stderr)
        raise typer.Exit(2) from None
    password = _read_new_password()
    problems = password_problems(password, email=normalised)
    if problems:
        print(f"bookshelf: password {'; '.join(problems)}", file=sys.stderr)
        raise typer.Exit(2)
    outcome: list[str] = []

    async def run() -> None:
        # Hashed before the transaction opens: no lock or connection is held through it.
        password_hash = await build_auth(settings).hasher.hash(password)
        async with opened_database(settings) as database:
            if settings.should_auto_migrate:
                await migrations.upgrade_database(settings)
            async with unit_of_work(database, write=True) as connection:
                if promote and await auth_service.promote_to_admin(
                    connection, email=normalised, password_hash=password_hash
                ):
                    outcome.append("promoted")
                    return
                try:
                    await auth_service.create_user(
                        connection,
                        email=normalised,
                        password_hash=password_hash,
                        display_name=display_name,
                        role=Role.ADMIN,
                        email_verified=True,
                    )
                except EmailAlreadyRegistered:
                    outcome.append("taken")
                    return
                outcome.append("created")

    run_with_database(run(), settings)
    if outcome[0] == "taken":
        print(
            f"bookshelf: {normalised} already has an account; nothing was changed (with "
            "--promote it becomes an admin with the password given here, signed out "
            "everywhere)",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    typer.echo(f"{normalised} is an admin ({outcome[0]})")


def main() -> None:
    app()
