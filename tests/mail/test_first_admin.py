"""The first admin without a shell: BOOKSHELF_FIRST_ADMIN_EMAIL/_PASSWORD create or promote a
verified admin at start, idempotently, also when several instances start at once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bookshelf.auth.bootstrap import ensure_first_admin, log_how_to_get_an_admin
from bookshelf.config import Environment, Settings
from bookshelf.db.connections import open_database, opened_database
from bookshelf.db.engine import create_engine
from bookshelf.main import build_auth
from bookshelf.users.models import users
from tests.factories import PASSPHRASE, login
from tests.ops.support import http, started
from tests.servers import running_servers

EMAIL = "root@example.org"


def with_first_admin(settings: Settings, email: str = "Root@Example.org") -> Settings:
    return settings.model_copy(
        update={"first_admin_email": email, "first_admin_password": SecretStr(PASSPHRASE)}
    )


async def admins(settings: Settings) -> list[tuple[str, str, bool, bool]]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(users.c.email, users.c.role, users.c.is_active, users.c.email_verified)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        await engine.dispose()


async def test_a_start_creates_the_verified_admin_who_signs_in(settings: Settings) -> None:
    configured = with_first_admin(settings)
    async with started(configured) as app, http(app) as client:
        signed_in = await login(client, EMAIL, PASSPHRASE)
    assert signed_in.status_code == 200, signed_in.text
    assert await admins(settings) == [(EMAIL, "admin", True, True)]


async def test_concurrent_starts_make_one_admin(settings: Settings) -> None:
    """Eight instances starting at once, each with its own engine: one account, an admin."""
    configured = with_first_admin(settings)
    databases = [await open_database(configured) for _ in range(8)]
    hasher = build_auth(configured).hasher
    try:
        outcomes = await asyncio.gather(
            *(ensure_first_admin(database, configured, hasher) for database in databases)
        )
        again = await ensure_first_admin(databases[0], configured, hasher)
    finally:
        for database in databases:
            await database.close()
    assert outcomes.count("created") == 1
    assert set(outcomes) <= {"created", "promoted"}
    assert again == "promoted"
    assert await admins(settings) == [(EMAIL, "admin", True, True)]


async def test_an_existing_reader_is_promoted_and_verified(settings: Settings) -> None:
    async with started(settings) as app, http(app) as client:
        await client.post(
            "/api/v1/auth/register",
            json={"email": EMAIL, "password": "the reader's own passphrase"},
        )
    async with started(with_first_admin(settings)):
        pass
    assert await admins(settings) == [(EMAIL, "admin", True, True)]


def test_the_email_and_the_password_go_together(settings: Settings) -> None:
    with pytest.raises(ValueError, match="go together"):
        Settings.model_validate({**settings.model_dump(), "first_admin_email": EMAIL})


async def test_a_weak_first_admin_password_stops_the_start(settings: Settings) -> None:
    weak = settings.model_copy(
        update={"first_admin_email": EMAIL, "first_admin_password": SecretStr("password1234")}
    )
    with pytest.raises(ValueError, match="common"):
        async with started(weak):
            pass


async def test_development_without_an_admin_says_how_to_get_one(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    development = settings.model_copy(update={"environment": Environment.DEVELOPMENT})
    async with opened_database(development) as database:
        with caplog.at_level(logging.WARNING, logger="bookshelf"):
            await log_how_to_get_an_admin(database, development)
    assert any("bookshelf create-admin --email" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_three_servers_started_together_make_one_admin(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """Real ``bookshelf serve`` processes, started at the same moment on one database."""
    with running_servers(
        3,
        database_url,
        tmp_path,
        first_admin_email=EMAIL,
        first_admin_password=PASSPHRASE,
    ) as servers:
        logs = [server.log() for server in servers]
        signed_in = httpx.post(
            f"{servers[0].base_url}/api/v1/auth/token",
            data={"username": EMAIL, "password": PASSPHRASE},
            timeout=10,
        )
    assert signed_in.status_code == 200, signed_in.text
    assert sum("(created)" in log for log in logs) == 1, logs
    assert sum("(promoted)" in log for log in logs) == 2, logs
    assert asyncio.run(admins(settings)) == [(EMAIL, "admin", True, True)]
