"""The process's engine: pool sizing, per-dialect tuning (SQLite WAL and write locks, PostgreSQL
statement timeouts and PgBouncer), and the separate one-connection engine of the readiness checks.

Connections are not pinged on checkout: a connection broken by a database restart fails its
request with a 503, and SQLAlchemy then recycles every connection of the pool.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from pydantic_core import from_json
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bookshelf.config import Settings

# Execution option marking a connection that will (or may) write: see ``connections.connect``.
WRITE_INTENT = "bookshelf_write_intent"


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
        immediate = connection.get_execution_options().get(WRITE_INTENT, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
