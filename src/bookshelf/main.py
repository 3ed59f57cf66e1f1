"""The app factory (metadata, error handling, docs and feature routers under ``/api/v1``), and
the factory a serving process runs once, which sets up the process before building its app."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from types import FrameType
from typing import Any

from fastapi import APIRouter, FastAPI

from bookshelf import __version__
from bookshelf.api import operation_id
from bookshelf.auth.account_routes import router as users_router
from bookshelf.auth.bootstrap import prepare_accounts
from bookshelf.auth.passwords import PasswordHasher
from bookshelf.auth.recovery_routes import router as recovery_router
from bookshelf.auth.routes import router as auth_router
from bookshelf.auth.service import Auth
from bookshelf.auth.tokens import TokenSigner
from bookshelf.books.dependencies import add_bulk_slots
from bookshelf.books.exceptions import SearchBusy
from bookshelf.books.routes import router as books_router
from bookshelf.books.schemas import LANGUAGE_CODE_SCHEMA
from bookshelf.config import Environment, Settings, get_settings
from bookshelf.db import migrate
from bookshelf.db.connections import open_database
from bookshelf.db.routing import read_router, start_replicas
from bookshelf.docs import install_docs
from bookshelf.fastpath import routes as fast_routes
from bookshelf.fastpath.middleware import BookshelfAPI
from bookshelf.mail.worker import InProcessWorker, MailWorker
from bookshelf.middleware import install_middleware
from bookshelf.ops.health import Readiness
from bookshelf.ops.health import router as health_router
from bookshelf.ops.logging import configure_logging
from bookshelf.ops.metrics import install_metrics
from bookshelf.ops.ratelimit import RateLimits
from bookshelf.ops.tracing import trace_ids_processor, tracing_available
from bookshelf.problems import (
    FieldError,
    Problem,
    install_problem_handlers,
)
from bookshelf.retention import purge_periodically
from bookshelf.reviews.routes import router as reviews_router
from bookshelf.slots import Slots
from bookshelf.web.install import PAGE_ROUTERS, install_web
from bookshelf.web.security import Cookies

DESCRIPTION = """
A book catalog: list, search, create, update and delete books.

