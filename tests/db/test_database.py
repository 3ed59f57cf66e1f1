"""The data layer (``bookshelf.db``) on both databases: values, transactions, errors, the pool.

Values written through the service's layer are read back through SQLAlchemy's own engine (a
different driver path), and the other way round, so the stored formats stay the ones every
existing database already holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Integer, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import books
from bookshelf.config import Settings
from bookshelf.db.connections import open_database, opened_database
from bookshelf.db.database import Database, unit_of_work
from bookshelf.db.engine import create_engine
from bookshelf.db.exceptions import DatabaseError, DatabaseUnavailable, IntegrityViolation
from bookshelf.fastpath.statements import StatementCache
from bookshelf.idempotency.models import idempotency_records
from bookshelf.users.models import users
from tests.conftest import make_settings

MOMENT = datetime(2026, 11, 30, 16, 22, 39, 123456, tzinfo=UTC)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    async with opened_database(settings) as opened:
        yield opened


@pytest.fixture
async def inspector(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


def book_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "isbn": None,
        "title": "Le Misanthrope",
        "sort_title": "le misanthrope",
        "subtitle": None,
        "authors": ["Molière", "清少納言"],
        "publisher": None,
        "published_date": "1666",
        "published_sort": date(1666, 1, 1),
        "page_count": 120,
        "language": "fr",
        "subjects": [],
        "description": None,
        "version": 1,
        "created_at": MOMENT,
        "updated_at": MOMENT + timedelta(microseconds=1),
        "created_by": None,
        "updated_by": None,
    }
    return row | overrides


def user_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "email": f"{uuid.uuid4().hex[:10]}@example.org",
        "display_name": None,
        "password_hash": "not a real hash",
        "role": "reader",
        "is_active": False,
        "email_verified": True,
        "created_at": MOMENT,
        "updated_at": MOMENT,
    }
    return row | overrides


async def test_every_column_type_round_trips_through_both_paths(
    database: Database, inspector: AsyncEngine
) -> None:
    mine, theirs = book_row(), book_row(title="Tartuffe")
    account = user_row()
    record = {
        "scope": "user:1",
        "key": "k",
        "fingerprint": "f" * 64,
        "status_code": 201,
        "response_headers": {"Location": "/x", "Note": "Molière"},
        "response_body": b"\x00\xffbody",
        "locked_at": MOMENT,
        "expires_at": MOMENT + timedelta(days=1),
    }
    async with unit_of_work(database, write=True) as connection:
        await connection.execute(insert(books), mine)
        await connection.execute(insert(users), account)
        await connection.execute(insert(idempotency_records), record)
    async with inspector.begin() as connection:
        await connection.execute(insert(books), theirs)

    async with unit_of_work(database, write=False) as connection:
        read_theirs = (
            await connection.execute(select(books).where(books.c.id == theirs["id"]))
        ).one()
        read_account = (await connection.execute(select(users))).one()
        read_record = (await connection.execute(select(idempotency_records))).one()
    async with inspector.connect() as connection:
        read_mine = (await connection.execute(select(books).where(books.c.id == mine["id"]))).one()

    for row, expected in ((read_mine, mine), (read_theirs, theirs)):
        values = row._asdict()
        assert {key: values[key] for key in expected} == expected
        assert values["rating_count"] == 0  # the server default applies to unnamed columns
    assert read_account._asdict() == account
    assert isinstance(read_account.is_active, bool)
    assert {key: read_record._asdict()[key] for key in record} == record
    assert read_mine.created_at.tzinfo is not None
    assert read_theirs.created_at.utcoffset() == timedelta(0)


async def test_a_naive_datetime_is_refused(database: Database) -> None:
    async with unit_of_work(database, write=True) as connection:
        with pytest.raises(ValueError, match="naive"):
            await connection.execute(insert(users), user_row(created_at=datetime(2026, 1, 1)))


async def test_in_lists_of_any_length_share_one_compiled_shape(database: Database) -> None:
    rows = [book_row() for _ in range(5)]
    async with unit_of_work(database, write=True) as connection:
        await connection.execute_many(insert(books), rows)
    ids = [row["id"] for row in rows]
    found = []
    async with unit_of_work(database, write=False) as connection:
        for count in (1, 3, 5):
            statement = select(books.c.id).where(books.c.id.in_(ids[:count]), books.c.version == 1)
            found.append({row.id for row in await connection.execute(statement)})
    assert found == [set(ids[:1]), set(ids[:3]), set(ids)]
    # The insert, and the select whatever its list's length.
    assert len(database.statements._entries) == 2


async def test_a_write_is_one_transaction_and_a_failure_rolls_it_back(
    database: Database, inspector: AsyncEngine
) -> None:
    first = book_row(isbn="9780000000002")

    async def insert_twice() -> None:
        async with unit_of_work(database, write=True) as connection:
            await connection.execute(insert(books), first)
            assert connection.in_transaction()
            await connection.execute(insert(books), book_row(isbn="9780000000002"))

    with pytest.raises(IntegrityViolation) as refused:
        await insert_twice()
    assert refused.value.concerns("isbn")
    assert not refused.value.concerns("title")
    async with inspector.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(books)) == 0


async def test_a_read_only_connection_is_autocommit_unless_it_asks(database: Database) -> None:
    async with unit_of_work(database, write=False) as connection:
        await connection.execute(text("SELECT 1"))
        assert not connection.in_transaction()
        async with connection.transaction():
            assert connection.in_transaction()
            await connection.execute(text("SELECT 1"))
        assert not connection.in_transaction()


async def test_an_error_inside_a_transaction_block_rolls_it_back(
    database: Database, inspector: AsyncEngine
) -> None:
    async def fail_after_an_insert() -> None:
        async with unit_of_work(database, write=False) as connection, connection.transaction():
            await connection.execute(insert(books), book_row())
            raise RuntimeError("after the insert")

    with pytest.raises(RuntimeError):
        await fail_after_an_insert()
    async with inspector.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(books)) == 0


async def test_an_uncommitted_write_is_rolled_back_on_release(
    database: Database, inspector: AsyncEngine
) -> None:
    connection = await database.connect(write=True)
    await connection.execute(insert(books), book_row())
    await database.release(connection)
    async with inspector.connect() as check:
        assert await check.scalar(select(func.count()).select_from(books)) == 0


async def test_rowcount_and_returning(database: Database) -> None:
    rows = [book_row() for _ in range(3)]
    async with unit_of_work(database, write=True) as connection:
        await connection.execute_many(insert(books), rows)
        bumped = await connection.execute(update(books).values(version=books.c.version + 1))
        returned = await connection.execute(
            update(books)
            .where(books.c.id == bindparam("wanted"))
            .values(version=7)
            .returning(books.c.id, books.c.version),
            {"wanted": rows[0]["id"]},
        )
        none = await connection.execute(
            update(books).where(books.c.id == uuid.uuid4()).values(version=9)
        )
    assert bumped.rowcount == 3
    assert [(row.id, row.version) for row in returned] == [(rows[0]["id"], 7)]
    assert none.rowcount == 0


async def test_a_failing_statement_names_no_sql_to_the_caller_but_keeps_the_cause(
    database: Database,
) -> None:
    async with unit_of_work(database, write=False) as connection:
        with pytest.raises(DatabaseError) as failed:
            await connection.execute(text("SELECT * FROM no_such_table"))
    assert failed.value.__cause__ is not None  # the driver's error, for the log


async def test_an_exhausted_pool_answers_unavailable_in_time(settings: Settings) -> None:
    tight = settings.model_copy(
        update={
            "database_pool_size": 1,
            "database_max_overflow": 0,
            "database_pool_timeout_seconds": 0.3,
        }
    )
    async with opened_database(tight) as database:
        held = await database.connect(write=False)
        await held.execute(text("SELECT 1"))
        try:
            with pytest.raises(DatabaseUnavailable):
                await database.connect(write=False)
        finally:
            await database.release(held)
        async with unit_of_work(database, write=False) as connection:  # free again
            assert await connection.scalar(text("SELECT 1").columns(x=Integer)) == 1
        assert database.pool_status() == (0, 1)


async def test_a_cancelled_request_gives_its_connection_back(settings: Settings) -> None:
    one = settings.model_copy(update={"database_pool_size": 1, "database_max_overflow": 0})
    async with opened_database(one) as database:

        async def hold() -> None:
            async with unit_of_work(database, write=True) as connection:
                await connection.execute(insert(books), book_row())
                await asyncio.sleep(10)

        task = asyncio.create_task(hold())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert database.pool_status()[0] == 0
        async with unit_of_work(database, write=False) as connection:
            assert await connection.scalar(select(func.count()).select_from(books)) == 0


def test_the_statement_cache_is_bounded() -> None:
    cache = StatementCache("sqlite", size=2)
    for column in (books.c.id, books.c.title, books.c.isbn):
        cache.bind(select(column))
    assert len(cache._entries) == 2


@pytest.mark.postgres_only
@pytest.mark.parametrize("backend", ["postgresql"])
async def test_after_the_server_drops_every_connection_one_statement_fails_then_all_work(
    database_url: str,
) -> None:
    """A restart (here: every backend terminated) breaks all pooled connections. asyncpg sees
    most closed sockets at checkout; a statement that still finds its connection lost fails
    with a 503's error and expires the whole pool: at most one request fails, never one per
    pooled connection."""
    database = await open_database(make_settings(database_url, database_pool_size=4))
    admin = await open_database(make_settings(database_url, database_pool_size=1))
    try:
        held = [await database.connect(write=False) for _ in range(4)]
        for connection in held:
            await connection.execute(text("SELECT 1"))
        for connection in held:
            await database.release(connection)
        async with unit_of_work(admin, write=False) as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        outcomes = []
        for _ in range(6):
            try:
                async with unit_of_work(database, write=False) as connection:
                    await connection.execute(text("SELECT 1"))
                outcomes.append("ok")
            except DatabaseUnavailable:
                outcomes.append("unavailable")
    finally:
        await database.close()
        await admin.close()
    assert outcomes[0] in {"ok", "unavailable"}
    assert outcomes[1:] == ["ok"] * 5
