"""The ``bookshelf`` command: migrate, seed, and its handling of bad configuration."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from bookshelf.books.isbn import normalize_isbn
from bookshelf.books.models import book_authors, book_subjects, books
from bookshelf.books.schemas import Book, BookCreate
from bookshelf.cli import app as cli
from bookshelf.db.engine import create_engine
from bookshelf.main import create_app
from tests.conftest import make_settings

APP_TABLES = {"books", "book_authors", "book_subjects", "idempotency_records"}
BOOK_FIELDS = tuple(BookCreate.model_fields)


pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def sqlite_file_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run_ok(runner: CliRunner, args: list[str], url: str) -> str:
    result = runner.invoke(cli, args, env={"BOOKSHELF_DATABASE_URL": url})
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result.stdout


async def _inspect_database(url: str) -> dict[str, Any]:
    engine = create_engine(make_settings(url))
    try:
        async with engine.connect() as connection:

            def table_names(sync_connection: Connection) -> set[str]:
                return set(inspect(sync_connection).get_table_names())

            tables = await connection.run_sync(table_names)
            counts = {}
            if "books" in tables:
                for table in (books, book_authors, book_subjects):
                    counts[table.name] = await connection.scalar(
                        select(func.count()).select_from(table)
                    )
            return {"tables": tables, "counts": counts}
    finally:
        await engine.dispose()


def inspect_database(url: str) -> dict[str, Any]:
    return asyncio.run(_inspect_database(url))


async def _fetch_books(url: str) -> list[dict[str, Any]]:
    app = create_app(make_settings(url))
    fetched: list[dict[str, Any]] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            cursor = None
            for _ in range(2):
                params: dict[str, Any] = {"limit": 100, "sort": "title"}
                if cursor:
                    params["cursor"] = cursor
                page = await client.get("/api/v1/books", params=params)
                assert page.status_code == 200, page.text
                fetched.extend(page.json()["items"])
                cursor = page.json()["next_cursor"]
                assert cursor is not None
            one = await client.get(f"/api/v1/books/{fetched[0]['id']}")
            assert one.status_code == 200
            assert one.json() == fetched[0]
            search = await client.get("/api/v1/books", params={"q": fetched[0]["title"]})
            assert search.status_code == 200, search.text
            assert fetched[0]["id"] in {item["id"] for item in search.json()["items"]}
    return fetched


def assert_seeded_books_are_valid(url: str) -> None:
    items = asyncio.run(_fetch_books(url))
    assert len(items) == 200
    assert len({item["id"] for item in items}) == 200
    validated = TypeAdapter(list[Book]).validate_python(items)
    assert [book.title.casefold() for book in validated] == sorted(
        book.title.casefold() for book in validated
    )
    for item in items:
        # Each seeded book is one a client could have created through the API.
        as_input = BookCreate.model_validate({name: item[name] for name in BOOK_FIELDS})
        assert as_input.isbn == item["isbn"]
        if item["isbn"] is not None:
            assert normalize_isbn(item["isbn"]) == item["isbn"]
        assert item["version"] == 1
        assert item["authors"]


def test_migrate_then_seed_fills_a_fresh_sqlite_file(
    runner: CliRunner, sqlite_file_url: str
) -> None:
    assert "database at revision head" in run_ok(runner, ["migrate"], sqlite_file_url)
    assert inspect_database(sqlite_file_url)["tables"] >= APP_TABLES

    output = run_ok(runner, ["seed", "--books", "250", "--batch-size", "100"], sqlite_file_url)

    assert "added 250 books" in output
    counts = inspect_database(sqlite_file_url)["counts"]
    assert counts["books"] == 250
    assert counts["book_authors"] >= 250
    assert_seeded_books_are_valid(sqlite_file_url)


def test_seed_twice_adds_books_again(runner: CliRunner, sqlite_file_url: str) -> None:
    run_ok(
        runner, ["seed", "--books", "120", "--batch-size", "100", "--seed", "1"], sqlite_file_url
    )
    run_ok(
        runner, ["seed", "--books", "130", "--batch-size", "100", "--seed", "2"], sqlite_file_url
    )
    assert inspect_database(sqlite_file_url)["counts"]["books"] == 250


def test_seed_fills_a_fresh_postgres_database(runner: CliRunner, fresh_postgres_url: str) -> None:
    output = run_ok(runner, ["seed", "--books", "250", "--batch-size", "100"], fresh_postgres_url)

    assert "added 250 books" in output
    counts = inspect_database(fresh_postgres_url)["counts"]
    assert counts["books"] == 250
    assert counts["book_authors"] >= 250
    assert_seeded_books_are_valid(fresh_postgres_url)


def test_migrate_downgrade_base_removes_the_tables(runner: CliRunner, sqlite_file_url: str) -> None:
    run_ok(runner, ["migrate"], sqlite_file_url)

    output = run_ok(runner, ["migrate", "--downgrade", "base"], sqlite_file_url)

    assert "database at revision base" in output
    assert inspect_database(sqlite_file_url)["tables"] == {"alembic_version"}
    run_ok(runner, ["migrate"], sqlite_file_url)
    assert inspect_database(sqlite_file_url)["tables"] >= APP_TABLES


BAD_SETTINGS = [
    ("BOOKSHELF_DATABASE_URL", "nonsense"),
    ("BOOKSHELF_DATABASE_URL", "mysql://app@db/books"),
    ("BOOKSHELF_DATABASE_POOL_SIZE", "abc"),
    ("BOOKSHELF_LOG_LEVEL", "loud"),
]


@pytest.mark.parametrize("command", [["migrate"], ["seed", "--books", "1"], ["serve"]])
@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_bad_configuration_exits_2_with_one_line_naming_the_variable(
    runner: CliRunner, tmp_path: Path, command: list[str], name: str, value: str
) -> None:
    env = {"BOOKSHELF_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}", name: value}

    result = runner.invoke(cli, command, env=env)

    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"bookshelf: invalid configuration: {name}: ")
    assert "Traceback" not in result.output
    assert result.stdout == ""
    # Nothing was touched: no database file was created.
    assert not (tmp_path / "unused.db").exists()
