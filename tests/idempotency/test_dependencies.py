"""The ``Idempotent`` dependency on its own: declared on both keyed POST routes, and a claim
that never outlives a request that failed or forgot to record its response."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books import service as books_service
from bookshelf.books.models import books
from bookshelf.config import Settings
from bookshelf.idempotency.dependencies import Idempotent
from bookshelf.idempotency.models import idempotency_records as records
from bookshelf.users.schemas import Role
from tests.factories import BOOKS, app_account, bearer, book_payload, count_rows, inspector
from tests.ops.support import http, started

KEYED_POSTS = ["/api/v1/books", "/api/v1/books/{book_id}/reviews"]


@pytest.mark.parametrize("path", KEYED_POSTS)
async def test_openapi_documents_the_idempotency_key_header(
    anonymous_client: httpx.AsyncClient, path: str
) -> None:
    schema = (await anonymous_client.get("/openapi.json")).json()

    parameters = schema["paths"][path]["post"]["parameters"]

    headers = [p for p in parameters if p["in"] == "header" and p["name"] == "Idempotency-Key"]
    assert len(headers) == 1
    assert headers[0]["required"] is False


async def test_a_request_that_fails_after_its_write_rolls_it_back_and_frees_the_key(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_book = books_service.create_book

    async def create_then_fail(*args: Any, **kwargs: Any) -> Any:
        await create_book(*args, **kwargs)
        raise RuntimeError("the request fails after its write")

    payload = book_payload()
    monkeypatch.setattr(books_service, "create_book", create_then_fail)
    failed = await client.post(BOOKS, json=payload, headers={"Idempotency-Key": "fails"})
    assert failed.status_code == 500
    assert await count_rows(engine, books) == 0
    assert await count_rows(engine, records) == 0

    monkeypatch.setattr(books_service, "create_book", create_book)
    retried = await client.post(BOOKS, json=payload, headers={"Idempotency-Key": "fails"})

    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert await count_rows(engine, books) == 1


async def test_a_request_cut_by_its_time_limit_after_its_claim_frees_the_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancellation reaches the exit as an exception: the claim is still released, shielded."""
    create_book = books_service.create_book

    async def create_then_hang(*args: Any, **kwargs: Any) -> Any:
        await create_book(*args, **kwargs)
        await asyncio.sleep(5)

    timed = settings.model_copy(update={"request_timeout_seconds": 0.3})
    async with started(timed) as app, http(app) as client, inspector(app) as engine:
        editor = await app_account(app, Role.EDITOR)
        headers = {**bearer(editor.access_token), "Idempotency-Key": "cut"}
        monkeypatch.setattr(books_service, "create_book", create_then_hang)
        cut = await client.post(BOOKS, json=book_payload(), headers=headers)
        assert cut.status_code == 503
        assert await count_rows(engine, records) == 0
        assert await count_rows(engine, books) == 0

        monkeypatch.setattr(books_service, "create_book", create_book)
        retried = await client.post(BOOKS, json=book_payload(), headers=headers)

    assert retried.status_code == 201, retried.text


class Note(BaseModel):
    text: str


async def forget_to_record(payload: Note, idempotency: Idempotent) -> Response:
    await idempotency.claim(payload)
    return Response(status_code=204)


async def test_a_route_that_claims_a_key_but_records_no_response_fails_and_frees_it(
    app: FastAPI, client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    app.add_api_route("/forgetful", forget_to_record, methods=["POST"])

    response = await client.post(
        "/forgetful", json={"text": "hello"}, headers={"Idempotency-Key": "forgotten"}
    )

    assert response.status_code == 500
    assert await count_rows(engine, records) == 0
