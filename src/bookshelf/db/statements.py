"""SQLAlchemy Core statements compiled per dialect, run on the driver.

SQLAlchemy Core builds every statement the services send; this module turns a statement into
what a driver takes: its SQL text, its arguments in order, and how to turn each argument into
the driver's value and each result column into Python's. ``Statements`` does it with public
SQLAlchemy API only, compiling each statement it is given (what runs with the fast path off);
with the fast path on, ``fastpath.statements.StatementCache`` compiles each statement *shape*
once, as SQLAlchemy's own execution does.

Why compile each statement: SQLAlchemy's one public statement cache is its engine's, reached
through its own ``Connection.execute``, and the data layer runs on the drivers without that
layer (``db.database``). Compiling is always right, for any statement; what it costs is in
bench/RESULTS.md.

Values are converted by the column types themselves, as SQLAlchemy's own execution converts
them (one conversion, shared with Alembic's engine and ``db.types.UtcDateTime``): on
PostgreSQL asyncpg handles every type natively (JSON through codecs set on each connection); on
SQLite UUIDs are 32 hex digits, timestamps naive UTC text, dates ISO text, JSON unescaped UTF-8
text (``db.tuning.json_text``). tests/db/test_database.py and tests/db/test_values.py
round-trip every column type on both databases.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_core import from_json
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from bookshelf.db import tuning

DialectName = Literal["postgresql", "sqlite"]
Convert = Callable[[Any], Any]
Parameters = Mapping[str, Any]


@functools.cache
def dialect(name: DialectName) -> Dialect:
    """SQLAlchemy's dialect to compile for (imported only for the database in use)."""
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import asyncpg

        return asyncpg.dialect()  # type: ignore[no-untyped-call]
    from sqlalchemy.dialects.sqlite import aiosqlite

    # JSON as the engine writes and reads it (db.tuning), for the types' own conversions.
    return aiosqlite.dialect(json_serializer=tuning.json_text, json_deserializer=from_json)


def _bind_converter(dialect_name: DialectName, type_: TypeEngine[Any]) -> Convert | None:
    """How a value bound to a column of ``type_`` becomes the driver's: the type's own
    processing on the dialect, as SQLAlchemy's execution (and so Alembic's engine) does it.
    asyncpg takes every value as it is (JSON through the codecs ``db.postgres`` sets), so on
    PostgreSQL only bookshelf's own types process what they bind (``UtcDateTime`` refuses a
    naive datetime)."""
    if dialect_name == "postgresql" and not isinstance(type_, TypeDecorator):
        return None
    compiling = dialect(dialect_name)
    return type_.dialect_impl(compiling).bind_processor(compiling)


def _result_converter(dialect_name: DialectName, type_: TypeEngine[Any]) -> Convert | None:
    """How a column of ``type_`` comes back from the driver as Python's value: on SQLite, the
    type's own processing on the dialect; asyncpg returns Python's values itself."""
    if dialect_name == "postgresql":
        return None
    compiling = dialect(dialect_name)
    return type_.dialect_impl(compiling).result_processor(compiling, None)


def _row_class(names: Sequence[str]) -> type[tuple[Any, ...]]:
    # A named tuple per result shape: attribute access and ``_asdict`` as SQLAlchemy's rows
    # have, made in C from the driver's record.
    return namedtuple("Row", names, rename=True)


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    """One statement shape, compiled for one dialect."""

    compiled: SQLCompiler
    sql: str
    names: tuple[str, ...]  # the arguments' names, in the order the SQL takes them
    bind_types: Mapping[str, Convert | None]
    expanding: bool  # has IN lists, whose SQL depends on their lengths
    returns_rows: bool
    row_class: type[tuple[Any, ...]]
    results: tuple[Convert | None, ...] | None  # None when no column needs converting


@dataclass(frozen=True, slots=True)
class Bound:
    """A statement ready for the driver: SQL text and positional arguments."""

    sql: str
    arguments: tuple[Any, ...]
    statement: CompiledStatement


