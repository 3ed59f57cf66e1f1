"""Values cross the data layer with the column types' own conversion, SQLAlchemy's, which is the
one Alembic's engine uses too: so it holds for any column type, not only those the models use
today (a table of conversions kept by hand covered those, and refused the rest on SQLite)."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Time,
    insert,
    select,
)

from bookshelf.config import Settings
from bookshelf.db.connections import opened_database
from bookshelf.db.database import unit_of_work
from bookshelf.db.engine import create_engine

# A scratch table of types no model uses (made and dropped by the test, never migrated).
SCRATCH = Table(
    "value_conversions",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("amount", Numeric(10, 2)),
    Column("at", Time),
    Column("span", Interval),
    Column("day", Date),
    Column("data", LargeBinary),
    Column("flag", Boolean),
)
VALUES = {
    "amount": Decimal("12.50"),
    "at": time(9, 30, 15, 250),
    "span": timedelta(days=2, seconds=7, microseconds=3),
    "day": date(1666, 6, 4),
    "data": b"\x00\xffbytes",
    "flag": True,
}


async def test_any_column_type_round_trips_through_both_paths(settings: Settings) -> None:
    engine = create_engine(settings)
    async with engine.begin() as connection:
        await connection.run_sync(SCRATCH.create)
    try:
        async with opened_database(settings) as database:
            async with unit_of_work(database, write=True) as connection:
                await connection.execute(insert(SCRATCH), {"id": 1, **VALUES})
            async with engine.begin() as connection:
                await connection.execute(insert(SCRATCH), {"id": 2, **VALUES})
            async with unit_of_work(database, write=False) as connection:
                theirs = (await connection.execute(select(SCRATCH).where(SCRATCH.c.id == 2))).one()
        async with engine.connect() as connection:
            mine = (await connection.execute(select(SCRATCH).where(SCRATCH.c.id == 1))).one()
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(SCRATCH.drop)
        await engine.dispose()
    for row in (mine, theirs):
        read = row._asdict()
        assert {name: read[name] for name in VALUES} == VALUES
        assert {name: type(read[name]) for name in VALUES} == {
            name: type(value) for name, value in VALUES.items()
        }
