"""Choices on the request path that bench/ measured, held in place by tests."""

from __future__ import annotations

import gc
from collections import Counter

from sqlalchemy import text

from bookshelf.books.seed import BookFactory
from bookshelf.db.connections import opened_database
from bookshelf.db.database import Connection
from bookshelf.db.postgres import PostgresConnection
from bookshelf.db.sqlite import SqliteConnection
from bookshelf.main import create_app
from tests.conftest import make_settings


def _driver_in_transaction(connection: Connection) -> bool:
    """What the driver itself says (not our bookkeeping)."""
    if isinstance(connection, PostgresConnection):
        return bool(connection.raw.is_in_transaction())
    assert isinstance(connection, SqliteConnection)
    return bool(connection.raw.in_transaction)


async def test_reads_skip_the_transaction_round_trips(database_url: str) -> None:
    """A GET's statements run in autocommit (no BEGIN before, no ROLLBACK after); writes keep
    their transaction from their first statement to the commit."""
    async with opened_database(make_settings(database_url)) as database:
        read = await database.connect(write=False)
        try:
            await read.execute(text("SELECT 1"))
            assert not read.in_transaction()
            assert not _driver_in_transaction(read)
        finally:
            await database.release(read)
        write = await database.connect(write=True)
        try:
            assert not _driver_in_transaction(write)  # nothing sent yet
            await write.execute(text("SELECT 1"))
            assert write.in_transaction()
            assert _driver_in_transaction(write)
            await write.commit()
            assert not _driver_in_transaction(write)
        finally:
            await database.release(write)


async def test_start_up_objects_are_frozen_while_the_app_runs(sqlite_url: str) -> None:
    """Full collections skip what start-up built (they took 50-75 ms under load), and the app
    gives the objects back to the collector when it stops."""
    gc.unfreeze()
    app = create_app(make_settings(sqlite_url))
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0


def test_the_seed_has_a_long_tail_of_authors() -> None:
    """Most authors of a large catalog wrote one or two of its books, so filters by author and
    searches for one book stay cheap as the catalog grows; a few names are common."""
    batch = BookFactory(seed=3).make(5000)
    books_per_author = Counter(name for book in batch.books for name in book["authors"])
    assert len(books_per_author) > 3000
    assert sum(1 for count in books_per_author.values() if count == 1) > 2500
    assert books_per_author.most_common(1)[0][1] >= 3
