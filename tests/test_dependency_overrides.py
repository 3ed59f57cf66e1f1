"""``app.dependency_overrides``, FastAPI's test hook, works on every route in both modes: the
fast path's route copies belong to their app and honour its overrides (before, routes added by
extending the route list had no provider, and every override silently did nothing), and plain
FastAPI's included routes do. Overridden here: the settings and the current user, on a route
whose parameters are read on a plan and on one without."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, Request

from bookshelf.auth.dependencies import get_current_user
from bookshelf.auth.sessions import Principal
from bookshelf.config import Settings
from bookshelf.db.connections import ConnectionDep
from bookshelf.dependencies import get_app_settings
from bookshelf.users.schemas import Role
from tests.conftest import make_settings
from tests.factories import BOOKS, app_account, create_book, reviews_path
from tests.ops.support import http, started

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture(params=[True, False], ids=["fast-path", "stock"])
async def mode_app(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[FastAPI]:
    async with started(make_settings(database_url, fast_path=request.param)) as app:
        yield app


async def test_the_current_user_is_overridden(mode_app: FastAPI) -> None:
    """Without a token, as the override's user: on ``/users/me`` (no planned parameter) and on
    a review's POST, where ``Idempotent`` takes the user too; the override takes the request's
    connection, as the real dependency does (one connection, shared)."""
    app = mode_app
    reader, admin = await app_account(app, Role.READER), await app_account(app, Role.ADMIN)

    async def as_the_reader(request: Request, connection: ConnectionDep) -> Principal:
        return await get_current_user(request, connection, reader.access_token)

    async with http(app) as anonymous, http(app, headers=admin.headers) as signed_in:
        book = await create_book(signed_in)
        app.dependency_overrides[get_current_user] = as_the_reader
        me = await anonymous.get("/api/v1/users/me")
        review = await anonymous.post(
            reviews_path(book["id"]), json={"rating": 5}, headers={"Idempotency-Key": "k1"}
        )
        app.dependency_overrides.clear()
        without = await anonymous.get("/api/v1/users/me")

    assert (me.status_code, me.json()["email"]) == (200, reader.email)
    assert review.status_code == 201, review.text
    assert review.json()["user_id"] == str(reader.id)
    assert without.status_code == 401


async def test_the_settings_are_overridden(mode_app: FastAPI) -> None:
    """On the import (its ``mode`` is read on a plan): one line at most, then 413."""
    app = mode_app
    admin = await app_account(app, Role.ADMIN)
    one_line: Settings = app.state.settings.model_copy(update={"import_max_lines": 1})

    async def one_line_imports() -> Settings:
        return one_line

    body = "\n".join(f'{{"title": "Book {n}", "authors": ["A"]}}' for n in (1, 2))
    async with http(app, headers=admin.headers) as client:
        app.dependency_overrides[get_app_settings] = one_line_imports
        refused = await client.post(f"{BOOKS}/import?mode=partial", content=body, headers=NDJSON)
        app.dependency_overrides.clear()
        imported = await client.post(f"{BOOKS}/import?mode=partial", content=body, headers=NDJSON)

    assert refused.status_code == 413, refused.text
    assert refused.json()["type"].endswith("too-many-lines")
    assert imported.status_code == 200, imported.text
