"""SQLAlchemy's engine, for what runs on it: Alembic's migrations (and the tests, which read
the database through it, apart from the service's own data layer in ``db.database``).

It is created for a migration and disposed of after it; a serving process never holds one.
Its connections are set up as the data layer's are (``db.tuning``: pragmas on SQLite, the
statement timeout on PostgreSQL, JSON text); PgBouncer's constraints on prepared statements are
its own (SQLAlchemy's asyncpg dialect prepares and names them).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic_core import from_json
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bookshelf.config import Settings
from bookshelf.db import tuning


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine on ``settings.database_url`` (dispose of it when done)."""
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url.get_secret_value(),
            hide_parameters=True,
            connect_args={"timeout": tuning.SQLITE_BUSY_TIMEOUT_SECONDS},
            json_serializer=tuning.json_text,
            json_deserializer=from_json,
        )
        _tune_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if server_settings := tuning.postgres_server_settings(settings):
        connect_args["server_settings"] = server_settings
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
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_args=connect_args,
        json_deserializer=from_json,
    )


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def _tune_sqlite(engine: AsyncEngine) -> None:
    """The data layer's pragmas (``db.tuning``); pysqlite's own transaction handling off, so
    SQLAlchemy's BEGIN is the one that runs."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in tuning.SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")
