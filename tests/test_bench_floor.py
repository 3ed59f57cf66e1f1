"""The bench's floor app (bench/floor.py) must answer the benchmarked requests exactly as
Bookshelf does, or its ratio means nothing: same rows, same order, same JSON, same writes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bench import floor
from bookshelf.books.seed import seed_books
from bookshelf.users.schemas import Role
from tests.conftest import empty_tables, make_settings
from tests.factories import app_account
from tests.ops.support import started

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def bookshelf(postgresql_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(postgresql_url)
    async with started(settings) as app:
        await seed_books(app.state.database, 300, seed=7, batch_size=300)
        yield app
    await empty_tables(postgresql_url)


@pytest.fixture
async def floor_app(
    bookshelf: FastAPI, postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    settings = bookshelf.state.settings
    monkeypatch.setenv("FLOOR_DATABASE_URL", postgresql_url.replace("+asyncpg", ""))
    monkeypatch.setenv("FLOOR_JWT_SECRET", settings.jwt_secrets[0])
    monkeypatch.setenv("FLOOR_JWT_ISSUER", settings.jwt_issuer)
    monkeypatch.setenv("FLOOR_JWT_AUDIENCE", settings.jwt_audience)
    monkeypatch.setenv("FLOOR_POOL_SIZE", "2")
    async with floor.app.router.lifespan_context(floor.app):
        yield floor.app


def _client(app: Any, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


def _normalised(value: Any) -> Any:
    """Timestamps compared as instants (pydantic writes ``Z``, orjson ``+00:00``)."""
    if isinstance(value, dict):
        return {key: _normalised(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?language=fr&sort=-published_date",
        "?sort=title&limit=7",
        "author",
        "?q=garden",
        "?q=the+garden",
    ],
)
async def test_floor_lists_what_bookshelf_lists(
    bookshelf: FastAPI, floor_app: Any, query: str
) -> None:
    async with _client(bookshelf) as real, _client(floor_app) as fake:
        if query == "author":  # an author the seeded catalog has
            first = (await real.get("/api/v1/books?limit=1")).json()["items"][0]
            query = "?" + httpx.QueryParams(author=first["authors"][0]).__str__()
        expected = await real.get("/api/v1/books" + query)
        answered = await fake.get("/api/v1/books" + query)
    assert expected.status_code == answered.status_code == 200
    assert expected.json()["items"], "the case should list something"
    assert _normalised(answered.json()) == _normalised(expected.json())


async def test_floor_reads_a_book_and_the_signed_in_user_like_bookshelf(
    bookshelf: FastAPI, floor_app: Any
) -> None:
    headers = (await app_account(bookshelf, Role.EDITOR)).headers
    async with _client(bookshelf, headers) as real, _client(floor_app, headers) as fake:
        book_id = (await real.get("/api/v1/books?limit=1")).json()["items"][0]["id"]
        for path in (f"/api/v1/books/{book_id}", "/api/v1/users/me"):
            expected, answered = await real.get(path), await fake.get(path)
            assert expected.status_code == answered.status_code == 200
            assert _normalised(answered.json()) == _normalised(expected.json())
            assert answered.headers.get("etag") == expected.headers.get("etag")


async def test_floor_writes_what_bookshelf_writes(bookshelf: FastAPI, floor_app: Any) -> None:
    headers = (await app_account(bookshelf, Role.EDITOR)).headers
    payload = {
        "title": "The Benchmarked Garden",
        "authors": ["Ada Tanaka", "Floor Q. Author"],
        "language": "en",
        "subjects": ["computing"],
    }
    async with _client(bookshelf, headers) as real, _client(floor_app, headers) as fake:
        by_floor = await fake.post("/api/v1/books", json=payload)
        by_bookshelf = await real.post("/api/v1/books", json=payload)
        assert by_floor.status_code == by_bookshelf.status_code == 201
        # The floor's book, read back through Bookshelf, is the same book, found the same ways.
        stored = (await real.get(by_floor.headers["location"])).json()
        ignored = {"id", "created_at", "updated_at"}
        mine = by_bookshelf.json()
        assert {k: v for k, v in stored.items() if k not in ignored} == {
            k: v for k, v in mine.items() if k not in ignored
        }
        found = (await real.get("/api/v1/books?author=floor%20q.%20author")).json()["items"]
        assert {book["id"] for book in found} == {stored["id"], mine["id"]}

        # PATCH with If-Match: the same guarded update; a stale ETag changes nothing.
        book = f"/api/v1/books/{stored['id']}"
        patched = await fake.patch(book, json={"title": "Renamed"}, headers={"If-Match": '"1"'})
        stale = await fake.patch(book, json={"title": "Again"}, headers={"If-Match": '"1"'})
        assert (patched.status_code, stale.status_code) == (200, 412)
        after = (await real.get(book)).json()
        assert (after["title"], after["version"]) == ("Renamed", 2)
        assert _normalised(patched.json()) == _normalised(after)


async def test_unknown_book_is_not_found_by_either(bookshelf: FastAPI, floor_app: Any) -> None:
    path = f"/api/v1/books/{uuid.uuid4()}"
    async with _client(bookshelf) as real, _client(floor_app) as fake:
        assert (await real.get(path)).status_code == (await fake.get(path)).status_code == 404
