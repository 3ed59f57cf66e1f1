"""The process's database, and one connection (and transaction) per request.

Services run SQLAlchemy Core statements on a ``db.database.Connection`` (no ORM session: the
ORM's identity map and unit of work cost more per request than the whole rest of the stack,
measured by the ``bench/`` suite, and the service needs none of it). A request that may write
gets a connection whose transaction begins with its first statement and is committed
(``get_connection``) when the handler returns, before the response is sent. Two exceptions, each
for a reason: an ``Idempotency-Key`` claim commits on its own (see ``idempotency.dependencies``),
and the routes that hash passwords hold no connection while hashing, so they open short units
of work (``db.database.unit_of_work``) instead.

Round trips are the cost that matters on the read path, so a read-only request (GET/HEAD/
OPTIONS) runs in autocommit: its statements are the only ones sent, with no BEGIN before and
no ROLLBACK after. No read needs a shared snapshot: a read request runs one query (after, when
signed in, the one that loads the user).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request

from bookshelf.config import Settings
from bookshelf.db.database import Connection, Database
from bookshelf.db.routing import ReadRouter
from bookshelf.dependencies import Exit, with_exit

# Requests with these methods never write.
_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def open_database(settings: Settings, *, pool_size: int | None = None) -> Database:
    """The pool for ``settings.database_url`` (PostgreSQL or SQLite); it connects lazily."""
    if settings.database_echo:
        # Each statement's SQL (never its parameters) through the application's log handler.
        logging.getLogger("bookshelf.db").setLevel(logging.INFO)
    if settings.is_sqlite:
        from bookshelf.db.sqlite import SqliteDatabase

        return await SqliteDatabase.open(settings, pool_size=pool_size)
    from bookshelf.db.postgres import PostgresDatabase

    return await PostgresDatabase.open(settings, pool_size=pool_size)


@asynccontextmanager
async def opened_database(settings: Settings) -> AsyncIterator[Database]:
    """A pool for one command (the CLI, the worker), closed when the block ends."""
    database = await open_database(settings)
    try:
        yield database
    finally:
        await database.close()


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _finish(database: Database, connection: Connection) -> Exit:
    async def finish(exc_type: type[BaseException] | None, *_exc_info: object) -> None:
        try:
            if exc_type is None:
                await connection.commit()
        finally:
            # Back to the pool (rolled back, if not committed) even when the request was
            # cancelled by its time limit: ``release`` is shielded.
            await database.release(connection)

    return finish


@with_exit
async def get_connection(request: Request) -> tuple[Connection, Exit]:
    """One connection per request (FastAPI caches it), committed when the handler returns,
    before the response is sent, so a client never sees 201 for a write that then failed to
    commit; rolled back if the handler raised. Dependencies that took the connection later
    (``Idempotent``) run their exits first, on the open connection."""
    write = request.method not in _READ_ONLY_METHODS
    router: ReadRouter | None = request.app.state.read_router
    if write or router is None:
        database: Database = request.app.state.database
        connection = await database.connect(write=write)
    else:  # replicas configured: which server reads (db.routing)
        database, connection = await router.connect_for_read(request.scope)
    return connection, _finish(database, connection)


# ``scope="function"``: the commit runs before the response is sent (``with_exit``).
ConnectionDep = Annotated[Connection, Depends(get_connection, scope="function")]
# For the few routes that must not hold a connection throughout (they hash passwords, see
# auth.passwords): they open short units of work themselves with ``unit_of_work``.
DatabaseDep = Annotated[Database, Depends(get_database)]
