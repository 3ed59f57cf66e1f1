"""PostgreSQL on an asyncpg pool.

Each statement is one round trip: asyncpg prepares a statement shape once per connection and
then only binds and executes it. Behind PgBouncer in transaction mode
(``BOOKSHELF_DATABASE_STATEMENT_CACHE=false``) nothing is kept prepared across transactions
(``statement_cache_size=0``): asyncpg then prepares unnamed statements, which a transaction
pooler hands over with the transaction.

Connections are pooled by ``db.pool`` (see there why not asyncpg's pool). Returning one sends
nothing (asyncpg's pool would send ``RESET ALL`` and friends, a round trip per checkout): the
service never changes session state, and an open transaction is rolled back before release.
When a statement finds the connection lost (a database restart), every pooled connection is
expired, so one request fails with a 503 rather than one per pooled connection, and the next
checkouts connect anew.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import asyncpg
from pydantic_core import from_json, to_json
from sqlalchemy.engine import make_url

from bookshelf.config import Settings
from bookshelf.db import tuning
from bookshelf.db.database import Connection, Database
from bookshelf.db.exceptions import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityViolation,
    StatementCancelled,
)
from bookshelf.db.pool import Pool
from bookshelf.db.positions import COMMIT_POSITION
from bookshelf.db.statements import Bound, Statements
from bookshelf.fastpath.statements import statements_for

# SQLSTATEs that mean "try again later": server shutting down or starting, too many
# connections; the connection-exception class (08xxx) is matched by its prefix.
_TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_QUERY_CANCELED = "57014"
# Where the primary's WAL is written up to: after a commit, a position that includes it.
_CURRENT_POSITION = "SELECT pg_current_wal_lsn()::text"
# Prepared statement shapes kept per connection (the service has a few dozen).
_STATEMENT_CACHE_SIZE = 256


def translate(error: BaseException) -> DatabaseError | None:
    """The service's error for a driver's, or None for errors that are not the database's."""
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return IntegrityViolation(f"{error.constraint_name or ''}: {error}")
    if isinstance(error, asyncpg.PostgresError):
        code = error.sqlstate or ""
        if code == _QUERY_CANCELED:
            return StatementCancelled(str(error))
        if code in _TRANSIENT_SQLSTATES or code.startswith("08"):
            return DatabaseUnavailable(str(error))
        return DatabaseError(f"{type(error).__name__}: {error}")
    # InternalClientError: the protocol's state broke with the connection (seen when the
    # server terminates it mid-exchange); the connection is not to be used again.
    if isinstance(
        error,
        asyncpg.InterfaceError | asyncpg.InternalClientError | OSError | ConnectionError,
    ):
        return DatabaseUnavailable(f"{type(error).__name__}: {error}")
    return None


def _lost_connection(error: DatabaseError) -> bool:
    return isinstance(error, DatabaseUnavailable) and not isinstance(error, StatementCancelled)


# jsonb's binary form is a version byte (1) and the JSON text.
_JSONB_VERSION = b"\x01"


def _jsonb_bytes(value: Any) -> bytes:
    return _JSONB_VERSION + to_json(value)


def _from_jsonb_bytes(data: bytes) -> Any:
    return from_json(data[1:])


async def _setup_connection(connection: asyncpg.Connection) -> None:
    # JSON both ways in the driver, with pydantic-core's encoder and parser. Binary codecs,
    # which COPY (the seed) needs too.
    await connection.set_type_codec(
        "jsonb",
        encoder=_jsonb_bytes,
        decoder=_from_jsonb_bytes,
        schema="pg_catalog",
        format="binary",
    )
    await connection.set_type_codec(
        "json", encoder=to_json, decoder=from_json, schema="pg_catalog", format="binary"
    )


