"""Races between requests: optimistic locking, unique ISBNs and idempotency keys hold under
concurrency on both databases. Requests are really concurrent: ``asyncio.gather`` interleaves them
in the app at every ``await`` (each has its own connection and transaction)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import book_authors, books
from bookshelf.idempotency.models import idempotency_records
from tests.factories import BOOKS, assert_problem, book_payload, count_rows, unique_isbn

PROBLEM = "application/problem+json"
RACES = 10


async def create(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post(BOOKS, json=book_payload(**overrides))
    assert response.status_code == 201, response.text
    book: dict[str, Any] = response.json()
    return book


async def test_concurrent_patches_with_same_if_match_one_wins_one_gets_412(
    client: httpx.AsyncClient,
) -> None:
    for race in range(RACES):
        book = await create(client, title=f"Original {race}")
        url = f"{BOOKS}/{book['id']}"
        titles = (f"First writer {race}", f"Second writer {race}")
        responses = await asyncio.gather(
            *(
                client.patch(url, json={"title": title}, headers={"If-Match": '"1"'})
                for title in titles
            )
        )

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 412], [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200)
        loser = next(r for r in responses if r.status_code == 412)
        assert_problem(loser, 412, "version-mismatch")
        winning_title = titles[responses.index(winner)]
        assert winner.json()["title"] == winning_title
        assert winner.json()["version"] == 2
        assert winner.headers["etag"] == '"2"'

        stored = await client.get(url)
        assert stored.status_code == 200
        assert stored.json()["title"] == winning_title
        assert stored.json()["version"] == 2
        assert stored.headers["etag"] == '"2"'


async def test_concurrent_deletes_with_same_if_match_delete_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for _ in range(3):
        book = await create(client)
        url = f"{BOOKS}/{book['id']}"
        responses = await asyncio.gather(
            client.delete(url, headers={"If-Match": '"1"'}),
            client.delete(url, headers={"If-Match": '"1"'}),
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [204, 404], [r.text for r in responses]
        assert (await client.get(url)).status_code == 404
    assert await count_rows(engine, books) == 0
    assert await count_rows(engine, book_authors) == 0


async def test_concurrent_creates_with_same_isbn_store_one_book(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for race in range(5):
        isbn = unique_isbn()
        responses = await asyncio.gather(
            client.post(BOOKS, json=book_payload(isbn=isbn, title=f"One {race}")),
            client.post(BOOKS, json=book_payload(isbn=isbn, title=f"Two {race}")),
        )

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409], [r.text for r in responses]
        assert_problem(next(r for r in responses if r.status_code == 409), 409, "isbn-conflict")
        created = next(r for r in responses if r.status_code == 201).json()
        assert await count_rows(engine, books, books.c.isbn == isbn) == 1
        listed = await client.get(BOOKS, params={"isbn": isbn})
        assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    assert await count_rows(engine, books) == 5
    assert await count_rows(engine, book_authors) == 5


async def test_twenty_concurrent_creates_store_twenty_books(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    payloads = [book_payload(title=f"Parallel {n}", authors=[f"Author {n}"]) for n in range(20)]
    responses = await asyncio.gather(*(client.post(BOOKS, json=p) for p in payloads))

    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 20
    assert await count_rows(engine, books) == 20
    assert await count_rows(engine, book_authors) == 20
    listed = await client.get(BOOKS, params={"limit": 100})
    assert sorted(item["isbn"] for item in listed.json()["items"]) == sorted(
        p["isbn"] for p in payloads
    )


async def test_concurrent_creates_with_same_idempotency_key_store_one_book(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for race in range(RACES):
        payload = book_payload(title=f"Idempotent {race}")
        headers = {"Idempotency-Key": f"race-{race}"}
        responses = await asyncio.gather(
            client.post(BOOKS, json=payload, headers=headers),
            client.post(BOOKS, json=payload, headers=headers),
        )

        statuses = sorted(r.status_code for r in responses)
        assert statuses in ([201, 201], [201, 409]), [r.text for r in responses]
        first = next(r for r in responses if r.status_code == 201)
        other = responses[1 - responses.index(first)]
        if other.status_code == 201:
            # One request arrived after the other completed: it is a replay of the first.
            replayed = [r.headers.get("idempotent-replayed") for r in responses]
            assert sorted(replayed, key=str) == [None, "true"], replayed
            assert other.json() == first.json()
            assert other.headers["location"] == first.headers["location"]
        else:
            assert_problem(other, 409, "idempotency-key-in-flight")
        assert await count_rows(engine, books, books.c.isbn == payload["isbn"]) == 1

        # Once the race is over, a retry always replays the stored response.
        retry = await client.post(BOOKS, json=payload, headers=headers)
        assert retry.status_code == 201
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json() == first.json()

    assert await count_rows(engine, books) == RACES
    assert await count_rows(engine, idempotency_records) == RACES


async def test_concurrent_creates_with_same_idempotency_key_and_other_body_never_store_both(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for race in range(5):
        headers = {"Idempotency-Key": f"mixed-{race}"}
        responses = await asyncio.gather(
            client.post(BOOKS, json=book_payload(title=f"Left {race}"), headers=headers),
            client.post(BOOKS, json=book_payload(title=f"Right {race}"), headers=headers),
        )

        statuses = sorted(r.status_code for r in responses)
        assert statuses in ([201, 409], [201, 422]), [r.text for r in responses]
        loser = next(r for r in responses if r.status_code != 201)
        slug = "idempotency-key-in-flight" if loser.status_code == 409 else "idempotency-key-reused"
        assert_problem(loser, loser.status_code, slug)
    assert await count_rows(engine, books) == 5
