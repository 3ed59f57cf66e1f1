"""The app factory: metadata, error handling, docs and feature routers under ``/api/v1``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from bookshelf import __version__, migrate
from bookshelf.auth.passwords import PasswordHasher
from bookshelf.auth.routes import router as auth_router
from bookshelf.auth.service import Auth
from bookshelf.auth.tokens import TokenSigner
from bookshelf.books.routes import router as books_router
from bookshelf.config import Settings, get_settings
from bookshelf.db import create_engine
from bookshelf.docs import install_docs
from bookshelf.middleware import BodySizeLimit
from bookshelf.problems import (
    PROBLEM_MEDIA_TYPE,
    FieldError,
    Problem,
    install_problem_handlers,
)
from bookshelf.request_id import RequestIdMiddleware, configure_logging
from bookshelf.reviews.routes import router as reviews_router
from bookshelf.users.routes import router as users_router

API_VERSION = "v1"
API_PREFIX = f"/api/{API_VERSION}"

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


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    configure_logging(settings.log_level)
    if settings.jwt_secret is None:
        logger.warning("BOOKSHELF_JWT_SECRET is not set: tokens use the development secret")
    engine = create_engine(settings)
    if settings.should_auto_migrate:
        await migrate.upgrade(engine)
    app.state.engine = engine
    try:
        yield
    finally:
        await engine.dispose()


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """The generated schema, plus the Problem schema that error responses refer to."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (FieldError, Problem):
            schemas[model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        # Validation errors are problems too; FastAPI's own 422 schemas are never served.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema


def build_auth(settings: Settings) -> Auth:
    return Auth(
        signer=TokenSigner(
            settings.jwt_secrets, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        ),
        hasher=PasswordHasher(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
        ),
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; with no settings, they are read from the environment."""
    settings = settings or get_settings()
    app = FastAPI(
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
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.auth = build_auth(settings)
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    # Added last, so it runs first: even a 413 from the body limit carries the request id.
    app.add_middleware(RequestIdMiddleware)
    install_docs(app)
    for router in (books_router, reviews_router, auth_router, users_router):
        app.include_router(router, prefix=API_PREFIX)
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    return app


__all__ = ["API_PREFIX", "PROBLEM_MEDIA_TYPE", "create_app"]
