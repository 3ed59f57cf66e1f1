"""PATCH /api/v1/books/{id}: JSON merge patch, versions and If-Match, conflicts, what is stored."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import book_subjects, books
from tests.factories import BOOKS, assert_problem, create_book

MERGE_PATCH = "application/merge-patch+json"


async def patch(
    client: httpx.AsyncClient, book_id: str, body: Any, **headers: str
) -> httpx.Response:
    return await client.patch(f"{BOOKS}/{book_id}", json=body, headers=headers)


async def stored_book(engine: AsyncEngine, book_id: str) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(select(books).where(books.c.id == UUID(book_id)))).one()


async def ids_of(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get(BOOKS, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in after.items() if before[k] != v}


# --- merge patch semantics -------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", MERGE_PATCH])
async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, engine: AsyncEngine, content_type: str
) -> None:
    book = await create_book(client, title="Old", page_count=100)

    response = await client.patch(
        f"{BOOKS}/{book['id']}",
        content=b'{"title": "  New  ", "page_count": 120}',
        headers={"Content-Type": content_type},
    )

    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'
    body = response.json()
    changed = changed_fields(book, body)
    assert set(changed) == {"title", "page_count", "version", "updated_at"}
    assert (body["title"], body["page_count"], body["version"]) == ("New", 120, 2)
    row = await stored_book(engine, book["id"])
    assert (row.title, row.page_count, row.version, row.publisher) == ("New", 120, 2, "Ace Books")
    assert (await client.get(f"{BOOKS}/{book['id']}")).json() == body


@pytest.mark.parametrize(
    "field",
    ["subtitle", "isbn", "publisher", "published_date", "page_count", "language", "description"],
)
async def test_patch_null_clears_an_optional_field(
    client: httpx.AsyncClient, engine: AsyncEngine, field: str
) -> None:
    book = await create_book(client, subtitle="A subtitle")

    response = await patch(client, book["id"], {field: None})

    assert response.status_code == 200
    assert response.json()[field] is None
    assert response.json()["version"] == 2
    assert getattr(await stored_book(engine, book["id"]), field) is None


async def test_patch_subjects_null_empties_the_list_and_its_index(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client, subjects=["fantasy", "classics"])

    response = await patch(client, book["id"], {"subjects": None})

    assert response.status_code == 200
    assert response.json()["subjects"] == []
    async with engine.connect() as connection:
        keys = await connection.execute(
            select(book_subjects).where(book_subjects.c.book_id == UUID(book["id"]))
        )
        assert keys.all() == []
    assert await ids_of(client, subject="fantasy") == []


@pytest.mark.parametrize("field", ["title", "authors"])
async def test_patch_null_on_a_required_field_returns_422_and_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, field: str
) -> None:
    book = await create_book(client, title="Kept")

    response = await patch(client, book["id"], {field: None, "publisher": "Other"})

    assert_problem(response, 422, "validation-error")
    assert field in response.json()["errors"][0]["msg"]
    row = await stored_book(engine, book["id"])
    assert (row.title, row.authors, row.publisher, row.version) == (
        "Kept",
        book["authors"],
        "Ace Books",
        1,
    )


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"colour": "blue"}, ["body", "colour"]),
        ({"page_count": "12"}, ["body", "page_count"]),
        ({"title": "   "}, ["body", "title"]),
        ({"isbn": "0-261-10221-5"}, ["body", "isbn"]),
        ({"authors": []}, ["body", "authors"]),
        ({"language": "xx"}, ["body", "language"]),
        ({"title": "Nul\u0000"}, ["body", "title"]),
    ],
)
async def test_patch_with_invalid_field_returns_422_naming_it(
    client: httpx.AsyncClient, engine: AsyncEngine, body: dict[str, Any], loc: list[str]
) -> None:
    book = await create_book(client)

    response = await patch(client, book["id"], body)

    assert_problem(response, 422, "validation-error")
    assert loc in [error["loc"] for error in response.json()["errors"]]
    assert (await stored_book(engine, book["id"])).version == 1


async def test_patch_normalises_fields_like_create(client: httpx.AsyncClient) -> None:
    book = await create_book(client)

    response = await patch(client, book["id"], {"isbn": "0-261-10221-4", "language": "FR"})

    assert response.status_code == 200
    assert (response.json()["isbn"], response.json()["language"]) == ("9780261102217", "fr")


async def test_patch_with_text_plain_returns_415(client: httpx.AsyncClient) -> None:
    book = await create_book(client)

    response = await client.patch(
        f"{BOOKS}/{book['id']}", content=b'{"title": "x"}', headers={"Content-Type": "text/plain"}
    )

    assert_problem(response, 415, "unsupported-media-type")


# --- versions and timestamps -----------------------------------------------------------------


async def test_patch_bumps_version_and_updated_at_but_not_created_at(
    client: httpx.AsyncClient,
) -> None:
    book = await create_book(client)

    first = (await patch(client, book["id"], {"title": "Two"})).json()
    second = await patch(client, book["id"], {"title": "Three"})

    assert second.headers["etag"] == '"3"'
    assert (first["version"], second.json()["version"]) == (2, 3)
    assert second.json()["created_at"] == book["created_at"]
    created = datetime.fromisoformat(book["created_at"])
    assert created < datetime.fromisoformat(first["updated_at"])
    assert datetime.fromisoformat(first["updated_at"]) < datetime.fromisoformat(
        second.json()["updated_at"]
    )


async def test_empty_patch_returns_200_and_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client)

    response = await patch(client, book["id"], {})

    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.json() == book
    assert (await stored_book(engine, book["id"])).version == 1


# --- If-Match --------------------------------------------------------------------------------


@pytest.mark.parametrize("if_match", ['"1"', "*", '"9", "1"'])
async def test_patch_with_matching_if_match_returns_200(
    client: httpx.AsyncClient, if_match: str
) -> None:
    book = await create_book(client)

    response = await patch(client, book["id"], {"title": "Changed"}, **{"If-Match": if_match})

    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'
    assert response.json()["title"] == "Changed"


@pytest.mark.parametrize("if_match", ['"2"', 'W/"1"', "1", '""', '"99999999999999999999"'])
async def test_patch_with_stale_or_weak_etag_returns_412_and_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, if_match: str
) -> None:
    book = await create_book(client, title="Kept")

    response = await patch(client, book["id"], {"title": "Lost"}, **{"If-Match": if_match})

    assert_problem(response, 412, "version-mismatch")
    row = await stored_book(engine, book["id"])
    assert (row.title, row.version) == ("Kept", 1)


async def test_patch_with_etag_of_previous_version_returns_412(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    assert (await patch(client, book["id"], {"title": "Second"}, **{"If-Match": '"1"'})).is_success

    response = await patch(client, book["id"], {"title": "Third"}, **{"If-Match": '"1"'})

    assert_problem(response, 412, "version-mismatch")
    row = await stored_book(engine, book["id"])
    assert (row.title, row.version) == ("Second", 2)


async def test_empty_patch_with_stale_etag_returns_412(client: httpx.AsyncClient) -> None:
    book = await create_book(client)

    response = await patch(client, book["id"], {}, **{"If-Match": '"5"'})

    assert_problem(response, 412, "version-mismatch")


# --- conflicts and unknown books -------------------------------------------------------------


async def test_patch_isbn_to_another_books_returns_409_and_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    taken = await create_book(client, isbn="9780261102217")
    book = await create_book(client, title="Mine")

    response = await patch(client, book["id"], {"isbn": "0-261-10221-4", "title": "Changed"})

    assert_problem(response, 409, "isbn-conflict")
    row = await stored_book(engine, book["id"])
    assert (row.isbn, row.title, row.version) == (book["isbn"], "Mine", 1)
    assert (await stored_book(engine, taken["id"])).isbn == "9780261102217"


async def test_patch_isbn_to_its_own_value_succeeds(client: httpx.AsyncClient) -> None:
    book = await create_book(client)

    response = await patch(client, book["id"], {"isbn": book["isbn"]})

    assert response.status_code == 200
    assert response.json()["isbn"] == book["isbn"]


@pytest.mark.parametrize("body", [{"title": "x"}, {}])
async def test_patch_unknown_book_returns_404(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    path = f"{BOOKS}/{uuid.uuid4()}"

    response = await client.patch(path, json=body)

    assert_problem(response, 404, "book-not-found")
    assert response.json()["instance"] == path


async def test_patch_malformed_id_returns_404(client: httpx.AsyncClient) -> None:
    assert_problem(await patch(client, "abc", {"title": "x"}), 404, "book-not-found")


# --- derived data follows the patch ----------------------------------------------------------


async def test_patch_authors_and_subjects_changes_what_filters_find(
    client: httpx.AsyncClient,
) -> None:
    book = await create_book(client, authors=["Old Author"], subjects=["old-topic"])

    response = await patch(
        client, book["id"], {"authors": ["New Author", "Co Author"], "subjects": ["New-Topic"]}
    )

    assert response.status_code == 200
    assert await ids_of(client, author="old author") == []
    assert await ids_of(client, subject="old-topic") == []
    assert await ids_of(client, author="new author") == [book["id"]]
    assert await ids_of(client, author="CO AUTHOR") == [book["id"]]
    assert await ids_of(client, subject="new-topic") == [book["id"]]


async def test_patch_title_and_date_move_the_book_in_sorted_lists(
    client: httpx.AsyncClient,
) -> None:
    book = await create_book(client, title="Aardvark", published_date="1900")
    other = await create_book(client, title="Middle", published_date="1950")

    response = await patch(client, book["id"], {"title": "zebra", "published_date": None})

    assert response.status_code == 200
    assert await ids_of(client, sort="title") == [other["id"], book["id"]]
    assert await ids_of(client, sort="published_date") == [other["id"], book["id"]]
    assert await ids_of(client, published_to="2000") == [other["id"]]
