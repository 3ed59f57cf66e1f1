"""The one data layer: a pool of driver connections behind a small typed interface.

Services build statements with SQLAlchemy Core and run them on a ``Connection``:
``execute`` (rows, or a row count for a plain write), ``execute_many`` (one statement, many
parameter sets), ``scalar``, and the transaction's ``commit`` / ``rollback``. Two
implementations, one per database: ``db.postgres`` on an asyncpg pool (prepared statements,
one round trip per statement) and ``db.sqlite`` on aiosqlite connections. Neither goes
through SQLAlchemy's execution layer or its greenlet bridge: measured in process
(bench/RESULTS.md), that layer was the largest single cost of a GET by id after the request
stack.

Transactions: a connection checked out for writing begins its transaction with its first
statement (``BEGIN IMMEDIATE`` on SQLite, which takes the write lock up front) and holds it
until ``commit``; a read-only connection runs each statement on its own (autocommit: no BEGIN
or ROLLBACK round trips around a read) unless the caller opens a ``transaction()`` block.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from sqlalchemy.sql.elements import ClauseElement

from bookshelf.db.statements import Bound, DialectName, Statements, make_rows

logger = logging.getLogger("bookshelf.db")


class Result:
    """The rows of a statement (named tuples), or the row count of a plain write."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any | None:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]


class Connection(abc.ABC):
    """One checked-out driver connection (see the module docstring for transactions)."""

    dialect: DialectName

    def __init__(self, database: Database, *, write: bool) -> None:
        self._statements = database.statements
        self.write = write
        self._echo = database.echo
        self._tracer = database.tracer
        self._listeners = database.listeners

    async def execute(
        self,
        statement: ClauseElement,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> Result:
        """Run ``statement``; a list of parameter sets runs it once per set (no rows back)."""
        if isinstance(parameters, Sequence):
            await self.execute_many(statement, parameters)
            return Result([], len(parameters))
        bound = self._statements.bind(statement, parameters)
        if self._echo:
            logger.info("%s", bound.sql)
        for listener in self._listeners:
            listener(bound.sql, bound.arguments)
        if self._tracer is None:
            records, rowcount = await self._run(bound)
        else:
            with _span(self._tracer, bound.sql, self.dialect):
                records, rowcount = await self._run(bound)
        if bound.statement.returns_rows:
            rows = make_rows(bound.statement, records)
            return Result(rows, len(rows))
        return Result([], rowcount)

    async def execute_many(
        self, statement: ClauseElement, parameters: Sequence[Mapping[str, Any]]
    ) -> None:
        if not parameters:
            return
        bound = self._statements.bind_many(statement, parameters)
        if self._echo:
            logger.info("%s (%d parameter sets)", bound[0].sql, len(bound))
        for listener in self._listeners:
            listener(bound[0].sql, bound[0].arguments)
        if self._tracer is None:
            await self._run_many(bound)
        else:
            with _span(self._tracer, bound[0].sql, self.dialect):
                await self._run_many(bound)

    async def scalar(
        self, statement: ClauseElement, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """The first column of the first row, or None without rows."""
        return (await self.execute(statement, parameters)).scalar()

    @abc.abstractmethod
    async def _run(self, bound: Bound) -> tuple[Sequence[Sequence[Any]], int]:
        """Records (for statements returning rows) and the row count."""

    @abc.abstractmethod
    async def _run_many(self, bound: Sequence[Bound]) -> None: ...

    @abc.abstractmethod
    def in_transaction(self) -> bool: ...

    @abc.abstractmethod
    async def commit(self) -> None:
        """Commit the transaction, if one is open (a read-only connection has none)."""

    @abc.abstractmethod
    async def rollback(self) -> None: ...

    @asynccontextmanager
    async def transaction(
        self, local_settings: Mapping[str, str] | None = None
    ) -> AsyncIterator[None]:
        """A transaction around the block. On a read-only connection it is committed when the
        block ends (rolled back if it raises); on a writing one the block joins the request's
        transaction (begun if need be), which its unit of work commits. ``local_settings``
        (PostgreSQL's ``set_config(..., true)``) last until the transaction ends, and are sent
        with its BEGIN: ``books.search`` bounds its statement with them."""
        if self.in_transaction():
            await self._join_transaction(local_settings)
            yield
            return
        await self._open_transaction(local_settings)
        if self.write:
            yield
            return
        try:
            yield
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.rollback()
            raise
        await self.commit()

    @abc.abstractmethod
    async def _open_transaction(self, local_settings: Mapping[str, str] | None) -> None:
        """BEGIN, with the settings where the database has them."""

    @abc.abstractmethod
    async def _join_transaction(self, local_settings: Mapping[str, str] | None) -> None:
        """Apply the settings inside the transaction already open (if the database has any)."""


def _span(tracer: Any, sql: str, dialect: str) -> Any:
    """A client span for one statement (tracing on: ``ops.tracing``)."""
    from opentelemetry.trace import SpanKind

    return tracer.start_as_current_span(
        sql.split(None, 1)[0],
        kind=SpanKind.CLIENT,
        attributes={"db.system": dialect, "db.statement": sql},
    )


class Database(abc.ABC):
    """The process's pool of connections to one database."""

    dialect: DialectName
    statements: Statements
    echo: bool = False
    # An OpenTelemetry tracer when tracing is on: a span per statement.
    tracer: Any = None

    def __init__(self) -> None:
        # Called with each statement's SQL and driver arguments before it runs (tests count
        # statements and explain their plans with it).
        self.listeners: list[Callable[[str, tuple[Any, ...]], None]] = []

    @abc.abstractmethod
    async def connect(self, *, write: bool) -> Connection:
        """Check out a connection; ``write`` marks one that will (or may) write."""

    @abc.abstractmethod
    async def release(self, connection: Connection) -> None:
        """Back to the pool, rolled back if its transaction is still open. Never raises for
        a connection the database already lost."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection (at shutdown)."""

    @abc.abstractmethod
    def pool_status(self) -> tuple[int, int]:
        """Connections (checked out, open) for the metrics."""


@asynccontextmanager
async def unit_of_work(database: Database, *, write: bool) -> AsyncIterator[Connection]:
    """A connection for one unit of work: committed when the block ends, rolled back when it
    raises, and back in the pool either way. The request's ``ConnectionDep`` is a unit of work
    spanning the handler (``db.connections``)."""
    connection = await database.connect(write=write)
    try:
        yield connection
        await connection.commit()
    finally:
        await database.release(connection)  # shielded from cancellation
