"""POST /api/v1/books/import: what one import may hold, and how many run at once.

The body is split into lines as it arrives and no further than the line cap; a line longer than
any book is refused unparsed; a line's result lists a few of its field errors; at most
``BOOKSHELF_IMPORT_CONCURRENCY`` imports run at once per worker, the next waits briefly for its
turn (holding no connection), then is a 503 ``busy`` problem with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bookshelf.books import bulk
from bookshelf.books import dependencies as books_dependencies
from bookshelf.books.models import books
from bookshelf.config import Settings
from bookshelf.users.schemas import Role
from tests.conftest import make_settings
from tests.factories import BOOKS, app_account, assert_problem, book_payload, count_rows
from tests.ops.support import busy_refusals, http, started

IMPORT = f"{BOOKS}/import"
NDJSON = {"Content-Type": "application/x-ndjson"}


def line(**overrides: Any) -> bytes:
    return json.dumps(book_payload(**overrides)).encode() + b"\n"


def unknown_fields(count: int) -> bytes:
    """A line naming a title, an author and ``count`` fields a book does not have."""
    extra = "".join(f',"unknown_{n}":0' for n in range(count))
    return ('{"title":"t","authors":["a"]' + extra + "}\n").encode()


# --- what one import holds --------------------------------------------------------------------


async def test_an_import_stops_reading_its_body_once_past_the_line_cap(database_url: str) -> None:
    """A body of many lines is refused when the line after the cap starts: the rest of the body
    is never read (before, every line was received and split before the cap was checked)."""
    async with started(make_settings(database_url, import_max_lines=3)) as app:
        editor = await app_account(app, Role.EDITOR)
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            for _ in range(1000):
                sent += 1
                yield line()

        async with http(app, headers=editor.headers) as client:
            response = await client.post(IMPORT, content=body(), headers=NDJSON)
        assert_problem(response, 413, "too-many-lines", instance=IMPORT)
        assert sent == 4  # three lines, and the one past the cap
        assert await count_rows(app.state.database, books) == 0


@pytest.mark.parametrize("cut", [1, 2, 3, 7, 64])
def test_lines_are_numbered_alike_however_the_body_arrives(cut: int) -> None:
    body = b'\n  {"a": 1}\r\n\n \t\n{"b":\n2}\n\n{"c": 3}'
    whole = [
        (number, text.lstrip())
        for number, text in enumerate(body.split(b"\n"), start=1)
        if text.strip()
    ]
    reader = bulk.LineReader(max_lines=10)
    lines = []
    for start in range(0, len(body), cut):
        lines += reader.feed(body[start : start + cut])
    lines += reader.end()
    assert lines == whole
    assert whole == [(2, b'{"a": 1}\r'), (5, b'{"b":'), (6, b"2}"), (8, b'{"c": 3}')]


async def test_a_line_lists_at_most_a_few_of_its_field_errors(client: httpx.AsyncClient) -> None:
    """Each unknown field is a validation error: a line of many of them reports how many and
    lists the first few, in both modes, so an import's results stay bounded by its lines."""
    body = line() + unknown_fields(40)
    report = await client.post(IMPORT, content=body, headers=NDJSON)
    assert report.status_code == 200, report.text
    created, failed = report.json()["results"]
    assert created["status"] == "created"
    problem = failed["problem"]
    assert problem["type"].endswith(":validation-error")
    assert problem["detail"] == "Line 2: 40 field(s) failed validation; the first 5 in errors."
    assert [error["loc"] for error in problem["errors"]] == [
        ["body", 2, f"unknown_{n}"] for n in range(bulk.MAX_ERRORS_PER_LINE)
    ]

    rejected = await client.post(
        IMPORT, content=unknown_fields(40), params={"mode": "all-or-nothing"}, headers=NDJSON
    )
    problem = assert_problem(rejected, 422, "import-rejected")
    assert len(problem["errors"]) == bulk.MAX_ERRORS_PER_LINE


