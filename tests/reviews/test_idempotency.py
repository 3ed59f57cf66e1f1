"""POST /api/v1/books/{book_id}/reviews with Idempotency-Key: replay, key reuse, failures, and
keys that are per book."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.idempotency.models import idempotency_records as records
from bookshelf.reviews.models import reviews
from tests.conftest import Account
from tests.factories import assert_problem, count_rows, create_book, post_review, reviews_path


async def post(
    client: httpx.AsyncClient, book_id: str, payload: dict[str, Any], key: str
) -> httpx.Response:
    return await client.post(reviews_path(book_id), json=payload, headers={"Idempotency-Key": key})


async def stored_record(engine: AsyncEngine, book_id: str, key: str, account: Account) -> Any:
    """Keys are per book and user: the scope names both."""
    scope = f"POST /books/{book_id}/reviews by {account.id}"
    async with engine.connect() as connection:
        statement = select(records).where(records.c.scope == scope, records.c.key == key)
        return (await connection.execute(statement)).first()


async def test_same_key_and_body_replays_the_first_review(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account
) -> None:
    book = await create_book(client)
    payload = {"rating": 5, "body": "Once."}

    first = await post(client, book["id"], payload, "review-1")
    second = await post(client, book["id"], payload, "review-1")

    assert (first.status_code, second.status_code) == (201, 201), first.text
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.content == first.content
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["content-type"] == "application/json"
    assert await count_rows(engine, reviews) == 1
    record = await stored_record(engine, book["id"], "review-1", admin)
    assert (record.status_code, record.response_body) == (201, first.content)


async def test_same_key_with_different_body_returns_422_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    assert (await post(client, book["id"], {"rating": 5}, "reused")).status_code == 201

    response = await post(client, book["id"], {"rating": 1}, "reused")

    assert_problem(response, 422, "idempotency-key-reused")
    assert await count_rows(engine, reviews) == 1


async def test_failed_review_does_not_burn_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account
) -> None:
    book = await create_book(client)
    earlier = await post_review(client, book["id"], {}, rating=2)

    conflict = await post(client, book["id"], {"rating": 4}, "retry")
    assert_problem(conflict, 409, "review-exists")
    assert await stored_record(engine, book["id"], "retry", admin) is None
    deleted = await client.delete(f"{reviews_path(book['id'])}/{earlier['id']}")
    assert deleted.status_code == 204

    retried = await post(client, book["id"], {"rating": 4}, "retry")

    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["rating"] == 4
    assert await count_rows(engine, reviews) == 1


async def test_same_key_for_two_books_reviews_both(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first_book, second_book = await create_book(client), await create_book(client)

    first = await post(client, first_book["id"], {"rating": 3}, "same-key")
    second = await post(client, second_book["id"], {"rating": 3}, "same-key")

    assert (first.status_code, second.status_code) == (201, 201)
    assert "idempotent-replayed" not in second.headers
    assert second.json()["book_id"] == second_book["id"]
    assert await count_rows(engine, reviews) == 2
