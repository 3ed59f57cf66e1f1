"""Statements compiled once per shape (``StatementCache``).

Reproduces the compiled cache of SQLAlchemy's own execution: a statement's cache key (its
shape, the literal values left out) finds the statement compiled once for that shape, and the
values of the statement at hand are put into it; checked against SQLAlchemy 2.1.9. It uses
what that execution uses and SQLAlchemy does not publish: ``_generate_cache_key``, compiling
against the key (``compile(cache_key=...)``) and ``construct_params(extracted_parameters=...)``.
``tests/fastpath/test_statements.py`` holds its SQL and arguments equal to ``Statements``'s
(compiled each time, public API only) for every kind of statement the services build.

A statement built per request then costs its cache key and a dictionary lookup, not a compile.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from bookshelf.db.statements import (
    Bound,
    CompiledStatement,
    DialectName,
    Parameters,
    Statements,
    arguments,
    column_keys,
    compile_for,
    describe,
    dialect,
)

# Shapes of statements kept per dialect. The services build a few dozen shapes (a list's
# filters combine into more); the bound keeps a pathological caller from growing it forever.
CACHE_SIZE = 500


class StatementCache(Statements):
    """Compiled statement shapes of one dialect, least recently used dropped past the bound."""

    def __init__(self, dialect: DialectName, size: int = CACHE_SIZE) -> None:
        super().__init__(dialect)
        self._size = size
        self._entries: OrderedDict[Any, CompiledStatement] = OrderedDict()

    def bind(self, statement: ClauseElement, parameters: Parameters | None = None) -> Bound:
        keys = column_keys(parameters)
        cache_key = statement._generate_cache_key()
        if cache_key is None:  # not cacheable: compiled for this execution only
            compiled = compile_for(statement, self.dialect, keys)
            values = compiled.construct_params(parameters, escape_names=False)
            return arguments(describe(compiled, statement, self.dialect), values)
        key = (cache_key.key, keys)
        entry = self._entries.get(key)
        if entry is None:
            shape = statement.compile(
                dialect=dialect(self.dialect), cache_key=cache_key, column_keys=list(keys)
            )
            assert isinstance(shape, SQLCompiler)  # noqa: S101 - Core statements compile to SQL
            entry = describe(shape, statement, self.dialect)
            self._entries[key] = entry
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        values = entry.compiled.construct_params(
            parameters, extracted_parameters=cache_key.bindparams, escape_names=False
        )
        return arguments(entry, values)


def statements_for(dialect: DialectName, *, fast_path: bool) -> Statements:
    """The statements of a database: compiled once per shape on the fast path, else each time."""
    return StatementCache(dialect) if fast_path else Statements(dialect)