class PostgresConnection(Connection):
    dialect = "postgresql"

    def __init__(
        self,
        database: PostgresDatabase,
        raw: asyncpg.Connection,
        *,
        write: bool,
    ) -> None:
        super().__init__(database, write=write)
        self._database = database
        self.raw = raw
        self._in_transaction = False

    async def _send(self, script: str) -> None:
        """Statements without parameters, in one round trip (the simple query protocol)."""
        try:
            await self.raw.execute(script)
        except Exception as error:
            raise await self._database.translated(error) from error

    async def _begin(self, settings: Mapping[str, str] | None = None) -> None:
        # BEGIN and the transaction's settings travel together: one round trip.
        await self._send("BEGIN" + (";" + _set_local(settings) if settings else ""))
        self._in_transaction = True

    async def _run(self, bound: Bound) -> tuple[Sequence[Sequence[Any]], int]:
        if self.write and not self._in_transaction:
            await self._begin()
        try:
            if bound.statement.returns_rows:
                return await self.raw.fetch(bound.sql, *bound.arguments), 0
            status = await self.raw.execute(bound.sql, *bound.arguments)
        except Exception as error:
            raise await self._database.translated(error) from error
        # "UPDATE 3", "DELETE 0", "INSERT 0 1": the count is the last word.
        count = status.rsplit(" ", 1)[-1]
        return [], int(count) if count.isdigit() else 0

    async def _run_many(self, bound: Sequence[Bound]) -> None:
        if self.write and not self._in_transaction:
            await self._begin()
        try:
            await self.raw.executemany(bound[0].sql, [item.arguments for item in bound])
        except Exception as error:
            raise await self._database.translated(error) from error

    async def copy_records(
        self, table: str, columns: Sequence[str], records: Sequence[Sequence[Any]]
    ) -> None:
        """``COPY`` rows into ``table``: the fastest way in for many rows (the seed)."""
        if self.write and not self._in_transaction:
            await self._begin()
        try:
            await self.raw.copy_records_to_table(table, columns=columns, records=records)
        except Exception as error:
            raise await self._database.translated(error) from error

    def in_transaction(self) -> bool:
        return self._in_transaction

    async def _end(self, statement: str) -> None:
        if self._in_transaction:
            self._in_transaction = False
            await self._send(statement)

    async def commit(self) -> None:
        if not self._in_transaction:
            return
        await self._end("COMMIT")
        holder = COMMIT_POSITION.get()
        # With replicas, a write tells its client where to read from (db.routing).
        if holder is not None and self.write:
            try:
                holder[0] = await self.fetch_value(_CURRENT_POSITION)
            except DatabaseError:  # committed all the same; the writer is still remembered
                holder[0] = ""

    async def fetch_value(self, query: str) -> Any:
        """The first value of a parameterless query (the replica checks and waits)."""
        row = await self.fetch_row(query)
        return None if row is None else row[0]

    async def fetch_row(self, query: str) -> Any:
        try:
            return await self.raw.fetchrow(query)
        except Exception as error:
            raise await self._database.translated(error) from error

    async def rollback(self) -> None:
        await self._end("ROLLBACK")

    async def _open_transaction(self, local_settings: Mapping[str, str] | None) -> None:
        await self._begin(local_settings)

    async def _join_transaction(self, local_settings: Mapping[str, str] | None) -> None:
        if local_settings:
            await self._send(_set_local(local_settings))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _set_local(settings: Mapping[str, str]) -> str:
    """``set_config(name, value, true)`` for each setting: they end with the transaction."""
    calls = ", ".join(
        f"set_config({_literal(name)}, {_literal(value)}, true)" for name, value in settings.items()
    )
    return f"SELECT {calls}"


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(
        self, pool: Pool[asyncpg.Connection], *, echo: bool, statements: Statements
    ) -> None:
        super().__init__()
        self.pool = pool
        self.statements = statements
        self.echo = echo

    @classmethod
    async def open(cls, settings: Settings, *, pool_size: int | None = None) -> PostgresDatabase:
        """A pool that connects lazily (the service starts while the database is down)."""
        server_settings = tuning.postgres_server_settings(settings)
        dsn = driver_dsn(settings.database_url.get_secret_value())
        cache_size = _STATEMENT_CACHE_SIZE if settings.database_statement_cache else 0
        timeout = settings.database_pool_timeout_seconds

        async def open_connection() -> asyncpg.Connection:
            connection = await asyncpg.connect(
                dsn,
                timeout=timeout,
                statement_cache_size=cache_size,
                server_settings=server_settings or None,
            )
            try:
                await _setup_connection(connection)
            except BaseException:
                connection.terminate()
                raise
            return connection

        async def close_connection(connection: asyncpg.Connection) -> None:
            if connection.is_closed():
                return
            try:
                await asyncio.wait_for(connection.close(), timeout=1)
            except Exception:
                connection.terminate()

        pool: Pool[asyncpg.Connection] = Pool(
            size=pool_size or settings.database_pool_size + settings.database_max_overflow,
            timeout=timeout,
            open_connection=open_connection,
            close_connection=close_connection,
        )
        statements = statements_for("postgresql", fast_path=settings.fast_path)
        return cls(pool, echo=settings.database_echo, statements=statements)

    async def translated(self, error: BaseException) -> BaseException:
        """The service's error for ``error``; a lost connection expires the whole pool."""
        translated = translate(error)
        if translated is None:
            return error
        if _lost_connection(translated):
            await self.pool.expire()
        return translated

    async def connect(self, *, write: bool) -> PostgresConnection:
        try:
            raw = await self.pool.acquire()
        except DatabaseUnavailable:
            raise
        except Exception as error:
            raise await self.translated(error) from error
        return PostgresConnection(self, raw, write=write)

    async def release(self, connection: Connection) -> None:
        assert isinstance(connection, PostgresConnection)  # noqa: S101
        raw = connection.raw
        # The common case (a read, or a committed write) awaits nothing, so it needs no shield:
        # entering and leaving a cancel scope costs a GET by id (measured: bench/RESULTS.md).
        if not connection.in_transaction() and _reusable(raw) and self.pool.keep(raw):
            return
        with anyio.CancelScope(shield=True):
            # A lost connection cannot roll back: it is closed instead of kept.
            with contextlib.suppress(DatabaseError):
                await connection.rollback()
            await self.pool.release(raw, reusable=_reusable(raw))

    async def close(self) -> None:
        await self.pool.close()

    def pool_status(self) -> tuple[int, int]:
        return self.pool.checked_out, self.pool.open_count


def _reusable(raw: asyncpg.Connection) -> bool:
    """Open, and not left in a transaction (one the caller could not end)."""
    return not raw.is_closed() and not raw.is_in_transaction()


def driver_dsn(url: str) -> str:
    """asyncpg's DSN for a ``postgresql+asyncpg://`` URL (SQLAlchemy's own options dropped)."""
    parsed = make_url(url).set(drivername="postgresql")
    query = {
        key: value
        for key, value in parsed.query.items()
        if key not in {"prepared_statement_cache_size", "async_fallback"}
    }
    return parsed.set(query=query).render_as_string(hide_password=False)