* **Lists** are keyset-paginated: follow `next_cursor` (or the `Link: rel="next"` header).
* **Writes** are safe to retry (`Idempotency-Key` on POST) and safe under concurrency
  (`If-Match` with the book's `ETag` on PATCH and DELETE; a stale one is 412).
* **Errors** are RFC 9457 `application/problem+json` documents.
"""

TAGS_METADATA = [
    {"name": "books", "description": "The catalog: anyone reads; editors write; admins delete."},
    {"name": "reviews", "description": "Ratings and reviews: one per user and book."},
    {
        "name": "auth",
        "description": "Accounts and sign-in: OAuth2 password flow with JWT access tokens "
        "and rotating refresh tokens. Use **Authorize** to try the protected endpoints.",
    },
    {"name": "users", "description": "Your account; admins manage every account."},
]

logger = logging.getLogger("bookshelf")


def _drain_on_sigterm(app: FastAPI) -> Callable[[], None]:
    """Chain onto the server's SIGTERM handler: readiness turns 503 the moment draining
    starts, while the server finishes the requests in flight. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # handlers belong to the main thread (a test's server is not)
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        app.state.draining = True
        logger.info("SIGTERM: draining in-flight requests")
        if callable(previous):
            previous(signum, frame)
        else:  # no server handler (SIG_DFL/SIG_IGN): let the signal do what it did before
            signal.signal(signal.SIGTERM, previous)
            signal.raise_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)

    def undo() -> None:
        signal.signal(signal.SIGTERM, previous)

    return undo


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.draining = False
    undo_sigterm_hook = _drain_on_sigterm(app)
    if settings.jwt_secret is None:
        logger.warning("BOOKSHELF_JWT_SECRET is not set: tokens use the development secret")
    if settings.should_auto_migrate:
        await migrate.upgrade_database(settings)
    database = await open_database(settings)
    if app.state.tracer_provider is not None:
        database.tracer = app.state.tracer_provider.get_tracer("bookshelf.db")
    app.state.database = database
    stop_replicas = await start_replicas(app.state.read_router, database, settings)
    await prepare_accounts(database, settings, app.state.auth.hasher)
    mail_worker = (
        InProcessWorker(
            MailWorker.from_settings(database, settings),
            grace_seconds=settings.graceful_shutdown_seconds,
        )
        if settings.runs_inprocess_worker
        else None
    )
    purging = (
        asyncio.create_task(purge_periodically(database, settings.purge_interval_seconds))
        if settings.purge_interval_seconds
        else None
    )
    # Readiness must not depend on whether request traffic has every pooled connection
    # checked out: its checks run single-flight on a one-connection pool of their own.
    probe_database = await open_database(settings, pool_size=1)
    app.state.readiness = Readiness(
        probe_database, app.state.rate_limits, cache_seconds=settings.readiness_cache_seconds
    )
    # What exists now (modules, the app, its routes and schemas: ~140k objects) lives as long
    # as the process. Frozen, it is skipped by the cyclic collector, whose full collections
    # otherwise take ~50 ms each under load and stall every request in flight (bench/ p99).
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()  # collectable again (tests start and stop many apps in one process)
        if mail_worker is not None:
            await mail_worker.close()
        if purging is not None:
            purging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purging
        undo_sigterm_hook()
        app.state.auth.hasher.close()
        await probe_database.close()
        if stop_replicas is not None:
            await stop_replicas()
        await database.close()
        app.state.access_log.flush()


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """The generated schema, plus the Problem schema that error responses refer to."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (FieldError, Problem):
            schemas[model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        schemas["LanguageCode"] = LANGUAGE_CODE_SCHEMA
        # Validation errors are problems too; FastAPI's own 422 schemas are never served.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema


def add_routes(app: FastAPI, router: APIRouter, settings: Settings) -> None:
    """Add a router's routes to the app. On the fast path they are copied onto the app's own
    list (``fastpath.routes``): a request is matched against one flat list instead of walking
    an included router (measured in bench/), and each route reads its parameters on a plan;
    otherwise the router is included, as plain FastAPI does."""
    if settings.fast_path:
        fast_routes.add_routes(app, router)
    else:
        app.include_router(router)


def build_auth(settings: Settings) -> Auth:
    return Auth(
        signer=TokenSigner(
            settings.jwt_secrets,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_seconds=settings.jwt_leeway_seconds,
        ),
        hasher=PasswordHasher(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
            concurrency=settings.password_hash_concurrency,
            max_wait_seconds=settings.password_hash_wait_seconds,
        ),
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
    )


def create_app(settings: Settings) -> FastAPI:
    """Build the application from ``settings`` and wire its parts together. It changes nothing
    outside the app it returns (logging is the process's: ``configure_process``), so tests
    build as many as they like; what must run while the app serves is in ``lifespan``."""
    # Plain FastAPI with the fast path off: its own middleware stack (``fastpath.middleware``).
    app_class = BookshelfAPI if settings.fast_path else FastAPI
    app = app_class(
        title="Bookshelf",
        summary="A production-ready book catalog API.",
        description=DESCRIPTION,
        version=__version__,
        contact={
            "name": "Bookshelf maintainers",
            "url": "https://bookshelf.invalid/support",
        },
        license_info={"name": "MIT", "identifier": "MIT"},
        openapi_tags=TAGS_METADATA,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,
        redoc_url=None,
        # Tracing is OpenTelemetry's instrumentation, opt-in (``ops.tracing``); FastAPI's own
        # would otherwise check for a configured provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.auth = build_auth(settings)
    app.state.draining = False
    app.state.rate_limits = RateLimits(settings) if settings.rate_limit_enabled else None
    app.state.search_slots = Slots(
        settings.search_slots,
        work="search",
        max_wait_seconds=settings.search_wait_seconds,
        busy=SearchBusy,
    )
    add_bulk_slots(app.state, settings)
    cookies = Cookies.from_settings(settings)
    # Reads to replicas (docs/replicas.md); None without them, or on SQLite.
    app.state.read_router = read_router(
        settings, session_cookie=cookies.session, secure_cookies=cookies.secure
    )
    install_problem_handlers(app)
    # The web app's error pages wrap the problem handlers, and render the pipeline's refusals.
    install_middleware(app, settings, pages=install_web(app, settings))
    # Routes are matched in order, one pattern at a time: the API's come before the web app's
    # pages, the probes, the metrics and the docs, the most requested features first (a
    # signed-in client's /users/me was compared with 21 routes before its own). No two
    # features' paths overlap, so their order changes nothing else; the docs group operations
    # by tag, in TAGS_METADATA's order.
    for router in (books_router, users_router, reviews_router, auth_router, recovery_router):
        add_routes(app, router, settings)
    for router in PAGE_ROUTERS:
        add_routes(app, router, settings)
    add_routes(app, health_router, settings)
    if settings.metrics_path:
        install_metrics(app, settings.metrics_path)
    install_docs(app)
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    return app


def configure_process(settings: Settings) -> None:
    """What a process that serves sets up once, before it builds its app: its logging."""
    configure_logging(
        settings.log_level,
        json=settings.use_json_logs,
        # The README's tour: in development the log shows the mails' links.
        show_mail_links=settings.environment is Environment.DEVELOPMENT,
        # Tracing on: the trace and span ids on every line written inside a span.
        context=(trace_ids_processor(),) if settings.tracing and tracing_available() else (),
    )


def create_app_for_process() -> FastAPI:
    """uvicorn's factory (``bookshelf serve``): called once in each process that serves, so
    every worker reads the settings and configures its own logging before building its app."""
    settings = get_settings()
    configure_process(settings)
    return create_app(settings)


__all__ = [
    "configure_process",
    "create_app",
    "create_app_for_process",
]