def compile_for(
    statement: ClauseElement, dialect_name: DialectName, column_keys: Sequence[str]
) -> SQLCompiler:
    compiled = statement.compile(dialect=dialect(dialect_name), column_keys=list(column_keys))
    assert isinstance(compiled, SQLCompiler)  # noqa: S101 - Core statements compile to SQL
    return compiled


def describe(
    compiled: SQLCompiler, statement: ClauseElement, dialect_name: DialectName
) -> CompiledStatement:
    """What a driver needs of ``compiled``, the statement compiled for ``dialect_name``."""
    bind_types = {
        name: _bind_converter(dialect_name, bind.type) for name, bind in compiled.binds.items()
    }
    columns = list(getattr(statement, "exported_columns", ()))
    results = tuple(_result_converter(dialect_name, column.type) for column in columns)
    names = [str(key) for key in getattr(statement, "exported_columns", {}).keys()]  # noqa: SIM118
    return CompiledStatement(
        compiled=compiled,
        sql=compiled.string,
        names=tuple(compiled.positiontup or ()),
        bind_types=bind_types,
        expanding=bool(compiled.post_compile_params or compiled.literal_execute_params),
        # SELECTs, RETURNING and text such as "SELECT 1"; a plain write returns a row count.
        returns_rows=bool(compiled.returning)
        or not (compiled.isinsert or compiled.isupdate or compiled.isdelete),
        row_class=_row_class(names) if names else tuple,
        results=results if any(results) else None,
    )


def column_keys(parameters: Parameters | None) -> tuple[str, ...]:
    """An INSERT or UPDATE without ``values()`` sets the columns the parameters name, so the
    names are part of what is compiled (as in SQLAlchemy's own execution)."""
    return tuple(parameters) if parameters else ()


class Statements:
    """Statements of one dialect, each compiled when it is bound (public API only)."""

    def __init__(self, dialect: DialectName) -> None:
        self.dialect: DialectName = dialect

    def bind(self, statement: ClauseElement, parameters: Parameters | None = None) -> Bound:
        """The statement's SQL and arguments; ``parameters`` fill its named ``bindparam``s, or
        (for an INSERT or UPDATE without ``values``) name the columns it sets."""
        compiled = compile_for(statement, self.dialect, column_keys(parameters))
        values = compiled.construct_params(parameters, escape_names=False)
        return arguments(describe(compiled, statement, self.dialect), values)

    def bind_many(self, statement: ClauseElement, rows: Sequence[Parameters]) -> list[Bound]:
        return [self.bind(statement, row) for row in rows]


def arguments(compiled: CompiledStatement, values: Mapping[str, Any]) -> Bound:
    """``compiled`` with ``values`` in the order its SQL takes them, each converted."""
    if not compiled.expanding:
        converters = compiled.bind_types
        ordered = []
        for name in compiled.names:
            convert = converters[name]
            value = values[name]
            ordered.append(value if convert is None else convert(value))
        return Bound(compiled.sql, tuple(ordered), compiled)
    expanded = compiled.compiled.construct_expanded_state(dict(values), escape_names=False)
    origin = {new: old for old, news in expanded.parameter_expansion.items() for new in news}
    ordered = []
    for name in expanded.positiontup or ():
        convert = compiled.bind_types.get(origin.get(name, name))
        value = expanded.parameters[name]
        ordered.append(value if convert is None else convert(value))
    return Bound(expanded.statement, tuple(ordered), compiled)


def make_rows(compiled: CompiledStatement, records: Sequence[Sequence[Any]]) -> list[Any]:
    """The driver's records as named rows, each column converted to its Python value."""
    make = getattr(compiled.row_class, "_make", compiled.row_class)
    converters = compiled.results
    if converters is None:
        return [make(record) for record in records]
    return [
        make(
            [
                value if convert is None else convert(value)
                for convert, value in zip(converters, record, strict=False)
            ]
        )
        for record in records
    ]
