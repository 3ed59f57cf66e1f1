"""GET /api/v1/books/{id}: the book, its ETag, conditional requests and unknown ids."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.factories import BOOKS, create_book


def assert_book_not_found(response: httpx.Response, path: str) -> None:
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:bookshelf:problem:book-not-found"
    assert problem["title"] == "Book not found"
    assert problem["status"] == 404
    assert problem["instance"] == path


async def test_get_returns_the_book_with_its_etag(client: httpx.AsyncClient) -> None:
    book = await create_book(client, title="The Left Hand of Darkness")

    response = await client.get(f"{BOOKS}/{book['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == '"1"'
    assert response.json() == book


async def test_get_returns_only_the_requested_book(client: httpx.AsyncClient) -> None:
    first = await create_book(client, title="First")
    second = await create_book(client, title="Second")

    assert (await client.get(f"{BOOKS}/{first['id']}")).json() == first
    assert (await client.get(f"{BOOKS}/{second['id']}")).json() == second


async def test_get_accepts_the_id_in_upper_case(client: httpx.AsyncClient) -> None:
    book = await create_book(client)

    response = await client.get(f"{BOOKS}/{book['id'].upper()}")

    assert response.status_code == 200
    assert response.json()["id"] == book["id"]


@pytest.mark.parametrize("if_none_match", ['"1"', 'W/"1"', '"7", "1"', "*"])
async def test_get_with_if_none_match_of_current_etag_returns_304_without_body(
    client: httpx.AsyncClient, if_none_match: str
) -> None:
    book = await create_book(client)

    response = await client.get(f"{BOOKS}/{book['id']}", headers={"If-None-Match": if_none_match})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"1"'


@pytest.mark.parametrize("if_none_match", ['"2"', '"0"', "1", '"1 "', "garbage"])
async def test_get_with_if_none_match_of_another_etag_returns_200(
    client: httpx.AsyncClient, if_none_match: str
) -> None:
    book = await create_book(client)

    response = await client.get(f"{BOOKS}/{book['id']}", headers={"If-None-Match": if_none_match})

    assert response.status_code == 200
    assert response.json() == book
    assert response.headers["etag"] == '"1"'


async def test_get_with_etag_from_before_an_update_returns_200_and_new_etag(
    client: httpx.AsyncClient,
) -> None:
    book = await create_book(client)
    patched = await client.patch(f"{BOOKS}/{book['id']}", json={"title": "Renamed"})
    assert patched.status_code == 200

    response = await client.get(f"{BOOKS}/{book['id']}", headers={"If-None-Match": '"1"'})

    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'
    assert response.json()["title"] == "Renamed"
    again = await client.get(f"{BOOKS}/{book['id']}", headers={"If-None-Match": '"2"'})
    assert again.status_code == 304


async def test_get_unknown_id_returns_404_problem(client: httpx.AsyncClient) -> None:
    await create_book(client)
    path = f"{BOOKS}/{uuid.uuid4()}"

    response = await client.get(path)

    assert_book_not_found(response, path)


@pytest.mark.parametrize(
    "book_id",
    ["abc", "1", "1; DROP TABLE books", "' OR '1'='1", "00000000-0000-0000-0000-00000000000g"],
)
async def test_get_malformed_id_returns_404_problem(
    client: httpx.AsyncClient, book_id: str
) -> None:
    book = await create_book(client)

    response = await client.get(f"{BOOKS}/{book_id}")

    assert_book_not_found(response, response.request.url.path)
    assert (await client.get(f"{BOOKS}/{book['id']}")).status_code == 200
