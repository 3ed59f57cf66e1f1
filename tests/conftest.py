"""Test harness: every API test runs once on SQLite and once on PostgreSQL.

Each pytest-xdist worker gets its own SQLite file and its own PostgreSQL database, both migrated
with Alembic (never ``create_all``) once per session; every test starts from empty tables.
PostgreSQL comes from BOOKSHELF_TEST_DATABASE_URL (default: the local server). When it cannot be
reached the PostgreSQL half is skipped with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

import bookshelf.db.registry  # noqa: F401 - registers every feature's tables on the metadata
from bookshelf.config import Settings
from bookshelf.db import migrate
from bookshelf.db.connections import open_database
from bookshelf.db.database import Database
from bookshelf.db.engine import create_engine
from bookshelf.db.metadata import metadata
from bookshelf.main import build_auth
from bookshelf.users.schemas import Role
from tests.factories import Account, app_account, create_account
from tests.ops.support import http, started

BACKENDS = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Every table the app maps, children before parents so deletes never trip a foreign key; read
# from the metadata so a new table is emptied between tests without anyone listing it.
TABLES = tuple(reversed(metadata.sorted_tables))
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


async def new_postgres_database(name: str) -> str:
    """Create an empty database on the test server and return its URL (skip/fail if down)."""
    try:
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _postgres_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        reason = f"PostgreSQL at {postgres_admin_url()} is not reachable: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    return make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


async def remove_postgres_database(name: str) -> None:
    await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def throwaway_postgres_database(prefix: str) -> AsyncIterator[str]:
    """A new empty database named ``prefix`` plus a random suffix; dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = await new_postgres_database(name)
    try:
        yield url
    finally:
        await remove_postgres_database(name)


def create_postgres_database(name: str) -> str:
    """``new_postgres_database`` for code with no event loop (command-line tests)."""
    return asyncio.run(new_postgres_database(name))


def drop_postgres_database(name: str) -> None:
    asyncio.run(remove_postgres_database(name))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "auto_migrate": False,
        **FAST_HASHING,
        # Tests send hundreds of requests from one address; rate limits have their own tests.
        "rate_limit_enabled": False,
        # Mail tests start their own worker, on their own SMTP server.
        "inprocess_worker": False,
        **overrides,
    }
    return Settings(database_url=database_url, **values)


async def migrate_database(url: str) -> None:
    engine = create_engine(make_settings(url))
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


async def database_account(url: str, role: Role, *, display_name: str | None = None) -> Account:
    """``create_account`` in the database at ``url``, its tokens signed as an app built with
    ``make_settings(url)`` signs them (for a real server serving that database)."""
    settings = make_settings(url)
    database = await open_database(settings)
    try:
        return await create_account(database, build_auth(settings), role, display_name=display_name)
    finally:
        await database.close()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / f"bookshelf-{_worker()}.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate_database(url)
    return url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgresql_url() -> AsyncIterator[str]:
    name = f"bookshelf_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    url = await new_postgres_database(name)
    await migrate_database(url)
    yield url
    await remove_postgres_database(name)


@pytest.fixture
async def fresh_postgres_url() -> AsyncIterator[str]:
    """An empty PostgreSQL database that no other test uses (not migrated)."""
    async with throwaway_postgres_database("bookshelf_fresh") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    backend_name: str = request.param
    return backend_name


async def empty_tables(url: str) -> None:
    engine = create_engine(make_settings(url))
    try:
        async with engine.begin() as connection:
            for table in TABLES:
                await connection.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture
def backend_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The worker's migrated database of the test's backend (set up on first use)."""
    url: str = request.getfixturevalue(f"{backend}_url")
    return url


@pytest.fixture
async def database_url(backend_url: str) -> AsyncIterator[str]:
    """A migrated database of the test's backend, emptied after the test."""
    yield backend_url
    await empty_tables(backend_url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with started(settings) as application:
        yield application


AccountFactory = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_account(app: FastAPI) -> AccountFactory:
    """Create an account in the app's database and sign it in (no HTTP round trip)."""

    async def make(role: Role = Role.READER, *, display_name: str | None = None) -> Account:
        return await app_account(app, role, display_name=display_name)

    return make


@pytest.fixture
async def admin(make_account: AccountFactory) -> Account:
    return await make_account(Role.ADMIN)


@pytest.fixture
async def client(app: FastAPI, admin: Account) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as an admin, who may do everything: for tests of what the API does
    (who may do it is tested by the security matrix, with ``anonymous_client``)."""
    async with http(app, headers=admin.headers) as signed_in:
        yield signed_in


@pytest.fixture
async def anonymous_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http(app) as anonymous:
        yield anonymous


@pytest.fixture
async def engine(app: FastAPI) -> AsyncIterator[AsyncEngine]:
    """A SQLAlchemy engine on the app's database, apart from the app's own pool: for asserting
    on what is really in the database (through a different driver path than the service's)."""
    inspector = create_engine(app.state.settings)
    yield inspector
    await inspector.dispose()


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        # SQLite's BEGIN is issued by our own event hook, not by a query; don't count it.
        return sum(1 for s in self.statements if not s.startswith("BEGIN"))


@pytest.fixture
def sql_statements(app: FastAPI) -> Iterator[StatementCounter]:
    """Records every SQL statement the app sends (to assert there is no N+1)."""
    counter = StatementCounter()
    database: Database = app.state.database

    def record(sql: str, _arguments: tuple[Any, ...]) -> None:
        counter.statements.append(sql)

    database.listeners.append(record)
    yield counter
    database.listeners.remove(record)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BOOKSHELF_* variable and no .env from the developer's machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("BOOKSHELF_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
