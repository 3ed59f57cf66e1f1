"""Test harness: every API test runs once on SQLite and once on PostgreSQL.

Each pytest-xdist worker gets its own SQLite file and its own PostgreSQL database, both migrated
with Alembic (never ``create_all``) once per session; every test starts from empty tables.
PostgreSQL comes from BOOKSHELF_TEST_DATABASE_URL (default: the local server). When it cannot be
reached the PostgreSQL half is skipped with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth import service as auth_service
from bookshelf.auth.service import Auth
from bookshelf.config import Settings
from bookshelf.db import migrate
from bookshelf.db.engine import create_engine
from bookshelf.main import create_app
from bookshelf.users.schemas import Role

BACKENDS = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Children before parents, so deletes never trip a foreign key.
TABLES = (
    "reviews",
    "book_authors",
    "book_subjects",
    "books",
    "idempotency_records",
    "refresh_tokens",
    "auth_sessions",
    "users",
)
# Real Argon2id, at the lowest cost that keeps hundreds of sign-ups per run fast.
FAST_HASHING = {"password_hash_time_cost": 1, "password_hash_memory_kib": 8 * 1024}


def postgres_admin_url() -> str:
    return os.environ.get("BOOKSHELF_TEST_DATABASE_URL", DEFAULT_POSTGRES_URL)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _postgres_admin(query: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(postgres_admin_url()), timeout=5)
    try:
        await connection.execute(query)
    finally:
        await connection.close()


def create_postgres_database(name: str) -> str:
    """Create an empty database on the test server and return its URL (skip/fail if down)."""
    try:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        reason = f"PostgreSQL at {postgres_admin_url()} is not reachable: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    return make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(name: str) -> None:
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "auto_migrate": False,
        **FAST_HASHING,
        # Tests send hundreds of requests from one address; rate limits have their own tests.
        "rate_limit_enabled": False,
        **overrides,
    }
    return Settings(database_url=database_url, **values)


async def migrate_database(url: str) -> None:
    engine = create_engine(make_settings(url))
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / f"bookshelf-{_worker()}.db"
    url = f"sqlite+aiosqlite:///{path}"
    asyncio.run(migrate_database(url))
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    name = f"bookshelf_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    url = create_postgres_database(name)
    asyncio.run(migrate_database(url))
    yield url
    drop_postgres_database(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    backend_name: str = request.param
    return backend_name


async def empty_tables(url: str) -> None:
    engine = create_engine(make_settings(url))
    try:
        async with engine.begin() as connection:
            for table in TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
    finally:
        await engine.dispose()


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database of the test's backend, emptied after the test."""
    url: str = request.getfixturevalue(f"{backend}_url")
    yield url
    asyncio.run(empty_tables(url))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@dataclass(frozen=True)
class Account:
    """A user created for a test, with a valid access token."""

    id: uuid.UUID
    email: str
    password: str
    role: Role
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


AccountFactory = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_account(app: FastAPI) -> AccountFactory:
    """Create an account directly through the service and sign it in (no HTTP round trip)."""
    counter = itertools.count(1)

    async def make(role: Role = Role.READER, *, display_name: str | None = None) -> Account:
        number = next(counter)
        email = f"{role.value}-{number}-{uuid.uuid4().hex[:6]}@example.org"
        password = f"a long test passphrase {uuid.uuid4().hex}"
        auth: Auth = app.state.auth
        engine: AsyncEngine = app.state.engine
        password_hash = await auth.hasher.hash(password)
        async with engine.begin() as connection:
            user = await auth_service.create_user(
                connection,
                email=email,
                password_hash=password_hash,
                display_name=display_name or f"{role.value.title()} {number}",
                role=role,
            )
            tokens = await auth_service.start_session(connection, auth, user.id)
        return Account(user.id, email, password, role, tokens.access_token, tokens.refresh_token)

    return make


def _http_client(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


@pytest.fixture
async def admin(make_account: AccountFactory) -> Account:
    return await make_account(Role.ADMIN)


@pytest.fixture
async def client(app: FastAPI, admin: Account) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as an admin, who may do everything: for tests of what the API does
    (who may do it is tested by the security matrix, with ``anonymous_client``)."""
    async with _http_client(app, admin.headers) as http:
        yield http


@pytest.fixture
async def anonymous_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _http_client(app) as http:
        yield http


@pytest.fixture
def engine(app: FastAPI) -> AsyncEngine:
    """The app's own engine, for asserting on what is really in the database."""
    app_engine: AsyncEngine = app.state.engine
    return app_engine


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        # SQLite's BEGIN is issued by our own event hook, not by a query; don't count it.
        return sum(1 for s in self.statements if not s.startswith("BEGIN"))


@pytest.fixture
def sql_statements(engine: AsyncEngine) -> Iterator[StatementCounter]:
    """Records every SQL statement the app sends (to assert there is no N+1)."""
    counter = StatementCounter()

    def record(*args: Any) -> None:
        counter.statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield counter
    event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BOOKSHELF_* variable and no .env from the developer's machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("BOOKSHELF_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
