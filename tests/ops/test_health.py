"""Liveness and readiness: each failing check is named in the 503 problem."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.config import Settings
from bookshelf.db import migrate
from bookshelf.db.database import Database
from bookshelf.db.engine import create_engine
from tests.conftest import create_postgres_database, drop_postgres_database, make_settings
from tests.factories import assert_problem
from tests.ops.conftest import SharedRedis
from tests.ops.support import http, random_address, started

READY = "/health/ready"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


async def test_live_answers_ok(anonymous_client: httpx.AsyncClient) -> None:
    response = await anonymous_client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_database_answers_and_is_at_head(
    anonymous_client: httpx.AsyncClient,
) -> None:
    response = await anonymous_client.get(READY)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}


async def test_health_is_not_part_of_the_api_description(
    anonymous_client: httpx.AsyncClient,
) -> None:
    paths = (await anonymous_client.get("/openapi.json")).json()["paths"]
    assert [path for path in paths if "health" in path] == []


@pytest.fixture
def behind_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own (never the shared one): migrated, then taken back to 0001."""
    name = f"bookshelf_behind_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"
    else:
        url = create_postgres_database(name)
    try:
        yield url
    finally:
        if backend == "postgresql":
            drop_postgres_database(name)


async def test_not_ready_while_migrations_are_behind(behind_database_url: str) -> None:
    settings = make_settings(behind_database_url)  # auto_migrate off, as in production
    engine = create_engine(settings)
    try:
        await migrate.upgrade(engine)
        await migrate.downgrade(engine, "0001")
        assert await migrate.current_revision(engine) == "0001"
    finally:
        await engine.dispose()
    async with started(settings) as app, http(app) as client:
        response = await client.get(READY)
        live = await client.get("/health/live")
    problem = assert_problem(response, 503, "not-ready", instance=READY)
    assert problem["checks"] == {"database": "ok", "migrations": "at 0001, not at head"}
    assert "migrations" in problem["detail"]
    assert "database" not in problem["detail"]
    assert response.headers["retry-after"] == "5"
    assert live.status_code == 200  # alive, just not ready: no restart loop


async def test_unreachable_redis_fails_readiness_but_not_requests(settings: Settings) -> None:
    limited = settings.model_copy(
        update={
            "redis_url": SecretStr(UNREACHABLE_REDIS),
            "rate_limit_enabled": True,
            "rate_limit_default": "2/hour",
            "json_logs": True,
        }
    )
    async with started(limited) as app, http(app, address=random_address()) as client:
        started_at = time.monotonic()
        response = await client.get(READY)
        ready_seconds = time.monotonic() - started_at
        # The limiter fails open: more requests than the limit, all served.
        books = [await client.get("/api/v1/books") for _ in range(4)]
    problem = assert_problem(response, 503, "not-ready")
    assert set(problem["checks"]) == {"database", "migrations", "redis"}
    assert problem["checks"]["database"] == "ok"
    assert problem["checks"]["migrations"] == "ok"
    assert problem["checks"]["redis"] != "ok"
    assert "redis" in problem["detail"]
    assert ready_seconds < 3  # the probe's own timeout is 2 s
    assert [r.status_code for r in books] == [200] * 4
    assert all("ratelimit-limit" not in r.headers for r in books)


async def test_reachable_redis_is_a_passing_check(
    settings: Settings, shared_redis: SharedRedis
) -> None:
    limited = settings.model_copy(
        update={"redis_url": SecretStr(shared_redis.url), "rate_limit_enabled": True}
    )
    async with started(limited) as app, http(app) as client:
        response = await client.get(READY)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


