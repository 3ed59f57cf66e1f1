"""Running Alembic migrations from the application (CLI, start-up, tests), and reading where a
database is (the readiness check).

Alembic, with the templating and highlighting libraries it brings, is ~12 MiB of every process
that imports it, so it is imported only by what migrates. What a serving worker needs — the
newest revision and the database's — is read without it: the head from the scripts' own
``revision``/``down_revision`` lines, once per process (a test holds it equal to Alembic's
answer), and the database's from the ``alembic_version`` table.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from bookshelf.config import Settings
from bookshelf.db import database

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection as SyncConnection
    from sqlalchemy.ext.asyncio import AsyncEngine

_SCRIPTS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
_DECLARATION = re.compile(
    r'^(?P<name>revision|down_revision)\s*(?::[^=]+)?=\s*(?:None|"(?P<value>[^"]+)")\s*$',
    re.MULTILINE,
)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def _run(connection: SyncConnection, action: str, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_run, "upgrade", revision)


async def upgrade_database(settings: Settings, revision: str = "head") -> None:
    """Migrate the database of ``settings`` on an engine of its own, closed afterwards: Alembic
    runs on SQLAlchemy's engine, which the serving path does not use (``db.database``)."""
    from bookshelf.db.engine import create_engine

    engine = create_engine(settings)
    try:
        await upgrade(engine, revision)
    finally:
        await engine.dispose()


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_run, "downgrade", revision)


@functools.cache
def head_revision() -> str | None:
    """The newest migration: the one revision no script names as its ``down_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted((_SCRIPTS / "versions").glob("*.py")):
        for declaration in _DECLARATION.finditer(script.read_text(encoding="utf-8")):
            value = declaration["value"]
            if value is not None:
                (revisions if declaration["name"] == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {sorted(heads)}")
    return heads.pop() if heads else None


def _current(connection: SyncConnection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None  # never migrated
    version: str | None = connection.execute(
        text("SELECT version_num FROM alembic_version")
    ).scalar_one_or_none()
    return version


_VERSION_TABLE_EXISTS = {
    "postgresql": text("SELECT to_regclass('alembic_version') IS NOT NULL"),
    "sqlite": text(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ),
}
_VERSION = text("SELECT version_num FROM alembic_version")


async def revision_of(connection: database.Connection) -> str | None:
    """The revision the database is at, read on a connection the caller already holds."""
    if not await connection.scalar(_VERSION_TABLE_EXISTS[connection.dialect]):
        return None  # never migrated
    version: str | None = await connection.scalar(_VERSION)
    return version


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision of the database behind a SQLAlchemy engine (the CLI and tests)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
