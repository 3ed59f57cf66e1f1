"""Running Alembic migrations from the application (CLI, start-up, tests), and reading where a
database is (the readiness check).

Alembic, with the templating libraries it brings, is several MiB of every process that imports
it (``tests/test_process_footprint.py``), so it is imported only by what migrates. What a
serving worker needs — the newest revisions and the database's — it has without it: the heads
as ``HEADS`` (below), and the database's from the ``alembic_version`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import inspect, text

from bookshelf.config import Settings
from bookshelf.db import database

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection as SyncConnection
    from sqlalchemy.ext.asyncio import AsyncEngine

_SCRIPTS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def alembic_config(scripts: Path | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(scripts or _SCRIPTS))
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


def script_heads(scripts: Path | None = None) -> tuple[str, ...]:
    """The newest migrations, as Alembic's script directory finds them: one head, unless two
    branches have not been merged yet (a merge migration is the head of both)."""
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config(scripts)).get_heads()))


@dataclass(frozen=True)
class Migration:
    revision: str
    name: str  # the script's file name without the revision: ``account takeover guards``


@dataclass(frozen=True)
class MigrationStatus:
    """Where a database is against the migrations this release ships."""

    current: tuple[str, ...]  # the database's revisions (none: never migrated)
    heads: tuple[str, ...]
    pending: tuple[Migration, ...]  # oldest first; empty when a revision is unknown
    unknown: tuple[str, ...]  # the database's revisions no script has (a newer release's)

    @property
    def state(self) -> Literal["at-head", "behind", "unknown-revision"]:
        if self.unknown:
            return "unknown-revision"
        return "behind" if self.pending else "at-head"


def migration_status(current: tuple[str, ...], scripts: Path | None = None) -> MigrationStatus:
    """Compare the database's revisions (``revisions_of``) with the scripts': what upgrading
    to the heads would apply, in order."""
    from alembic.script import ScriptDirectory

    directory = ScriptDirectory.from_config(alembic_config(scripts))
    newest_first = list(directory.walk_revisions())
    by_revision = {script.revision: script for script in newest_first}
    unknown = tuple(revision for revision in current if revision not in by_revision)
    applied: set[str] = set()
    reached = [revision for revision in current if revision in by_revision]
    while reached:  # every ancestor of the database's revisions is applied too
        revision = reached.pop()
        if revision not in applied:
            applied.add(revision)
            down = by_revision[revision].down_revision  # None, one id, or a merge's ids
            reached.extend((down,) if isinstance(down, str) else (down or ()))
    pending = (
        ()
        if unknown
        else tuple(
            Migration(script.revision, _migration_name(script.path, script.revision))
            for script in reversed(newest_first)
            if script.revision not in applied
        )
    )
    return MigrationStatus(current, tuple(sorted(directory.get_heads())), pending, unknown)


def _migration_name(path: str, revision: str) -> str:
    return Path(path).stem.removeprefix(f"{revision}_").replace("_", " ")


# The newest migrations, as Alembic's script directory finds them (``script_heads``), written
# here for the readiness check: reading them at run time would keep Alembic and every migration
# script in each serving worker's memory for good (measured in bench/RESULTS.md), or cost it a
# child interpreter. tests/test_migrations.py holds this equal to ``script_heads()``, so a new
# migration (or a merge of two branches) that does not update it fails there.
HEADS: tuple[str, ...] = ("0007",)


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


async def revisions_of(connection: database.Connection) -> tuple[str, ...]:
    """The revisions the database is at (one per head it was migrated to; none if it never
    was), read on a connection the caller already holds."""
    if not await connection.scalar(_VERSION_TABLE_EXISTS[connection.dialect]):
        return ()  # never migrated
    return tuple(sorted((await connection.execute(_VERSION)).scalars()))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision of the database behind a SQLAlchemy engine (the CLI and tests)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
