"""GET /api/v1/books/export: every matching book as NDJSON, in keyset batches."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books import bulk
from bookshelf.books.schemas import BookFilters
from bookshelf.config import Settings
from bookshelf.db.connections import opened_database
from bookshelf.db.database import Database, unit_of_work
from bookshelf.main import create_app
from tests.factories import BOOKS, assert_problem, book_payload, create_book
from tests.servers import running_server

EXPORT = f"{BOOKS}/export"
IMPORT = f"{BOOKS}/import"
NDJSON = "application/x-ndjson"


def lines_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NDJSON
    assert response.text == "" or response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


async def import_many(client: httpx.AsyncClient, count: int, **overrides: Any) -> None:
    body = "\n".join(json.dumps(book_payload(**overrides)) for _ in range(count))
    response = await client.post(IMPORT, content=body, headers={"Content-Type": NDJSON})
    assert response.status_code == 200, response.text
    assert response.json()["created"] == count


async def test_export_streams_every_book_as_ndjson_in_id_order(client: httpx.AsyncClient) -> None:
    created = [await create_book(client) for _ in range(3)]
    exported = lines_of(await client.get(EXPORT))
    assert sorted(created, key=lambda book: book["id"]) == exported
    assert [book["id"] for book in exported] == sorted(book["id"] for book in exported)


async def test_export_of_an_empty_catalog_is_an_empty_body(client: httpx.AsyncClient) -> None:
    assert lines_of(await client.get(EXPORT)) == []


async def test_export_applies_the_list_filters(client: httpx.AsyncClient) -> None:
    wanted = await create_book(client, authors=["Octavia E. Butler"], language="en")
    await create_book(client, authors=["Octavia E. Butler"], language="fr")
    await create_book(client, authors=["Someone Else"], language="en")
    exported = lines_of(
        await client.get(EXPORT, params={"author": "octavia e. butler", "language": "en"})
    )
    assert [book["id"] for book in exported] == [wanted["id"]]
    searched = lines_of(await client.get(EXPORT, params={"q": wanted["title"]}))
    assert [book["id"] for book in searched] == [wanted["id"]]


async def test_export_refuses_page_parameters_and_bad_filters(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(EXPORT, params={"limit": 5}), 422, "validation-error")
    assert_problem(await client.get(EXPORT, params={"cursor": "x"}), 422, "validation-error")
    assert_problem(await client.get(EXPORT, params={"language": "xx"}), 422, "validation-error")


async def test_export_of_more_books_than_a_batch_reads_several_batches(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, sql_statements: Any
) -> None:
    monkeypatch.setattr(bulk, "EXPORT_BATCH_SIZE", 7)
    await import_many(client, 30)
    before = sql_statements.count
    exported = lines_of(await client.get(EXPORT))
    assert len(exported) == 30
    assert len({book["id"] for book in exported}) == 30
    selects = [s for s in sql_statements.statements[before:] if "FROM books" in s]
    assert len(selects) == 5  # 7+7+7+7+2: the last, short batch ends the export


async def test_export_batches_hold_no_connection_between_batches(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await import_many(client, 5)
    database: Database = app.state.database
    batches = bulk.export_batches(database, BookFilters(), search_timeout_ms=0, batch_size=2)
    seen = 0
    async for batch in batches:
        seen += len(batch)
        assert database.pool_status()[0] == 0
    assert seen == 5


async def test_head_of_export_answers_like_get_without_a_body(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        await create_book(client)
    monkeypatch.setattr(bulk, "EXPORT_BATCH_SIZE", 2)
    statements: list[str] = []

    def count(sql: str, _arguments: tuple[Any, ...]) -> None:
        statements.append(sql)

    database: Database = app.state.database
    database.listeners.append(count)
    try:
        response = await client.head(EXPORT)
        head_reads = len([s for s in statements if "FROM books" in s])
        statements.clear()
        full = await client.get(EXPORT)
        get_reads = len([s for s in statements if "FROM books" in s])
    finally:
        database.listeners.remove(count)
    assert response.status_code == 200
    assert response.headers["content-type"] == NDJSON
    assert response.content == b""
    # GET reads every batch; HEAD stops after the headers, so only the first batch is read.
    assert len(lines_of(full)) == 5
    assert (head_reads, get_reads) == (1, 3)


# --- a real server: slow and vanishing readers ----------------------------------------------
# The server has one pooled connection (and waits 2 s for it): an export that kept it, or
# leaked it, would make the next request wait and fail.


@pytest.fixture
def one_connection(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"database_pool_size": 1, "database_pool_timeout_seconds": 2.0}
    )


def _checked_out(server_app: FastAPI) -> int:
    database: Database = server_app.state.database
    return database.pool_status()[0]


# More than the sockets' buffers hold between server and client (~12 MB), so the server really
# waits on the reader, or sees it vanish, with most of the export still to send.
BIG_EXPORT_BOOKS = 1200


async def seed_big_books(settings: Settings) -> None:
    lines = [
        (number, json.dumps(book_payload(description="z" * 9000)).encode())
        for number in range(1, BIG_EXPORT_BOOKS + 1)
    ]
    async with (
        opened_database(settings) as database,
        unit_of_work(database, write=True) as connection,
    ):
        outcomes = await bulk.import_books(connection, lines, actor=None)
    failed = [(outcome.line, outcome.error) for outcome in outcomes if outcome.error is not None]
    assert failed == []


async def test_a_client_that_disconnects_mid_stream_leaks_no_connection(
    engine: AsyncEngine, one_connection: Settings
) -> None:
    await seed_big_books(one_connection)
    server_app = create_app(one_connection)
    with running_server(server_app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as real:
            for _ in range(3):
                async with real.stream("GET", EXPORT) as response:
                    assert response.status_code == 200
                    lines = response.aiter_lines()
                    first = [await anext(lines) for _ in range(3)]
                    assert all(json.loads(line)["id"] for line in first)
                    await asyncio.sleep(0.2)  # the server fills the buffers and waits
                # closed here, with most of the export unread
            # The server notices the vanished reader on its next write: give it a moment.
            for _ in range(100):
                if _checked_out(server_app) == 0:
                    break
                await asyncio.sleep(0.05)
            assert _checked_out(server_app) == 0
            after = await real.get(BOOKS, params={"limit": 1})
            assert after.status_code == 200, after.text
            assert len(lines_of(await real.get(EXPORT))) == BIG_EXPORT_BOOKS


async def test_a_slow_reader_gets_every_line_and_holds_no_connection_meanwhile(
    engine: AsyncEngine, one_connection: Settings
) -> None:
    await seed_big_books(one_connection)
    server_app = create_app(one_connection)
    with running_server(server_app) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as real,
            httpx.AsyncClient(base_url=url, timeout=10) as other,
        ):
            received = 0
            ids: set[str] = set()
            async with real.stream("GET", EXPORT) as response:
                async for line in response.aiter_lines():
                    received += 1
                    ids.add(json.loads(line)["id"])
                    if received in (10, 600):
                        await asyncio.sleep(0.3)  # the server is now waiting on this reader
                        # ... and holds no connection (SQLite's pool is not sized by the
                        # settings, so this is its check): another request gets the only one.
                        assert _checked_out(server_app) == 0
                        started = time.monotonic()
                        meanwhile = await other.get(BOOKS, params={"limit": 1})
                        assert meanwhile.status_code == 200, meanwhile.text
                        assert time.monotonic() - started < 1.5
            assert received == len(ids) == BIG_EXPORT_BOOKS


async def test_the_bulk_paths_are_not_book_ids(client: httpx.AsyncClient) -> None:
    """``/books/{book_id}`` does not take ``export`` or ``import`` for an id: other methods
    there are a 405 naming the ones the path has."""
    for method, path, allowed in (
        ("PATCH", EXPORT, "GET, HEAD"),
        ("DELETE", EXPORT, "GET, HEAD"),
        ("OPTIONS", EXPORT, "GET, HEAD"),
        ("GET", IMPORT, "POST"),
        ("DELETE", IMPORT, "POST"),
    ):
        response = await client.request(method, path)
        assert_problem(response, 405, "about:blank")
        assert response.headers["Allow"] == allowed, (method, path)
    assert_problem(await client.get(f"{BOOKS}/exports"), 404, "book-not-found")
