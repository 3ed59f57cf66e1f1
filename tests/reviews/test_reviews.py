"""/api/v1/books/{book_id}/reviews: create, read, list, change and delete reviews, and who may."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.reviews.models import reviews
from bookshelf.users.schemas import Role
from tests.conftest import Account, AccountFactory
from tests.factories import (
    BOOKS,
    ME,
    REVIEW_KEYS,
    assert_problem,
    assert_unauthenticated,
    count_rows,
    create_book,
    post_review,
    reviews_path,
)

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def review_path(review: dict[str, Any]) -> str:
    return f"{reviews_path(review['book_id'])}/{review['id']}"


# --- create ----------------------------------------------------------------------------------


async def test_create_returns_201_with_location_and_the_review(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    reader = await make_account(display_name="Rita Reader")

    response = await anonymous_client.post(
        reviews_path(book["id"]),
        json={"rating": 5, "body": "Loved it.\nWould read again."},
        headers=reader.headers,
    )

    assert response.status_code == 201, response.text
    review = response.json()
    assert set(review) == REVIEW_KEYS
    assert response.headers["location"] == f"{BOOKS}/{book['id']}/reviews/{review['id']}"
    assert (review["book_id"], review["user_id"]) == (book["id"], str(reader.id))
    assert review["author_name"] == "Rita Reader"
    assert (review["rating"], review["body"]) == (5, "Loved it.\nWould read again.")
    assert review["created_at"] == review["updated_at"]
    fetched = await anonymous_client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == review


async def test_body_is_optional(client: httpx.AsyncClient, make_account: AccountFactory) -> None:
    book = await create_book(client)
    reader = await make_account()

    review = await post_review(client, book["id"], reader.headers, rating=3)

    assert review["body"] is None


async def test_a_second_review_of_the_same_book_returns_409(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book, other_book = await create_book(client), await create_book(client)
    reader = await make_account()
    await post_review(client, book["id"], reader.headers, rating=2)

    again = await client.post(reviews_path(book["id"]), json={"rating": 5}, headers=reader.headers)

    assert_problem(again, 409, "review-exists", instance=reviews_path(book["id"]))
    assert await count_rows(engine, reviews) == 1
    await post_review(client, other_book["id"], reader.headers)  # another book is fine
    assert await count_rows(engine, reviews) == 2


INVALID_REVIEWS: list[dict[str, Any]] = [
    {"rating": 0},
    {"rating": 6},
    {"rating": -1},
    {"rating": "5"},
    {"rating": None},
    {"rating": 4.5},
    {"rating": True},
    {},
    {"body": "No rating"},
    {"rating": 4, "body": "x" * 5001},
    {"rating": 4, "body": "bad \x00 byte"},
    {"rating": 4, "user_id": UNKNOWN_ID},
    {"rating": 4, "book_id": UNKNOWN_ID},
]


async def test_invalid_reviews_return_422_and_create_nothing(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    reader = await make_account()
    path = reviews_path(book["id"])

    for body in INVALID_REVIEWS:
        response = await client.post(path, json=body, headers=reader.headers)

        assert response.status_code == 422, (body, response.text)
        assert_problem(response, 422, "validation-error", instance=path)
    assert await count_rows(engine, reviews) == 0
    assert (await client.get(f"{BOOKS}/{book['id']}")).json()["version"] == 1


async def test_a_5000_character_body_is_accepted(
    client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    reader = await make_account()

    review = await post_review(client, book["id"], reader.headers, body="y" * 5000)

    assert len(review["body"]) == 5000


@pytest.mark.parametrize("book_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_review_of_an_unknown_book_returns_404(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine, book_id: str
) -> None:
    reader = await make_account()

    response = await client.post(reviews_path(book_id), json={"rating": 4}, headers=reader.headers)

    assert_problem(response, 404, "book-not-found", instance=reviews_path(book_id))
    assert await count_rows(engine, reviews) == 0


async def test_anonymous_review_returns_401(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client)

    response = await anonymous_client.post(reviews_path(book["id"]), json={"rating": 4})

    assert_unauthenticated(response, invalid_token=False)
    assert await count_rows(engine, reviews) == 0


# --- read and list ---------------------------------------------------------------------------


async def test_list_is_public_newest_first_and_keyset_paginated(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    written = [
        await post_review(client, book["id"], (await make_account()).headers, rating=n)
        for n in (1, 2, 3, 4, 5)
    ]
    newest_first = [review["id"] for review in reversed(written)]

    seen: list[str] = []
    response = await anonymous_client.get(reviews_path(book["id"]), params={"limit": 2})
    for expected_size in (2, 2, 1):
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) == expected_size
        assert all(set(item) == REVIEW_KEYS for item in page["items"])
        seen.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        link = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers["link"])
        assert link is not None
        assert httpx.URL(link.group(1)).params["cursor"] == page["next_cursor"]
        response = await anonymous_client.get(link.group(1))

    assert page["next_cursor"] is None
    assert "link" not in response.headers
    assert seen == newest_first
    whole = (await anonymous_client.get(reviews_path(book["id"]))).json()
    assert [item["id"] for item in whole["items"]] == newest_first
    assert whole["items"][0] == written[-1]


async def test_author_name_follows_the_authors_display_name(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    reader = await make_account(display_name="Old Name")
    review = await post_review(client, book["id"], reader.headers)

    renamed = await client.patch(ME, json={"display_name": "New Name"}, headers=reader.headers)
    assert renamed.status_code == 200
    unnamed = await client.patch(ME, json={"display_name": None}, headers=reader.headers)
    assert unnamed.status_code == 200

    listed = (await anonymous_client.get(reviews_path(book["id"]))).json()["items"]
    assert [item["author_name"] for item in listed] == [None]
    assert listed[0]["id"] == review["id"]


async def test_list_shows_only_the_books_own_reviews(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book, other = await create_book(client), await create_book(client)
    reader = await make_account()
    mine = await post_review(client, book["id"], reader.headers)
    await post_review(client, other["id"], reader.headers)

    listed = (await anonymous_client.get(reviews_path(book["id"]))).json()
    empty = await anonymous_client.get(reviews_path((await create_book(client))["id"]))

    assert listed == {"items": [mine], "next_cursor": None}
    assert empty.status_code == 200
    assert empty.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("book_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_list_of_an_unknown_book_returns_404(
    anonymous_client: httpx.AsyncClient, book_id: str
) -> None:
    response = await anonymous_client.get(reviews_path(book_id))

    assert_problem(response, 404, "book-not-found", instance=reviews_path(book_id))


@pytest.mark.parametrize(
    "cursor", ["garbage", "WzEsInRpdGxlIixbImEiXV0", "WzEsIi1jcmVhdGVkX2F0IixbXV0"]
)
async def test_list_with_a_bad_cursor_returns_422(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, cursor: str
) -> None:
    book = await create_book(client)

    response = await anonymous_client.get(reviews_path(book["id"]), params={"cursor": cursor})

    assert_problem(response, 422, "invalid-cursor")


async def test_get_of_a_missing_or_misplaced_review_returns_404(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book, other = await create_book(client), await create_book(client)
    review = await post_review(client, book["id"], (await make_account()).headers)

    for path in (
        f"{reviews_path(book['id'])}/{UNKNOWN_ID}",
        f"{reviews_path(book['id'])}/not-a-uuid",
        f"{reviews_path(other['id'])}/{review['id']}",
    ):
        assert_problem(await anonymous_client.get(path), 404, "review-not-found", instance=path)


# --- change ----------------------------------------------------------------------------------


async def test_the_author_changes_their_review(
    client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    reader = await make_account(display_name="Ann")
    review = await post_review(client, book["id"], reader.headers, rating=2, body="Meh.")

    response = await client.patch(
        review_path(review),
        json={"rating": 4, "body": "Better second time."},
        headers=reader.headers,
    )

    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["rating"], changed["body"], changed["author_name"]) == (
        4,
        "Better second time.",
        "Ann",
    )
    assert changed["created_at"] == review["created_at"]
    assert datetime.fromisoformat(changed["updated_at"]) > datetime.fromisoformat(
        review["updated_at"]
    )
    assert (await client.get(review_path(review))).json() == changed
    cleared = await client.patch(review_path(review), json={"body": None}, headers=reader.headers)
    assert (cleared.json()["rating"], cleared.json()["body"]) == (4, None)


@pytest.mark.parametrize(
    "body", [{"rating": None}, {"rating": 0}, {"rating": "4"}, {"id": UNKNOWN_ID}]
)
async def test_invalid_change_returns_422_and_changes_nothing(
    client: httpx.AsyncClient, make_account: AccountFactory, body: dict[str, Any]
) -> None:
    book = await create_book(client)
    reader = await make_account()
    review = await post_review(client, book["id"], reader.headers, rating=3)

    response = await client.patch(review_path(review), json=body, headers=reader.headers)

    assert_problem(response, 422, "validation-error", instance=review_path(review))
    assert (await client.get(review_path(review))).json() == review


@pytest.mark.parametrize("role", list(Role))
async def test_someone_elses_review_cannot_be_changed_even_by_an_admin(
    client: httpx.AsyncClient, make_account: AccountFactory, role: Role
) -> None:
    book = await create_book(client)
    author, other = await make_account(), await make_account(role)
    review = await post_review(client, book["id"], author.headers, rating=5)

    response = await client.patch(review_path(review), json={"rating": 1}, headers=other.headers)

    assert_problem(response, 404, "review-not-found", instance=review_path(review))
    assert (await client.get(review_path(review))).json() == review


async def test_anonymous_change_returns_401(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    review = await post_review(client, book["id"], (await make_account()).headers)

    response = await anonymous_client.patch(review_path(review), json={"rating": 1})

    assert_unauthenticated(response, invalid_token=False)


# --- delete ----------------------------------------------------------------------------------


async def test_the_author_deletes_their_review(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    reader = await make_account()
    review = await post_review(client, book["id"], reader.headers)

    response = await client.delete(review_path(review), headers=reader.headers)

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(review_path(review)), 404, "review-not-found")
    assert await count_rows(engine, reviews) == 0
    # With the review gone, the reader may review the book again.
    await post_review(client, book["id"], reader.headers, rating=1)


@pytest.mark.parametrize("role", [Role.READER, Role.EDITOR])
async def test_someone_elses_review_cannot_be_deleted(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine, role: Role
) -> None:
    book = await create_book(client)
    author, other = await make_account(), await make_account(role)
    review = await post_review(client, book["id"], author.headers)

    response = await client.delete(review_path(review), headers=other.headers)

    assert_problem(response, 404, "review-not-found", instance=review_path(review))
    assert await count_rows(engine, reviews) == 1


async def test_an_admin_may_delete_any_review(
    client: httpx.AsyncClient, make_account: AccountFactory, admin: Account, engine: AsyncEngine
) -> None:
    book = await create_book(client)
    review = await post_review(client, book["id"], (await make_account()).headers)

    response = await client.delete(review_path(review), headers=admin.headers)

    assert response.status_code == 204
    assert await count_rows(engine, reviews) == 0


async def test_delete_of_an_unknown_or_misplaced_review_returns_404(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book, other = await create_book(client), await create_book(client)
    reader = await make_account()
    review = await post_review(client, book["id"], reader.headers)

    for path in (
        f"{reviews_path(book['id'])}/{UNKNOWN_ID}",
        f"{reviews_path(other['id'])}/{review['id']}",
    ):
        response = await client.delete(path, headers=reader.headers)
        assert_problem(response, 404, "review-not-found", instance=path)
    assert await count_rows(engine, reviews) == 1


async def test_anonymous_delete_returns_401(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    review = await post_review(client, book["id"], (await make_account()).headers)

    assert_unauthenticated(await anonymous_client.delete(review_path(review)), invalid_token=False)
