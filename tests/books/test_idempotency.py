"""POST /api/v1/books with Idempotency-Key: replay, key reuse, failures, in-flight and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import books
from bookshelf.books.schemas import BookCreate
from bookshelf.idempotency.models import idempotency_records as records
from bookshelf.idempotency.service import fingerprint
from bookshelf.users.schemas import Role
from tests.conftest import Account, AccountFactory
from tests.factories import BOOKS, assert_problem, book_payload, count_rows


async def post(client: httpx.AsyncClient, payload: dict[str, Any], key: str) -> httpx.Response:
    return await client.post(BOOKS, json=payload, headers={"Idempotency-Key": key})


def scope_of(account: Account) -> str:
    """Keys are per user: the scope names the user who sent the request."""
    return f"POST /books by {account.id}"


async def stored_record(engine: AsyncEngine, key: str, account: Account) -> Any:
    async with engine.connect() as connection:
        statement = select(records).where(
            records.c.scope == scope_of(account), records.c.key == key
        )
        return (await connection.execute(statement)).first()


def fingerprint_of(payload: dict[str, Any]) -> str:
    return fingerprint(BookCreate(**payload).model_dump_json().encode())


async def insert_record(
    engine: AsyncEngine,
    account: Account,
    key: str,
    payload: dict[str, Any],
    *,
    locked_ago: timedelta = timedelta(0),
    expires_in: timedelta = timedelta(hours=1),
    completed: bool = False,
) -> None:
    """A record as the service writes it: in flight, or completed with a stored response."""
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            insert(records).values(
                scope=scope_of(account),
                key=key,
                fingerprint=fingerprint_of(payload),
                status_code=201 if completed else None,
                response_body=b'{"stale": true}' if completed else None,
                response_headers={"ETag": '"1"'} if completed else None,
                locked_at=now - locked_ago,
                expires_at=now + expires_in,
            )
        )


# --- replay ----------------------------------------------------------------------------------


async def test_same_key_and_body_replays_the_first_response(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    payload = book_payload(title="Once Only")

    first = await post(client, payload, "key-1")
    second = await post(client, payload, "key-1")

    assert (first.status_code, second.status_code) == (201, 201)
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.content == first.content
    assert (
        second.headers["location"] == first.headers["location"] == f"{BOOKS}/{first.json()['id']}"
    )
    assert second.headers["etag"] == first.headers["etag"] == '"1"'
    assert second.headers["content-type"] == "application/json"
    assert await count_rows(engine, books) == 1


async def test_replay_stores_the_response_with_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account
) -> None:
    payload = book_payload()
    before = datetime.now(UTC)

    response = await post(client, payload, "stored")

    record = await stored_record(engine, "stored", admin)
    assert record.status_code == 201
    assert record.fingerprint == fingerprint_of(payload)
    assert record.response_body == response.content
    assert (
        before + timedelta(hours=23) < record.expires_at <= datetime.now(UTC) + timedelta(hours=24)
    )


async def test_third_attempt_still_replays(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    payload = book_payload()
    responses = [await post(client, payload, "thrice") for _ in range(3)]

    assert {response.json()["id"] for response in responses} == {responses[0].json()["id"]}
    assert [r.headers.get("idempotent-replayed") for r in responses] == [None, "true", "true"]
    assert await count_rows(engine, books) == 1


async def test_same_key_with_different_body_returns_422_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    payload = book_payload(title="First")
    assert (await post(client, payload, "reused")).status_code == 201

    response = await post(client, {**payload, "title": "Second"}, "reused")

    assert_problem(response, 422, "idempotency-key-reused")
    assert await count_rows(engine, books) == 1


async def test_different_keys_create_different_books(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    payload = book_payload(isbn=None)

    first = await post(client, payload, "key-a")
    second = await post(client, payload, "key-b")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert "idempotent-replayed" not in second.headers
    assert await count_rows(engine, books) == 2


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_empty_or_overlong_key_returns_422(
    client: httpx.AsyncClient, engine: AsyncEngine, key: str
) -> None:
    response = await post(client, book_payload(), key)

    assert_problem(response, 422, "validation-error")
    assert ["header", "Idempotency-Key"] in [error["loc"] for error in response.json()["errors"]]
    assert await count_rows(engine, books) == 0


# --- failures do not burn the key ------------------------------------------------------------


async def test_failed_request_does_not_burn_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account
) -> None:
    taken = (await client.post(BOOKS, json=book_payload(isbn="9780261102217"))).json()
    payload = book_payload(isbn="0-261-10221-4", title="Retry Me")

    conflict = await post(client, payload, "retry")
    assert_problem(conflict, 409, "isbn-conflict")
    assert await stored_record(engine, "retry", admin) is None
    assert (await client.delete(f"{BOOKS}/{taken['id']}")).status_code == 204

    retried = await post(client, payload, "retry")

    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["title"] == "Retry Me"
    assert retried.json()["isbn"] == "9780261102217"
    assert await count_rows(engine, books) == 1


async def test_invalid_body_does_not_claim_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    invalid = await post(client, book_payload(page_count=0), "fix-and-retry")
    assert invalid.status_code == 422

    response = await post(client, book_payload(page_count=10), "fix-and-retry")

    assert response.status_code == 201
    assert await count_rows(engine, books) == 1


# --- in flight, stale and expired records ----------------------------------------------------


async def test_key_in_flight_returns_409_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account
) -> None:
    payload = book_payload()
    await insert_record(engine, admin, "busy", payload)

    response = await post(client, payload, "busy")

    assert_problem(response, 409, "idempotency-key-in-flight")
    assert await count_rows(engine, books) == 0
    assert (await stored_record(engine, "busy", admin)).status_code is None


async def test_key_in_flight_with_another_body_returns_422(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account
) -> None:
    await insert_record(engine, admin, "busy", book_payload(title="Theirs"))

    response = await post(client, book_payload(title="Mine"), "busy")

    assert_problem(response, 422, "idempotency-key-reused")


async def test_stale_in_flight_key_is_taken_over(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account
) -> None:
    payload = book_payload(title="Taken Over")
    await insert_record(engine, admin, "stale", payload, locked_ago=timedelta(seconds=61))

    response = await post(client, payload, "stale")

    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    assert response.json()["title"] == "Taken Over"
    assert (await stored_record(engine, "stale", admin)).status_code == 201
    replay = await post(client, payload, "stale")
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == response.json()
    assert await count_rows(engine, books) == 1


async def test_in_flight_key_within_the_lock_timeout_is_not_taken_over(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account
) -> None:
    payload = book_payload()
    await insert_record(engine, admin, "young", payload, locked_ago=timedelta(seconds=50))

    assert_problem(await post(client, payload, "young"), 409, "idempotency-key-in-flight")


@pytest.mark.parametrize("same_body", [True, False])
async def test_expired_record_is_replaced(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account, same_body: bool
) -> None:
    payload = book_payload(title="Fresh")
    old_payload = payload if same_body else book_payload(title="Long ago")
    await insert_record(
        engine,
        admin,
        "old",
        old_payload,
        locked_ago=timedelta(days=2),
        expires_in=-timedelta(days=1),
        completed=True,
    )

    response = await post(client, payload, "old")

    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    assert response.json()["title"] == "Fresh"
    record = await stored_record(engine, "old", admin)
    assert record.fingerprint == fingerprint_of(payload)
    assert record.response_body == response.content
    assert record.expires_at > datetime.now(UTC)
    assert await count_rows(engine, books) == 1


# --- keys are per user -----------------------------------------------------------------------


async def test_same_key_from_two_users_creates_two_books(
    client: httpx.AsyncClient, engine: AsyncEngine, admin: Account, make_account: AccountFactory
) -> None:
    editor = await make_account(Role.EDITOR)
    payload = book_payload(isbn=None)

    mine = await post(client, payload, "shared-key")
    theirs = await client.post(
        BOOKS, json=payload, headers={**editor.headers, "Idempotency-Key": "shared-key"}
    )

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["created_by"] == str(editor.id)
    assert (await stored_record(engine, "shared-key", admin)).response_body == mine.content
    assert (await stored_record(engine, "shared-key", editor)).response_body == theirs.content
    assert await count_rows(engine, books) == 2


async def test_another_users_in_flight_key_does_not_block(
    client: httpx.AsyncClient, engine: AsyncEngine, make_account: AccountFactory
) -> None:
    editor = await make_account(Role.EDITOR)
    payload = book_payload()
    await insert_record(engine, editor, "busy", payload)

    response = await post(client, payload, "busy")

    assert response.status_code == 201, response.text
    assert await count_rows(engine, books) == 1
