"""A write request's transaction commits before its response is sent: when the COMMIT itself
fails, the client gets a problem, never the 2xx the handler had made, and nothing of the write
is left. Proven by making the COMMIT fail at the data layer, with no mock: constraint triggers,
``DEFERRABLE INITIALLY DEFERRED``, refuse marked rows, so every statement of the request
succeeds and PostgreSQL raises only at COMMIT. With the fast path on and off: both commit in
the exit of the request's connection dependency, run before the response (``with_exit``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import book_authors, book_subjects, books
from bookshelf.idempotency.models import idempotency_records
from tests.conftest import make_settings
from tests.factories import BOOKS, book_payload, create_book, inspector, sign_in
from tests.ops.support import http, started

pytestmark = [pytest.mark.postgres_only, pytest.mark.parametrize("backend", ["postgresql"])]

REFUSED = "Refused at commit"  # a book written with this title is refused at COMMIT
KEPT = "Kept at commit"  # a book with this title is refused its deletion at COMMIT
TRIGGERS = (
    "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'refused at commit by the test'; END $$",
    "CREATE CONSTRAINT TRIGGER refuse_marked_writes AFTER INSERT OR UPDATE ON books "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
    f"WHEN (NEW.title LIKE '{REFUSED}%') EXECUTE FUNCTION refuse_at_commit()",
    "CREATE CONSTRAINT TRIGGER refuse_marked_deletes AFTER DELETE ON books "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
    f"WHEN (OLD.title LIKE '{KEPT}%') EXECUTE FUNCTION refuse_at_commit()",
)
DROP_TRIGGERS = (
    "DROP TRIGGER IF EXISTS refuse_marked_writes ON books",
    "DROP TRIGGER IF EXISTS refuse_marked_deletes ON books",
    "DROP FUNCTION IF EXISTS refuse_at_commit()",
)


@pytest.fixture(params=[True, False], ids=["fast-path", "stock"])
async def app(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[FastAPI]:
    async with started(make_settings(database_url, fast_path=request.param)) as application:
        yield application


@pytest.fixture
async def engine(app: FastAPI) -> AsyncIterator[AsyncEngine]:
    """An engine of its own on the app's database, with the refusing triggers in place."""
    async with inspector(app) as engine:
        await _run(engine, TRIGGERS)
        try:
            yield engine
        finally:
            await _run(engine, DROP_TRIGGERS)


async def _run(engine: AsyncEngine, statements: tuple[str, ...]) -> None:
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http(app, headers=await sign_in(app)) as signed_in:
        yield signed_in


async def _counts(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return {
            table.name: await connection.scalar(select(func.count()).select_from(table))
            for table in (books, book_authors, book_subjects, idempotency_records)
        }


async def _book(engine: AsyncEngine, book_id: str) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (await connection.execute(select(books).where(books.c.id == book_id))).first()
    return None if row is None else dict(row._mapping)


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "refused at commit" not in response.text  # the driver's message stays in the log


async def test_the_refusal_comes_at_commit_not_with_the_statement(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client, title="Plain")
    async with engine.connect() as connection:
        await connection.execute(
            update(books).where(books.c.id == book["id"]).values(title=f"{REFUSED}: direct")
        )
        with pytest.raises(DBAPIError, match="refused at commit by the test"):
            await connection.commit()


async def test_a_create_whose_commit_fails_is_a_problem_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    before = await _counts(engine)

    response = await client.post(BOOKS, json=book_payload(title=f"{REFUSED}: create"))

    _refused(response)
    assert await _counts(engine) == before


async def test_an_idempotent_create_whose_commit_fails_can_be_retried_at_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Its key's claim was committed on its own: the failed commit releases it, so the retry
    runs afresh instead of meeting a 409 for a request that is no longer running."""
    before = await _counts(engine)
    payload = book_payload(title=f"{REFUSED}: retried")
    key = {"Idempotency-Key": "commit-fails-once"}

    failed = await client.post(BOOKS, json=payload, headers=key)
    after_failure = await _counts(engine)
    await _run(engine, DROP_TRIGGERS)
    retried = await client.post(BOOKS, json=payload, headers=key)

    _refused(failed)
    assert after_failure == before
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers


async def test_a_change_whose_commit_fails_is_a_problem_and_changes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client, title="Plain")
    before = await _book(engine, book["id"])

    response = await client.patch(
        f"{BOOKS}/{book['id']}",
        json={"title": f"{REFUSED}: change", "subjects": ["other"]},
        headers={"If-Match": f'"{book["version"]}"'},
    )

    _refused(response)
    assert await _book(engine, book["id"]) == before


async def test_a_deletion_whose_commit_fails_is_a_problem_and_deletes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    book = await create_book(client, title=f"{KEPT}: deletion")
    before = await _counts(engine)

    response = await client.delete(
        f"{BOOKS}/{book['id']}", headers={"If-Match": f'"{book["version"]}"'}
    )

    _refused(response)
    assert await _book(engine, book["id"]) is not None
    assert await _counts(engine) == before


async def test_an_import_whose_commit_fails_is_a_problem_and_imports_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """The refused line is the last of three: the other two, written first, go too."""
    before = await _counts(engine)
    lines = [book_payload(), book_payload(), book_payload(title=f"{REFUSED}: import")]

    response = await client.post(
        f"{BOOKS}/import",
        content="\n".join(json.dumps(line) for line in lines),
        headers={"Content-Type": "application/x-ndjson", "Idempotency-Key": "import-fails"},
    )

    _refused(response)
    assert await _counts(engine) == before