async def test_memory_rate_limits_add_no_redis_check(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_enabled": True})
    async with started(limited) as app, http(app) as client:
        response = await client.get(READY)
    assert response.status_code == 200, response.text
    assert set(response.json()["checks"]) == {"database", "migrations"}


async def test_draining_instance_is_not_ready(settings: Settings) -> None:
    async with started(settings) as app, http(app) as client:
        assert (await client.get(READY)).status_code == 200
        app.state.draining = True
        response = await client.get(READY)
        live = await client.get("/health/live")
        books = await client.get("/api/v1/books")  # requests in flight still get answers
    problem = assert_problem(response, 503, "not-ready")
    assert problem["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "draining": "shutting down",
    }
    assert "draining" in problem["detail"]
    assert live.status_code == 200
    assert books.status_code == 200


async def test_health_probes_are_never_rate_limited(settings: Settings) -> None:
    limited = settings.model_copy(
        update={"rate_limit_enabled": True, "rate_limit_default": "1/hour"}
    )
    async with started(limited) as app, http(app) as client:
        statuses = {(await client.get(path)).status_code for path in [READY, "/health/live"] * 10}
    assert statuses == {200}


# --- bounded: the request pool never decides readiness, and probes are cheap ------------------


def pool_capacity(engine: AsyncEngine) -> int:
    pool: Any = engine.sync_engine.pool
    return int(pool.size() + pool._max_overflow)


async def test_ready_answers_while_every_request_connection_is_checked_out(
    settings: Settings,
) -> None:
    busy = settings.model_copy(
        update={
            "database_pool_size": 2,
            "database_max_overflow": 0,
            "database_pool_timeout_seconds": 0.5,
        }
    )
    async with started(busy) as app, http(app) as client:
        database: Database = app.state.database
        held = [await database.connect(write=False) for _ in range(2)]
        try:
            assert database.pool_status()[0] == 2
            started_at = time.monotonic()
            response = await client.get(READY)
            seconds = time.monotonic() - started_at
        finally:
            for connection in held:
                await database.release(connection)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok"}
    assert seconds < 1.5


class SelectOneCounter:
    """Counts the readiness database checks (``SELECT 1``) sent on the probes' pool."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, sql: str, _arguments: tuple[Any, ...]) -> None:
        if sql.strip() == "SELECT 1":
            self.count += 1


async def test_concurrent_ready_probes_check_the_database_once_per_cache_period(
    settings: Settings,
) -> None:
    cached = settings.model_copy(update={"readiness_cache_seconds": 2.0})
    database_checks = SelectOneCounter()
    async with started(cached) as app, http(app) as client:
        app.state.readiness.database.listeners.append(database_checks)
        first = await asyncio.gather(*(client.get(READY) for _ in range(50)))
        checks_in_first_period = database_checks.count
        await asyncio.sleep(2.1)
        second = await asyncio.gather(*(client.get(READY) for _ in range(50)))
    assert [r.status_code for r in first + second] == [200] * 100
    assert checks_in_first_period == 1
    assert database_checks.count == 2


@pytest.fixture
def unreachable_database_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'no-such-directory' / 'bookshelf.db'}"
    return "postgresql+asyncpg://bookshelf@127.0.0.1:1/bookshelf"


async def test_failing_database_check_is_named_without_exception_details(
    unreachable_database_url: str,
) -> None:
    async with started(make_settings(unreachable_database_url)) as app, http(app) as client:
        response = await client.get(READY)
    problem = assert_problem(response, 503, "not-ready")
    assert problem["checks"] == {"database": "unreachable", "migrations": "unknown"}
    assert problem["detail"] == "Failing: database (unreachable), migrations (unknown)."
    for leak in ("Error", "Exception", "refused", "sqlite", "asyncpg", "127.0.0.1"):
        assert leak not in response.text


# --- the heads are Alembic's: branches merged by a merge migration ----------------------------


def _script(path: Path, revision: str, down_revision: str | tuple[str, ...]) -> None:
    path.write_text(
        f'"""Revision {revision}, a no-op (test)."""\n\n'
        f"revision = {revision!r}\ndown_revision = {down_revision!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n"
    )


@pytest.fixture
def merged_scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped migrations, then two branches off their head and a migration merging them."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head is not None
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate._SCRIPTS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    _script(scripts / "versions" / "9001_branch_a.py", "9001", head)
    _script(scripts / "versions" / "9002_branch_b.py", "9002", head)
    _script(scripts / "versions" / "9003_merge.py", "9003", ("9001", "9002"))
    monkeypatch.setattr(migrate, "_SCRIPTS", scripts)
    return scripts


async def test_ready_at_the_head_of_merged_branches(
    merged_scripts: Path, behind_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrate.script_heads(merged_scripts) == ("9003",)
    # What db.migrate.HEADS would say for these scripts (a test holds it to script_heads).
    monkeypatch.setattr(migrate, "HEADS", ("9003",))
    settings = make_settings(behind_database_url)
    engine = create_engine(settings)
    try:
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == "9003"
    finally:
        await engine.dispose()
    async with started(settings) as app, http(app) as client:
        response = await client.get(READY)
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok"}