async def test_a_line_longer_than_any_book_is_refused_unparsed(
    client: httpx.AsyncClient,
) -> None:
    too_long = unknown_fields(bulk.MAX_LINE_BYTES // 14)
    assert len(too_long) > bulk.MAX_LINE_BYTES
    report = await client.post(IMPORT, content=line() + too_long + line(), headers=NDJSON)
    assert report.status_code == 200, report.text
    results = report.json()["results"]
    assert [result["status"] for result in results] == ["created", "error", "created"]
    problem = results[1]["problem"]
    assert problem["type"].endswith(":line-too-long")
    assert problem["status"] == 413
    assert problem["detail"] == (
        f"Line 2 is longer than {bulk.MAX_LINE_BYTES} bytes, more than any book needs."
    )
    assert "errors" not in problem or problem["errors"] is None


# --- how many at once ---------------------------------------------------------------------------


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(books_dependencies, "IMPORT_WAIT_SECONDS", 0.2)


def one_at_a_time(settings: Settings) -> Settings:
    # Two pooled connections: the running import holds one (its sign-in check's), so a queued
    # import that took the other would leave none for the GET below.
    return settings.model_copy(
        update={
            "import_concurrency": 1,
            "database_pool_size": 2,
            "database_max_overflow": 0,
            "database_pool_timeout_seconds": 2.0,
        }
    )


@pytest.mark.usefixtures("short_wait")
async def test_an_import_past_the_workers_slots_is_a_503_busy_problem(settings: Settings) -> None:
    """One import at a time (``BOOKSHELF_IMPORT_CONCURRENCY=1``): while one is in progress (its
    body still arriving), a second waits its bounded time, holding no connection, and is
    refused with a problem it may retry; the rest of the API is served meanwhile."""
    async with started(one_at_a_time(settings)) as app:
        editor = await app_account(app, Role.EDITOR)
        arriving, go_on = asyncio.Event(), asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield line()
            arriving.set()
            await go_on.wait()
            yield line()

        async with http(app, headers=editor.headers) as client:
            book = (await client.post(BOOKS, json=book_payload())).json()
            first = asyncio.create_task(client.post(IMPORT, content=slow_body(), headers=NDJSON))
            async with asyncio.timeout(10):
                await arriving.wait()
            refusals = busy_refusals("import")
            second_task = asyncio.create_task(client.post(IMPORT, content=line(), headers=NDJSON))
            meanwhile = await client.get(f"{BOOKS}/{book['id']}")
            async with asyncio.timeout(10):
                second = await second_task
            go_on.set()
            async with asyncio.timeout(10):
                done = await first
            after = await client.post(IMPORT, content=line(), headers=NDJSON)

    problem = assert_problem(second, 503, "busy", instance=IMPORT)
    assert problem["detail"] == "Too many imports are in progress; retry shortly."
    assert second.headers["retry-after"] == "5"
    assert busy_refusals("import") == refusals + 1
    assert meanwhile.status_code == 200, meanwhile.text
    assert done.status_code == 200, done.text
    assert done.json()["created"] == 2
    assert after.status_code == 200, after.text


@pytest.mark.usefixtures("short_wait")
async def test_an_import_gives_its_slot_back_however_it_ends(settings: Settings) -> None:
    """Too many lines, a rejected all-or-nothing import, a refused sign-in, a client gone while
    its body arrives, and a successful import each free the one slot: the next never waits."""
    async with started(one_at_a_time(settings.model_copy(update={"import_max_lines": 2}))) as app:
        editor = await app_account(app, Role.EDITOR)
        reader = await app_account(app, Role.READER)
        stalled = asyncio.Event()

        async def abandoned_body() -> AsyncIterator[bytes]:
            yield line()
            stalled.set()
            await asyncio.Event().wait()  # never more
            yield line()

        async with (
            http(app, headers=editor.headers) as client,
            http(app, headers=reader.headers) as not_an_editor,
        ):
            gone = asyncio.create_task(
                client.post(IMPORT, content=abandoned_body(), headers=NDJSON)
            )
            async with asyncio.timeout(10):
                await stalled.wait()
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone
            answers = [
                await client.post(IMPORT, content=line() * 3, headers=NDJSON),
                await client.post(
                    IMPORT, content=b"{bad\n", params={"mode": "all-or-nothing"}, headers=NDJSON
                ),
                await not_an_editor.post(IMPORT, content=line(), headers=NDJSON),
                await client.post(IMPORT, content=line(), headers=NDJSON),
                await client.post(IMPORT, content=line(), headers=NDJSON),
            ]

    assert [answer.status_code for answer in answers] == [413, 422, 403, 200, 200]
