"""A book's rating_count and rating_average always agree with its reviews, its version (ETag)
moves with them, and concurrent review writes never lose an update."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import books
from bookshelf.reviews.models import reviews
from tests.conftest import AccountFactory, StatementCounter
from tests.factories import BOOKS, assert_problem, create_book, post_review, reviews_path


async def totals_in_db(engine: AsyncEngine, book_id: str) -> tuple[int, int, int, int]:
    """(rating_count, rating_sum) stored on the book, and COUNT/SUM over its reviews."""
    key = uuid.UUID(book_id)
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                select(books.c.rating_count, books.c.rating_sum).where(books.c.id == key)
            )
        ).one()
        counted = (
            await connection.execute(
                select(func.count(), func.coalesce(func.sum(reviews.c.rating), 0)).where(
                    reviews.c.book_id == key
                )
            )
        ).one()
    return stored[0], stored[1], counted[0], counted[1]


async def assert_consistent(
    client: httpx.AsyncClient, engine: AsyncEngine, book_id: str
) -> dict[str, Any]:
    """The book (API and row) says exactly what its reviews say; returns the book."""
    stored_count, stored_sum, count, total = await totals_in_db(engine, book_id)
    assert (stored_count, stored_sum) == (count, total)
    book: dict[str, Any] = (await client.get(f"{BOOKS}/{book_id}")).json()
    assert book["rating_count"] == count
    if count == 0:
        assert book["rating_average"] is None
    else:
        assert book["rating_average"] == pytest.approx(total / count, abs=0.005)
        assert book["rating_average"] == round(book["rating_average"], 2)
    return book


async def rating_of(client: httpx.AsyncClient, book_id: str) -> tuple[int, float | None, int]:
    book = (await client.get(f"{BOOKS}/{book_id}")).json()
    return book["rating_count"], book["rating_average"], book["version"]


async def test_a_new_book_has_no_ratings(client: httpx.AsyncClient) -> None:
    book = await create_book(client)

    assert (book["rating_count"], book["rating_average"]) == (0, None)
    assert await rating_of(client, book["id"]) == (0, None, 1)


async def test_totals_follow_creates_updates_and_deletes(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    reader_a, reader_b, reader_c = [await make_account() for _ in range(3)]
    ra = await post_review(client, book["id"], reader_a.headers, rating=5)
    assert await rating_of(client, book["id"]) == (1, 5.0, 2)
    rb = await post_review(client, book["id"], reader_b.headers, rating=4)
    await post_review(client, book["id"], reader_c.headers, rating=4)
    assert await rating_of(client, book["id"]) == (3, 4.33, 4)

    changed = await client.patch(
        f"{reviews_path(book['id'])}/{rb['id']}", json={"rating": 1}, headers=reader_b.headers
    )
    assert changed.status_code == 200
    assert await rating_of(client, book["id"]) == (3, 3.33, 5)

    deleted = await client.delete(f"{reviews_path(book['id'])}/{ra['id']}")  # the admin
    assert deleted.status_code == 204
    assert await rating_of(client, book["id"]) == (2, 2.5, 6)
    await assert_consistent(client, engine, book["id"])


async def test_changing_only_the_text_keeps_the_totals(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    reader = await make_account()
    review = await post_review(client, book["id"], reader.headers, rating=3)

    response = await client.patch(
        f"{reviews_path(book['id'])}/{review['id']}",
        json={"body": "Now with words.", "rating": 3},
        headers=reader.headers,
    )

    assert response.status_code == 200
    assert (await rating_of(client, book["id"]))[:2] == (1, 3.0)
    await assert_consistent(client, engine, book["id"])


async def test_failed_review_writes_leave_the_totals_alone(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    reader, other = await make_account(), await make_account()
    review = await post_review(client, book["id"], reader.headers, rating=2)
    path = f"{reviews_path(book['id'])}/{review['id']}"

    duplicate = await client.post(
        reviews_path(book["id"]), json={"rating": 5}, headers=reader.headers
    )
    foreign_patch = await client.patch(path, json={"rating": 5}, headers=other.headers)
    foreign_delete = await client.delete(path, headers=other.headers)

    assert_problem(duplicate, 409, "review-exists")
    assert_problem(foreign_patch, 404, "review-not-found")
    assert_problem(foreign_delete, 404, "review-not-found")
    assert await rating_of(client, book["id"]) == (1, 2.0, 2)
    await assert_consistent(client, engine, book["id"])


async def test_the_book_list_shows_the_ratings_in_one_statement(
    client: httpx.AsyncClient, make_account: AccountFactory, sql_statements: StatementCounter
) -> None:
    rated, unrated = await create_book(client, title="Rated"), await create_book(client)
    for rating in (5, 2):
        await post_review(client, rated["id"], (await make_account()).headers, rating=rating)
    sql_statements.statements.clear()

    response = await client.get(BOOKS, params={"limit": 10})

    assert response.status_code == 200
    assert sql_statements.count == 1, sql_statements.statements
    by_id = {item["id"]: item for item in response.json()["items"]}
    assert (by_id[rated["id"]]["rating_count"], by_id[rated["id"]]["rating_average"]) == (2, 3.5)
    assert (by_id[unrated["id"]]["rating_count"], by_id[unrated["id"]]["rating_average"]) == (
        0,
        None,
    )


async def test_a_review_changes_the_books_etag(
    client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    path = f"{BOOKS}/{book['id']}"
    first = await client.get(path)
    assert first.headers["etag"] == '"1"'

    await post_review(client, book["id"], (await make_account()).headers, rating=4)

    after = await client.get(path, headers={"If-None-Match": '"1"'})
    assert after.status_code == 200
    assert after.headers["etag"] == '"2"'
    assert after.json()["version"] == 2
    stale = await client.patch(path, json={"title": "Lost update"}, headers={"If-Match": '"1"'})
    assert_problem(stale, 412, "version-mismatch")
    assert (await client.get(path, headers={"If-None-Match": '"2"'})).status_code == 304


async def test_deleting_a_book_deletes_its_reviews(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book, kept = await create_book(client), await create_book(client)
    for target in (book, book, kept):
        await post_review(client, target["id"], (await make_account()).headers)

    assert (await client.delete(f"{BOOKS}/{book['id']}")).status_code == 204

    async with engine.connect() as connection:
        left = (await connection.execute(select(reviews.c.book_id))).scalars().all()
    assert left == [uuid.UUID(kept["id"])]
    assert_problem(await client.get(reviews_path(book["id"])), 404, "book-not-found")


# --- concurrency -----------------------------------------------------------------------------

RATINGS = [5, 4, 3, 5, 2, 1, 4, 5, 3, 4, 5, 2]  # sum 43: 43 / 12 = 3.5833...


async def test_concurrent_reviews_of_one_book_are_all_counted(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    readers = [await make_account() for _ in RATINGS]

    responses = await asyncio.gather(
        *(
            client.post(reviews_path(book["id"]), json={"rating": r}, headers=reader.headers)
            for reader, r in zip(readers, RATINGS, strict=True)
        )
    )

    assert [response.status_code for response in responses] == [201] * 12
    assert await rating_of(client, book["id"]) == (12, 3.58, 13)
    assert await totals_in_db(engine, book["id"]) == (12, 43, 12, 43)


async def test_concurrent_duplicate_reviews_create_exactly_one(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    reader = await make_account()

    responses = await asyncio.gather(
        *(
            client.post(reviews_path(book["id"]), json={"rating": r}, headers=reader.headers)
            for r in (1, 2, 3, 4)
        )
    )

    assert sorted(response.status_code for response in responses) == [201, 409, 409, 409]
    winner = next(response.json() for response in responses if response.status_code == 201)
    assert await rating_of(client, book["id"]) == (1, float(winner["rating"]), 2)
    await assert_consistent(client, engine, book["id"])


async def test_concurrent_creates_updates_and_deletes_end_consistent(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    path = reviews_path(book["id"])
    existing = [await make_account() for _ in range(6)]
    written = [
        await post_review(client, book["id"], account.headers, rating=rating)
        for account, rating in zip(existing, (5, 5, 4, 3, 2, 1), strict=True)
    ]
    newcomers = [await make_account() for _ in range(6)]

    requests = [
        *(client.delete(f"{path}/{written[i]['id']}", headers=existing[i].headers) for i in (0, 2)),
        client.delete(f"{path}/{written[4]['id']}"),  # the admin moderates
        *(
            client.patch(
                f"{path}/{written[i]['id']}", json={"rating": 5}, headers=existing[i].headers
            )
            for i in (3, 5)
        ),
        *(
            client.post(path, json={"rating": rating}, headers=account.headers)
            for account, rating in zip(newcomers, (1, 2, 3, 4, 5, 5), strict=True)
        ),
    ]
    responses = await asyncio.gather(*requests)

    assert [response.status_code for response in responses] == [204] * 3 + [200] * 2 + [201] * 6
    # Left: 5 (#1), 5 (#3, was 3), 5 (#5, was 1) and the six new ones (20): 9 reviews, sum 35.
    assert await totals_in_db(engine, book["id"]) == (9, 35, 9, 35)
    book_now = await assert_consistent(client, engine, book["id"])
    assert (book_now["rating_count"], book_now["rating_average"]) == (9, 3.89)
    assert book_now["version"] == 1 + 6 + 11


async def test_deleting_a_review_while_its_author_reviews_again_never_fails(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    """Two tabs: one deletes the review, the other posts a new one. Whichever runs first, the
    delete succeeds and the post is 201 or 409; neither may fail with a 5xx (e.g. a deadlock
    between the book row and the review's unique key)."""
    book = await create_book(client)
    reader = await make_account()
    path = reviews_path(book["id"])
    for attempt in range(10):
        old = await post_review(client, book["id"], reader.headers, rating=3)

        created, deleted = await asyncio.gather(
            client.post(path, json={"rating": 4}, headers=reader.headers),
            client.delete(f"{path}/{old['id']}", headers=reader.headers),
        )

        outcome = (created.status_code, deleted.status_code)
        assert outcome in {(201, 204), (409, 204)}, (attempt, created.text, deleted.text)
        if created.status_code == 201:
            cleanup = await client.delete(created.headers["location"], headers=reader.headers)
            assert cleanup.status_code == 204
    await assert_consistent(client, engine, book["id"])
