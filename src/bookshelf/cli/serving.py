"""The commands that run until they are stopped: ``serve`` (the HTTP server) and ``worker``
(the mail outbox's delivery).

With one worker, ``bookshelf serve`` is the process that serves: what the command-line package
imports is in its memory (see ``bookshelf.cli``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import ChangeReload, Multiprocess

from bookshelf.cli.common import run_with_database, settings_or_exit
from bookshelf.db import migrate as migrations
from bookshelf.db.connections import opened_database
from bookshelf.mail.liveness import serve_probes
from bookshelf.mail.worker import MailWorker
from bookshelf.main import configure_process
from bookshelf.ops.metrics import MULTIPROCESS_ENV, publish_build_info
from bookshelf.ops.processes import SUPERVISOR, register_serving_process

# How long uvicorn's supervisor waits for a worker to answer its ping before replacing it.
WORKER_PING_TIMEOUT_SECONDS = 60


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
    # This process becomes the workers' supervisor: its memory is part of the group's.
    register_serving_process(directory, SUPERVISOR)
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
        run_with_database(migrations.upgrade_database(settings, "head"), settings)
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


def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve Prometheus metrics (the mail_* series) at /metrics and the delivery "
            "loop's liveness at /health/live on this port."
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="The address the metrics port listens on (every one by default).")
    ] = "0.0.0.0",  # noqa: S104 - probes and scrapes come from outside the pod, by its address
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
            mail_worker = MailWorker.from_settings(database, settings)
            if metrics_port is not None:
                serve_probes(mail_worker.heartbeat, metrics_host, metrics_port)
            await mail_worker.run(stop)

    publish_build_info()
    run_with_database(run(), settings)
