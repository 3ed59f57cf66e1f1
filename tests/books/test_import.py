"""POST /api/v1/books/import: NDJSON in, one result per line out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books import bulk
from bookshelf.books.models import book_authors, book_subjects, books
from bookshelf.idempotency.models import idempotency_records
from bookshelf.users.schemas import Role
from tests.conftest import AccountFactory, make_settings
from tests.factories import (
    BOOKS,
    app_account,
    assert_problem,
    book_payload,
    count_rows,
    create_book,
    unique_isbn,
)
from tests.ops.support import http, started

IMPORT = f"{BOOKS}/import"
NDJSON = {"Content-Type": "application/x-ndjson"}


def ndjson(*items: dict[str, Any] | str) -> str:
    return "\n".join(item if isinstance(item, str) else json.dumps(item) for item in items) + "\n"


async def post_import(
    client: httpx.AsyncClient, body: str | bytes, *, mode: str | None = None, **headers: str
) -> httpx.Response:
    params = {"mode": mode} if mode else {}
    return await client.post(IMPORT, content=body, params=params, headers={**NDJSON, **headers})


async def test_every_valid_line_is_created_with_its_id(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    payloads = [
        book_payload(authors=["Ann Leckie", "Guest Author"], subjects=["space"]) for _ in range(3)
    ]
    response = await post_import(client, ndjson(*payloads))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["created"] == 3
    assert report["failed"] == 0
    assert [r["line"] for r in report["results"]] == [1, 2, 3]
    assert {r["status"] for r in report["results"]} == {"created"}
    for payload, result in zip(payloads, report["results"], strict=True):
        book = (await client.get(f"{BOOKS}/{result['id']}")).json()
        assert book["title"] == payload["title"]
        assert book["isbn"] == payload["isbn"]
        assert book["version"] == 1
    assert await count_rows(engine, books) == 3
    assert await count_rows(engine, book_authors) == 6
    assert await count_rows(engine, book_subjects) == 3
    # Imported books are findable like any other: author filter and search.
    listed = await client.get(BOOKS, params={"author": "ann leckie"})
    assert len(listed.json()["items"]) == 3
    searched = await client.get(BOOKS, params={"q": payloads[1]["title"]})
    assert [b["id"] for b in searched.json()["items"]] == [report["results"][1]["id"]]


async def test_mixed_lines_write_the_valid_and_report_each_bad_one(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    existing = await create_book(client)
    repeated_isbn = unique_isbn()
    body = ndjson(
        book_payload(isbn=repeated_isbn),  # 1 created
        book_payload(title=""),  # 2 invalid field
        "{not json",  # 3 malformed
        book_payload(isbn=existing["isbn"]),  # 4 duplicate of the catalog
        "",  # 5 blank: skipped, still counted
        book_payload(isbn=repeated_isbn),  # 6 duplicate of line 1
        book_payload(isbn=None),  # 7 created
        book_payload(unknown_field=1),  # 8 invalid: unknown field
    )
    response = await post_import(client, body)
    assert response.status_code == 200, response.text
    report = response.json()
    results = {r["line"]: r for r in report["results"]}
    assert sorted(results) == [1, 2, 3, 4, 6, 7, 8]
    assert (report["created"], report["failed"]) == (2, 5)
    assert results[1]["status"] == results[7]["status"] == "created"
    problems = {line: r["problem"] for line, r in results.items() if r["status"] == "error"}
    assert {line: p["type"].rsplit(":", 1)[1] for line, p in problems.items()} == {
        2: "validation-error",
        3: "malformed-json",
        4: "isbn-conflict",
        6: "isbn-conflict",
        8: "validation-error",
    }
    assert problems[2]["status"] == 422
    assert problems[2]["errors"][0]["loc"] == ["body", 2, "title"]
    assert problems[3]["status"] == 400
    assert problems[4]["status"] == 409
    assert existing["isbn"] in problems[4]["detail"]
    assert "Line 1 " in problems[6]["detail"]
    assert all(p["instance"] == IMPORT for p in problems.values())
    assert all(r.get("id") is None for r in results.values() if r["status"] == "error")
    assert await count_rows(engine, books) == 3


async def test_an_isbn_10_repeated_as_isbn_13_is_a_duplicate(client: httpx.AsyncClient) -> None:
    body = ndjson(book_payload(isbn="0-441-47812-3"), book_payload(isbn="9780441478125"))
    report = (await post_import(client, body)).json()
    assert [r["status"] for r in report["results"]] == ["created", "error"]


async def test_all_or_nothing_with_a_bad_line_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    existing = await create_book(client)
    body = ndjson(
        book_payload(),
        book_payload(page_count=0),
        book_payload(isbn=existing["isbn"]),
        "[1, 2",
    )
    response = await post_import(client, body, mode="all-or-nothing")
    problem = assert_problem(response, 422, "import-rejected", instance=IMPORT)
    assert "3 line(s)" in problem["detail"]
    locations = [error["loc"] for error in problem["errors"]]
    assert locations == [["body", 2, "page_count"], ["body", 3, "isbn"], ["body", 4]]
    assert await count_rows(engine, books) == 1
    assert await count_rows(engine, book_authors) == 1


async def test_all_or_nothing_with_only_good_lines_writes_them_all(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await post_import(
        client, ndjson(book_payload(), book_payload()), mode="all-or-nothing"
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 2
    assert await count_rows(engine, books) == 2


async def test_a_duplicate_found_only_while_inserting_rolls_all_or_nothing_back(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: another request commits the same ISBN between the check and the insert."""
    raced = book_payload()
    await create_book(client, isbn=raced["isbn"])

    async def nothing_in_catalog(*_: Any) -> set[str]:
        return set()

    monkeypatch.setattr(bulk, "_isbns_in_catalog", nothing_in_catalog)
    rejected = await post_import(client, ndjson(book_payload(), raced), mode="all-or-nothing")
    problem = assert_problem(rejected, 422, "import-rejected")
    assert [error["loc"] for error in problem["errors"]] == [["body", 2, "isbn"]]
    assert await count_rows(engine, books) == 1

    partial = await post_import(client, ndjson(book_payload(), raced))
    assert partial.status_code == 200, partial.text
    statuses = [
        (r["status"], (r.get("problem") or {}).get("status")) for r in partial.json()["results"]
    ]
    assert statuses == [("created", None), ("error", 409)]
    assert await count_rows(engine, books) == 2


