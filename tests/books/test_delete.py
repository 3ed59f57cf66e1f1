"""DELETE /api/v1/books/{id}: 204, gone afterwards, If-Match, and cascading index rows."""

from __future__ import annotations

import uuid
from uuid import UUID

import httpx
import pytest
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import book_authors, book_subjects, books
from tests.factories import BOOKS, assert_problem, book_payload, count_rows, create_book


async def rows_of(engine: AsyncEngine, table: Table, book_id: str) -> int:
    column = table.c.id if table is books else table.c.book_id
    return await count_rows(engine, table, column == UUID(book_id))


async def test_delete_returns_204_with_empty_body(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client)

    response = await client.delete(f"{BOOKS}/{book['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert await rows_of(engine, books, book["id"]) == 0


async def test_deleted_book_is_gone_from_get_list_and_search(client: httpx.AsyncClient) -> None:
    book = await create_book(client, title="Vanishing Act")
    kept = await create_book(client, title="Staying Power")

    assert (await client.delete(f"{BOOKS}/{book['id']}")).status_code == 204

    assert_problem(await client.get(f"{BOOKS}/{book['id']}"), 404, "book-not-found")
    listed = (await client.get(BOOKS)).json()["items"]
    assert [item["id"] for item in listed] == [kept["id"]]
    found = (await client.get(BOOKS, params={"q": "vanishing"})).json()["items"]
    assert found == []


async def test_second_delete_returns_404(client: httpx.AsyncClient) -> None:
    book = await create_book(client)
    assert (await client.delete(f"{BOOKS}/{book['id']}")).status_code == 204

    response = await client.delete(f"{BOOKS}/{book['id']}")

    assert_problem(response, 404, "book-not-found")
    assert response.json()["instance"] == f"{BOOKS}/{book['id']}"


@pytest.mark.parametrize(
    "book_id", ["0b6f3d1e-4a52-4c8e-9f10-2d7a5c9e8b41", "abc", "1; DROP TABLE books"]
)
async def test_delete_unknown_or_malformed_id_returns_404(
    client: httpx.AsyncClient, engine: AsyncEngine, book_id: str
) -> None:
    book = await create_book(client)

    response = await client.delete(f"{BOOKS}/{book_id}")

    assert_problem(response, 404, "book-not-found")
    assert await rows_of(engine, books, book["id"]) == 1


@pytest.mark.parametrize("if_match", ['"2"', 'W/"1"', '"0"'])
async def test_delete_with_stale_if_match_returns_412_and_keeps_the_book(
    client: httpx.AsyncClient, engine: AsyncEngine, if_match: str
) -> None:
    book = await create_book(client)

    response = await client.delete(f"{BOOKS}/{book['id']}", headers={"If-Match": if_match})

    assert_problem(response, 412, "version-mismatch")
    assert await rows_of(engine, books, book["id"]) == 1
    assert (await client.get(f"{BOOKS}/{book['id']}")).json() == book


async def test_delete_with_etag_of_previous_version_returns_412(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    assert (await client.patch(f"{BOOKS}/{book['id']}", json={"title": "v2"})).is_success

    response = await client.delete(f"{BOOKS}/{book['id']}", headers={"If-Match": '"1"'})

    assert_problem(response, 412, "version-mismatch")
    assert await rows_of(engine, books, book["id"]) == 1


@pytest.mark.parametrize("if_match", ['"1"', "*"])
async def test_delete_with_matching_if_match_returns_204(
    client: httpx.AsyncClient, engine: AsyncEngine, if_match: str
) -> None:
    book = await create_book(client)

    response = await client.delete(f"{BOOKS}/{book['id']}", headers={"If-Match": if_match})

    assert response.status_code == 204
    assert await rows_of(engine, books, book["id"]) == 0


async def test_delete_with_stale_if_match_on_unknown_book_returns_404(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete(f"{BOOKS}/{uuid.uuid4()}", headers={"If-Match": '"1"'})

    assert_problem(response, 404, "book-not-found")


async def test_delete_removes_the_books_author_and_subject_rows(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client, authors=["A One", "B Two"], subjects=["x", "y", "z"])
    other = await create_book(client, authors=["A One"], subjects=["x"])
    assert await rows_of(engine, book_authors, book["id"]) == 2
    assert await rows_of(engine, book_subjects, book["id"]) == 3

    assert (await client.delete(f"{BOOKS}/{book['id']}")).status_code == 204

    assert await rows_of(engine, book_authors, book["id"]) == 0
    assert await rows_of(engine, book_subjects, book["id"]) == 0
    assert await rows_of(engine, book_authors, other["id"]) == 1
    assert await rows_of(engine, book_subjects, other["id"]) == 1
    listed = (await client.get(BOOKS, params={"author": "a one"})).json()["items"]
    assert [item["id"] for item in listed] == [other["id"]]


async def test_delete_frees_the_isbn_for_a_new_book(client: httpx.AsyncClient) -> None:
    book = await create_book(client, isbn="9780261102217")
    assert (await client.delete(f"{BOOKS}/{book['id']}")).status_code == 204

    response = await client.post(BOOKS, json=book_payload(isbn="0-261-10221-4"))

    assert response.status_code == 201
    assert response.json()["isbn"] == "9780261102217"
