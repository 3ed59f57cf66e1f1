"""SQLite (the embedded default) on aiosqlite connections, pooled here.

Connections are set up as ``db.tuning`` says (WAL, so readers never wait for the writer;
foreign keys on; a busy timeout for the write lock), as SQLAlchemy's engine sets up its own. A
connection that will (or may) write begins with ``BEGIN IMMEDIATE``: a deferred transaction
that reads and then writes can fail with SQLITE_BUSY when another writer got in between, and
a busy timeout cannot fix that. Reads run in autocommit, each statement on its own snapshot.

aiosqlite runs each connection's calls on a thread of its own; the pool (``db.pool``) keeps
up to ``pool_size`` of them open between requests (opening a connection is a file open plus the
pragmas below).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite
import anyio
from sqlalchemy.engine import make_url

from bookshelf.config import Settings
from bookshelf.db import tuning
from bookshelf.db.database import Connection, Database
from bookshelf.db.exceptions import DatabaseError, DatabaseUnavailable, IntegrityViolation
from bookshelf.db.pool import Pool
from bookshelf.db.statements import Bound, Statements
from bookshelf.fastpath.statements import statements_for

# The pragmas in one script: one call on the connection's thread.
_PRAGMAS = "".join(f"{pragma};" for pragma in tuning.SQLITE_PRAGMAS)


def translate(error: BaseException) -> DatabaseError | None:
    if isinstance(error, sqlite3.IntegrityError):
        return IntegrityViolation(str(error))
    if isinstance(error, sqlite3.OperationalError):
        message = str(error)
        if "locked" in message or "busy" in message or "unable to open" in message:
            return DatabaseUnavailable(message)
        return DatabaseError(f"OperationalError: {message}")
    if isinstance(error, sqlite3.Error):
        return DatabaseError(f"{type(error).__name__}: {error}")
    return None


def _translated(error: BaseException) -> BaseException:
    return translate(error) or error


class SqliteConnection(Connection):
    dialect = "sqlite"

    def __init__(self, database: SqliteDatabase, raw: aiosqlite.Connection, *, write: bool):
        super().__init__(database, write=write)
        self.raw = raw
        self._in_transaction = False

    async def _begin(self, sql: str) -> None:
        await self.raw.execute_fetchall(sql)
        self._in_transaction = True

    async def _run(self, bound: Bound) -> tuple[Sequence[Sequence[Any]], int]:
        try:
            if self.write and not self._in_transaction:
                await self._begin("BEGIN IMMEDIATE")
            if bound.statement.returns_rows:
                rows = await self.raw.execute_fetchall(bound.sql, bound.arguments)
                return rows, 0  # type: ignore[return-value]
            async with self.raw.execute(bound.sql, bound.arguments) as cursor:
                return [], cursor.rowcount
        except Exception as error:
            raise _translated(error) from error

    async def _run_many(self, bound: Sequence[Bound]) -> None:
        try:
            if self.write and not self._in_transaction:
                await self._begin("BEGIN IMMEDIATE")
            await self.raw.executemany(bound[0].sql, [item.arguments for item in bound])
        except Exception as error:
            raise _translated(error) from error

    def in_transaction(self) -> bool:
        return self._in_transaction

    async def _end(self, sql: str) -> None:
        if not self._in_transaction:
            return
        self._in_transaction = False
        try:
            await self.raw.execute_fetchall(sql)
        except Exception as error:
            raise _translated(error) from error

    async def commit(self) -> None:
        await self._end("COMMIT")

    async def rollback(self) -> None:
        await self._end("ROLLBACK")

    async def _join_transaction(self, local_settings: Mapping[str, str] | None) -> None:
        """SQLite has no settings of the kind: a search is bounded by its candidate cap."""

    async def _open_transaction(self, local_settings: Mapping[str, str] | None) -> None:
        try:
            await self._begin("BEGIN IMMEDIATE" if self.write else "BEGIN")
        except Exception as error:
            raise _translated(error) from error


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        pool_size: int,
        acquire_timeout: float,
        echo: bool,
        statements: Statements,
    ):
        super().__init__()
        self.path = path
        self.statements = statements
        self.echo = echo
        self.pool: Pool[aiosqlite.Connection] = Pool(
            size=pool_size,
            timeout=acquire_timeout,
            open_connection=self._new_connection,
            close_connection=_close,
        )

    @classmethod
    async def open(cls, settings: Settings, *, pool_size: int | None = None) -> SqliteDatabase:
        return cls(
            sqlite_path(settings.database_url.get_secret_value()),
            pool_size=pool_size or settings.database_pool_size + settings.database_max_overflow,
            acquire_timeout=settings.database_pool_timeout_seconds,
            echo=settings.database_echo,
            statements=statements_for("sqlite", fast_path=settings.fast_path),
        )

    async def _new_connection(self) -> aiosqlite.Connection:
        raw = await aiosqlite.connect(
            self.path, timeout=tuning.SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None
        )
        try:
            await raw.executescript(_PRAGMAS)
        except BaseException:
            await raw.close()
            raise
        return raw

    async def connect(self, *, write: bool) -> SqliteConnection:
        try:
            raw = await self.pool.acquire()
        except DatabaseUnavailable:
            raise
        except Exception as error:
            raise _translated(error) from error
        return SqliteConnection(self, raw, write=write)

    async def release(self, connection: Connection) -> None:
        assert isinstance(connection, SqliteConnection)  # noqa: S101
        # Nothing to end: back to the pool without an await, so without a shield.
        if not connection.in_transaction() and self.pool.keep(connection.raw):
            return
        with anyio.CancelScope(shield=True):
            reusable = True
            try:
                await connection.rollback()
            except Exception:
                reusable = False
            await self.pool.release(connection.raw, reusable=reusable)

    async def close(self) -> None:
        await self.pool.close()

    def pool_status(self) -> tuple[int, int]:
        return self.pool.checked_out, self.pool.open_count


async def _close(raw: aiosqlite.Connection) -> None:
    await raw.close()


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite+aiosqlite:///path`` URL."""
    database = make_url(url).database
    if not database:
        raise ValueError("the SQLite URL names no database file")
    return database