async def test_concurrent_imports_of_the_same_isbns_never_fail(
    app: FastAPI, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    payloads = [book_payload() for _ in range(20)]
    body = ndjson(*payloads)
    editors = [await make_account(Role.EDITOR) for _ in range(3)]

    async def one(headers: dict[str, str]) -> httpx.Response:
        async with http(app, headers=headers) as client:
            return await post_import(client, body)

    responses = await asyncio.gather(*(one(editor.headers) for editor in editors))
    assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
    assert sum(r.json()["created"] for r in responses) == 20
    assert sum(r.json()["failed"] for r in responses) == 40
    assert await count_rows(engine, books) == 20


async def test_more_lines_than_allowed_is_413_and_writes_nothing(
    database_url: str,
) -> None:
    async with started(make_settings(database_url, import_max_lines=3)) as app:
        editor = await app_account(app, Role.EDITOR)
        async with http(app, headers=editor.headers) as client:
            body = ndjson(*(book_payload() for _ in range(4)))
            assert_problem(await post_import(client, body), 413, "too-many-lines")
            assert await count_rows(app.state.database, books) == 0
            blank_lines_do_not_count = ndjson(*(book_payload() for _ in range(3))) + "\n\n\n"
            assert (await post_import(client, blank_lines_do_not_count)).status_code == 200


async def test_the_import_has_its_own_body_cap(database_url: str) -> None:
    """The import's cap replaces the general one for that route only: 10,000 books fit."""
    settings = make_settings(database_url, max_body_bytes=2048, import_max_body_bytes=8192)
    async with started(settings) as app:
        editor = await app_account(app, Role.EDITOR)
        async with http(app, headers=editor.headers) as client:
            within = ndjson(*(book_payload() for _ in range(10)))
            assert 2048 < len(within) <= 8192
            assert (await post_import(client, within)).json()["created"] == 10
            # The general cap still holds everywhere else.
            one_book = await client.post("/api/v1/books", json=book_payload(description="x" * 3000))
            assert one_book.status_code == 413
            over = ndjson(*(book_payload() for _ in range(40)))
            assert len(over) > 8192
            response = await post_import(client, over)
            assert response.status_code == 413
            assert "8192" in response.json()["detail"]

            # Chunked (no Content-Length) is counted as it streams, against the same cap.
            async def in_chunks() -> AsyncIterator[bytes]:
                for line in over.splitlines():
                    yield line.encode() + b"\n"

            chunked = await client.post(
                IMPORT, content=in_chunks(), headers={"Content-Type": "application/x-ndjson"}
            )
            assert chunked.status_code == 413
        assert await count_rows(app.state.database, books) == 10


async def test_other_content_types_are_refused_with_415(client: httpx.AsyncClient) -> None:
    body = ndjson(book_payload())
    for content_type in ("application/json", "text/plain"):
        response = await client.post(IMPORT, content=body, headers={"Content-Type": content_type})
        assert_problem(response, 415, "unsupported-media-type")
    jsonl = await client.post(IMPORT, content=body, headers={"Content-Type": "application/jsonl"})
    assert jsonl.status_code == 200


async def test_an_empty_import_creates_nothing(client: httpx.AsyncClient) -> None:
    response = await post_import(client, "")
    assert response.status_code == 200
    assert response.json() == {"created": 0, "failed": 0, "results": []}


async def test_unknown_mode_is_422(client: httpx.AsyncClient) -> None:
    response = await post_import(client, ndjson(book_payload()), mode="some")
    assert_problem(response, 422, "validation-error")


async def test_imports_are_credited_to_the_editor(
    make_account: AccountFactory, app: FastAPI
) -> None:
    editor = await make_account(Role.EDITOR)
    async with http(app, headers=editor.headers) as client:
        report = (await post_import(client, ndjson(book_payload()))).json()
        book = (await client.get(f"{BOOKS}/{report['results'][0]['id']}")).json()
    assert book["created_by"] == book["updated_by"] == str(editor.id)


async def test_a_reader_may_not_import(make_account: AccountFactory, app: FastAPI) -> None:
    reader = await make_account(Role.READER)
    async with http(app, headers=reader.headers) as client:
        assert_problem(await post_import(client, ndjson(book_payload())), 403, "forbidden")
    async with http(app) as anonymous:
        assert_problem(
            await post_import(anonymous, ndjson(book_payload())), 401, "not-authenticated"
        )


# --- Idempotency-Key -----------------------------------------------------------------------


async def test_a_retry_with_the_same_key_replays_without_writing_twice(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = ndjson(book_payload(), book_payload(title=""))
    first = await post_import(client, body, **{"Idempotency-Key": "import-1"})
    again = await post_import(client, body, **{"Idempotency-Key": "import-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await count_rows(engine, books) == 1


async def test_the_same_key_with_another_body_or_mode_is_refused(
    client: httpx.AsyncClient,
) -> None:
    body = ndjson(book_payload())
    assert (await post_import(client, body, **{"Idempotency-Key": "k"})).status_code == 200
    other_body = await post_import(client, ndjson(book_payload()), **{"Idempotency-Key": "k"})
    assert_problem(other_body, 422, "idempotency-key-reused")
    other_mode = await post_import(client, body, mode="all-or-nothing", **{"Idempotency-Key": "k"})
    assert_problem(other_mode, 422, "idempotency-key-reused")


async def test_a_rejected_all_or_nothing_import_frees_its_key(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = ndjson(book_payload(), "{bad")
    rejected = await post_import(client, body, mode="all-or-nothing", **{"Idempotency-Key": "r"})
    assert rejected.status_code == 422
    assert await count_rows(engine, idempotency_records) == 0
    retried = await post_import(client, body, mode="all-or-nothing", **{"Idempotency-Key": "r"})
    assert retried.status_code == 422
    assert "Idempotent-Replayed" not in retried.headers
