"""The database: one async engine per process, one connection (and transaction) per request.

Services work with SQLAlchemy Core on an ``AsyncConnection`` rather than an ORM session: the ORM's
identity map and unit of work cost more per request than the whole rest of the stack (measured
by the ``bench/`` suite, see bench/RESULTS.md), and the books service needs none of it. The
transaction starts lazily on the first statement and is committed by ``get_connection`` before
the response is sent. Two exceptions, each for a reason: an ``Idempotency-Key`` claim commits
on its own (see ``idempotency.dependencies``), and the routes that hash passwords hold no
connection while hashing, so they open short units of work (``unit_of_work``) instead.

Round trips are the cost that matters on the read path, so on PostgreSQL a read-only request
(GET/HEAD/OPTIONS) runs in autocommit mode: its statements are the only ones sent, with no BEGIN
before and no ROLLBACK after. No read needs a shared snapshot: a read request runs one query
(after, when signed in, the one that loads the user). Connections are not pinged on checkout
either: a connection broken by a database restart fails its request with a 503, and SQLAlchemy
then recycles every connection of the pool.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic_core import from_json
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bookshelf.config import Settings

# Requests with these methods never write, so on SQLite they need no write lock.
_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WRITE_INTENT = "bookshelf_write_intent"


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the process's engine with the pool and per-dialect tuning from settings."""
    return _engine(
        settings,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        # No ping per checkout (it is a round trip per request): a broken connection fails one
        # request with a 503, and the disconnect makes SQLAlchemy recycle the whole pool.
        pool_pre_ping=False,
    )


def create_probe_engine(settings: Settings) -> AsyncEngine:
    """A one-connection engine for the readiness checks, apart from the request pool.

    Readiness must not depend on whether request traffic has every pooled connection checked
    out. The checks run single-flight, so one connection is all they need (one more per worker
    process in the connection budget). It is pinged before use: a probe runs about once a
    second, and after a database restart it should report the database, not a dead socket.
    """
    return _engine(settings, pool_size=1, max_overflow=0, pool_timeout=1.0, pool_pre_ping=True)


def _engine(
    settings: Settings,
    *,
    pool_size: int,
    max_overflow: int,
    pool_timeout: float,
    pool_pre_ping: bool,
) -> AsyncEngine:
    if settings.database_echo:
        # Through the application's log handler (not SQLAlchemy's own echo handler), so the
        # lines are formatted and redacted like every other.
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url.get_secret_value(),
            hide_parameters=True,
            connect_args={"timeout": 30},
            # Unescaped UTF-8, so full-text search sees "Molière", not "Moli\\u00e8re".
            json_serializer=_json_without_ascii_escapes,
            json_deserializer=from_json,
        )
        _tune_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    # Sent as a startup parameter, which PgBouncer refuses: behind it (statement cache off),
    # set statement_timeout on the database role instead (see the README).
    if settings.database_statement_timeout_ms and settings.database_statement_cache:
        # A runaway query is cancelled by the server instead of holding a connection forever.
        connect_args["server_settings"] = {
            "statement_timeout": str(settings.database_statement_timeout_ms)
        }
    url = make_url(settings.database_url.get_secret_value())
    if not settings.database_statement_cache:
        # PgBouncer in transaction mode hands each transaction to any server connection, so
        # prepared statements must be neither cached nor reused under a fixed name.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
    return create_async_engine(
        url,
        # Statement parameters are user data (emails, password hashes): never in a log line
        # or an error message.
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=pool_pre_ping,
        connect_args=connect_args,
        # pydantic-core's parser: two JSON columns per book row, 42 per page of 20, were
        # ~15% of a list request's CPU with the standard library's json.loads (bench/).
        json_deserializer=from_json,
    )


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def _json_without_ascii_escapes(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and write transactions that take the write lock up front.

    pysqlite's own transaction handling is turned off so SQLAlchemy's BEGIN is the one that runs.
    A request that may write begins with ``BEGIN IMMEDIATE``: a deferred transaction that reads and
    then writes can fail with SQLITE_BUSY when another writer got in between, and a busy timeout
    cannot fix that. Read-only requests keep a plain ``BEGIN`` and never block on writers (WAL).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE_INTENT, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


async def connect(engine: AsyncEngine, *, write: bool) -> AsyncConnection:
    """Check out a connection; ``write`` marks it as one that will (or may) write."""
    connection = await engine.connect()
    if write:
        await connection.execution_options(**{_WRITE_INTENT: True})
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


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """One connection per request; commit after the handler, roll back if it raised."""
    engine: AsyncEngine = request.app.state.engine
    async with unit_of_work(engine, write=request.method not in _READ_ONLY_METHODS) as connection:
        yield connection


# scope="function": the commit runs when the handler returns, before the response is sent, so a
# client never sees 201 for a write that then failed to commit.
ConnectionDep = Annotated[AsyncConnection, Depends(get_connection, scope="function")]
# For the few routes that must not hold a connection throughout (they hash passwords, see
# auth.passwords): they open short units of work themselves with ``unit_of_work``.
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
