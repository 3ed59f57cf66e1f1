"""The first admin without a shell: BOOKSHELF_FIRST_ADMIN_EMAIL/_PASSWORD create a verified
admin at start when the address is free, also when several instances start at once, and never
change an account that already has the address."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from bookshelf.auth.bootstrap import (
    FirstAdmin,
    ensure_first_admin,
    log_how_to_get_an_admin,
    prepare_accounts,
)
from bookshelf.config import ConfigurationError, Environment, Settings
from bookshelf.db.connections import open_database, opened_database
from bookshelf.db.engine import create_engine
from bookshelf.main import build_auth
from bookshelf.users.models import users
from tests.factories import PASSPHRASE, login
from tests.ops.support import http, started
from tests.servers import running_servers

EMAIL = "root@example.org"
STRANGER_PASSWORD = "the stranger's own passphrase"


def with_first_admin(settings: Settings, email: str = "Root@Example.org") -> Settings:
    return settings.model_copy(
        update={"first_admin_email": email, "first_admin_password": SecretStr(PASSPHRASE)}
    )


async def accounts(settings: Settings) -> list[tuple[str, str, bool, bool, str]]:
    """(email, role, active, verified, password hash) of every account."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(
                    users.c.email,
                    users.c.role,
                    users.c.is_active,
                    users.c.email_verified,
                    users.c.password_hash,
                )
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        await engine.dispose()


async def admins(settings: Settings) -> list[tuple[str, str, bool, bool]]:
    return [row[:4] for row in await accounts(settings)]


async def stranger_registers(settings: Settings) -> None:
    async with started(settings) as app, http(app) as client:
        registered = await client.post(
            "/api/v1/auth/register", json={"email": EMAIL, "password": STRANGER_PASSWORD}
        )
    assert registered.status_code == 202, registered.text


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
    assert outcomes.count(FirstAdmin.CREATED) == 1
    assert outcomes.count(FirstAdmin.EXISTS) == 7
    assert again is FirstAdmin.EXISTS
    assert await admins(settings) == [(EMAIL, "admin", True, True)]


async def test_a_strangers_account_at_the_address_is_left_alone_and_said_so(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone registered the address while registration was open: the start neither promotes
    nor verifies the account, nor sets its password, and says so at error level."""
    await stranger_registers(settings)
    before = await accounts(settings)

    with caplog.at_level(logging.INFO, logger="bookshelf"):
        async with started(with_first_admin(settings)) as app, http(app) as client:
            configured = await login(client, EMAIL, PASSPHRASE)

    # Role, activity, verification and password hash: all as the stranger left them.
    assert await accounts(settings) == before
    assert before[0][1:4] == ("reader", True, False)
    assert configured.status_code == 400
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "BOOKSHELF_FIRST_ADMIN_EMAIL names an account that already exists and is not an admin; "
        "it was left unchanged. Choose a free address, or make that account an admin with "
        "`bookshelf create-admin --promote`, then remove the setting"
    ]


async def test_production_refuses_to_start_when_the_address_is_someone_elses(
    settings: Settings,
) -> None:
    await stranger_registers(settings)
    before = await accounts(settings)
    production = with_first_admin(settings).model_copy(
        update={"environment": Environment.PRODUCTION}
    )
    async with opened_database(production) as database:
        with pytest.raises(ConfigurationError, match="already exists and is not an admin"):
            await prepare_accounts(database, production, build_auth(production).hasher)
    assert await accounts(settings) == before


async def test_a_deactivated_first_admin_stays_deactivated_across_restarts(
    settings: Settings,
) -> None:
    configured = with_first_admin(settings)
    async with started(configured):
        pass
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(update(users).values(is_active=False))
    finally:
        await engine.dispose()
    before = await accounts(settings)

    async with started(configured) as app, http(app) as client:
        refused = await login(client, EMAIL, PASSPHRASE)

    assert refused.status_code == 400
    assert await accounts(settings) == before
    assert before[0][1:3] == ("admin", False)


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
    assert sum("(exists)" in log for log in logs) == 2, logs
    assert asyncio.run(admins(settings)) == [(EMAIL, "admin", True, True)]
