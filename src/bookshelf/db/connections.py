"""One connection (and transaction) per request, and short units of work.

Services work with SQLAlchemy Core on an ``AsyncConnection`` rather than an ORM session: the ORM's
identity map and unit of work cost more per request than the whole rest of the stack (measured
by the ``bench/`` suite, see bench/RESULTS.md), and the books service needs none of it. The
transaction starts lazily on the first statement and is committed (``get_connection``) when the
handler returns, before the response is sent. Two exceptions,
each for a reason: an ``Idempotency-Key`` claim commits on its own (see
``idempotency.dependencies``), and the routes that hash passwords hold no connection while
hashing, so they open short units of work (``unit_of_work``) instead.

Round trips are the cost that matters on the read path, so on PostgreSQL a read-only request
(GET/HEAD/OPTIONS) runs in autocommit mode: its statements are the only ones sent, with no BEGIN
before and no ROLLBACK after. No read needs a shared snapshot: a read request runs one query
(after, when signed in, the one that loads the user).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bookshelf.db.engine import WRITE_INTENT

# Requests with these methods never write, so on SQLite they need no write lock.
_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def connect(engine: AsyncEngine, *, write: bool) -> AsyncConnection:
    """Check out a connection; ``write`` marks it as one that will (or may) write."""
    connection = await engine.connect()
    if write:
        await connection.execution_options(**{WRITE_INTENT: True})
    elif engine.dialect.name == "postgresql":
        # No BEGIN/ROLLBACK round trips around a read; the pool resets the level on return.
        await connection.execution_options(isolation_level="AUTOCOMMIT")
    return connection


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
    """A connection for one unit of work: committed when the block ends, rolled back (by
    closing) when it raises, and back in the pool either way. This is the one place that
    commits, save the Idempotency-Key claim and its release (``idempotency.dependencies``);
    the request's ``ConnectionDep`` is a unit of work spanning the handler."""
    connection = await connect(engine, write=write)
    try:
        yield connection
        if connection.in_transaction():
            await connection.commit()
    finally:
        await connection.close()


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


# FastAPI's stack of the exits that run when the handler returns, before the response is sent
# (where it keeps the exits of dependencies with ``yield`` and ``scope="function"``).
_HANDLER_EXITS = "fastapi_function_astack"


def _finish(connection: AsyncConnection) -> Callable[..., Awaitable[bool]]:
    async def finish(exc_type: type[BaseException] | None, *_exc_info: object) -> bool:
        try:
            if exc_type is None and connection.in_transaction():
                await connection.commit()
        finally:
            # Back to the pool (rolled back, if not committed) even when the request was
            # cancelled by its time limit.
            with anyio.CancelScope(shield=True):
                await connection.close()
        return False  # an exception goes on

    return finish


async def get_connection(request: Request) -> AsyncConnection:
    """One connection per request (FastAPI caches it), committed when the handler returns,
    before the response is sent, so a client never sees 201 for a write that then failed to
    commit; rolled back if the handler raised.

    What a dependency with ``yield`` does, for less on every request (measured in process,
    bench/RESULTS.md: ~24 µs of a ~390 µs GET instead of ~38): the commit is pushed on the
    stack of exits FastAPI keeps for such dependencies, so dependencies that took the
    connection later (``Idempotent``) run their exits first, on the open connection, as they
    would with ``yield``."""
    exits: AsyncExitStack | None = request.scope.get(_HANDLER_EXITS)
    if exits is None:
        raise RuntimeError(f"no {_HANDLER_EXITS} in the request: FastAPI changed how it runs exits")
    engine: AsyncEngine = request.app.state.engine
    connection = await connect(engine, write=request.method not in _READ_ONLY_METHODS)
    exits.push_async_exit(_finish(connection))
    return connection


ConnectionDep = Annotated[AsyncConnection, Depends(get_connection)]
# For the few routes that must not hold a connection throughout (they hash passwords, see
# auth.passwords): they open short units of work themselves with ``unit_of_work``.
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
