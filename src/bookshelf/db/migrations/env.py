"""Alembic environment: runs on a connection handed in by ``bookshelf.db.migrate``, or (for the
``alembic`` command line) on one made from ``sqlalchemy.url`` / ``BOOKSHELF_DATABASE_URL``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bookshelf.config import load_settings
from bookshelf.db import registry
from bookshelf.db.engine import create_engine

target_metadata = registry.metadata


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    engine = create_engine(load_settings())
    async with engine.begin() as connection:
        await connection.run_sync(_run_on)
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    _run_on(given)
elif context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
else:
    asyncio.run(_run_from_settings())
