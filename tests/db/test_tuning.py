"""One set-up for every connection (``db.tuning``): the data layer's, which serve requests, and
SQLAlchemy's engine's, on which Alembic migrates, behave the same on both databases."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import text

import bookshelf
from bookshelf.config import Settings
from bookshelf.db.connections import opened_database
from bookshelf.db.database import unit_of_work
from bookshelf.db.engine import create_engine

SHOWN = {
    "sqlite": ("journal_mode", "synchronous", "foreign_keys", "busy_timeout"),
    "postgresql": ("statement_timeout",),
}


def _query(dialect: str, name: str) -> str:
    return f"PRAGMA {name}" if dialect == "sqlite" else f"SHOW {name}"


async def test_the_data_layer_and_the_engine_set_up_connections_alike(settings: Settings) -> None:
    async with opened_database(settings) as database:
        dialect = database.dialect
        async with unit_of_work(database, write=False) as connection:
            served = {
                name: str(await connection.scalar(text(_query(dialect, name))))
                for name in SHOWN[dialect]
            }
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            migrated = {
                name: str(await connection.scalar(text(_query(dialect, name))))
                for name in SHOWN[dialect]
            }
    finally:
        await engine.dispose()
    assert served == migrated
    if dialect == "sqlite":
        assert served == {
            "journal_mode": "wal",
            "synchronous": "1",
            "foreign_keys": "1",
            "busy_timeout": "30000",
        }
    else:
        assert served["statement_timeout"] != "0"


def test_the_sqlite_pragmas_are_written_in_one_module() -> None:
    package = Path(bookshelf.__file__ or "").parent
    writers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.lstrip().upper().startswith("PRAGMA ")
    )
    assert set(writers) == {"db/tuning.py"}
