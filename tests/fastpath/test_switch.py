"""``BOOKSHELF_FAST_PATH=false`` is the escape hatch after an upgrade that breaks the adapter:
with every piece of ``bookshelf.fastpath`` broken here, as an upgrade might break it, the app
built with the fast path off still serves every kind of request; built with it on, it cannot
even start."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import pytest

from bookshelf.fastpath import exits, routes
from bookshelf.fastpath.middleware import BookshelfAPI
from bookshelf.fastpath.params import ParamPlan
from bookshelf.fastpath.statements import StatementCache
from bookshelf.main import create_app
from tests.conftest import make_settings
from tests.factories import BOOKS, book_payload, reviews_path, sign_in
from tests.ops.support import http, started


def _broken(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise AssertionError("a piece of the fast path ran")


@pytest.fixture
def broken_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exits, "handler_exits", _broken)
    monkeypatch.setattr(routes, "fast_route", _broken)
    monkeypatch.setattr(ParamPlan, "parse", _broken)
    monkeypatch.setattr(BookshelfAPI, "build_middleware_stack", _broken)
    monkeypatch.setattr(StatementCache, "bind", _broken)


@pytest.mark.usefixtures("broken_adapter")
async def test_with_the_fast_path_off_nothing_of_the_adapter_runs(database_url: str) -> None:
    async with started(make_settings(database_url, fast_path=False)) as app:
        headers = await sign_in(app)
        async with http(app, headers=headers) as client:
            created = await client.post(
                BOOKS, json=book_payload(), headers={"Idempotency-Key": "a"}
            )
            path = f"{BOOKS}/{created.json()['id']}"
            answers = [
                created,
                await client.get(BOOKS, params={"language": "en", "sort": "-published_date"}),
                await client.get(BOOKS, params={"q": "test book"}),
                await client.post(reviews_path(created.json()["id"]), json={"rating": 4}),
                await client.post(
                    f"{BOOKS}/import",
                    content=json.dumps(book_payload()),
                    headers={"Content-Type": "application/x-ndjson"},
                ),
                await client.get("/api/v1/users/me"),
                current := await client.get(path, headers={"If-None-Match": '"99"'}),
                changed := await client.patch(
                    path, json={"page_count": 12}, headers={"If-Match": current.headers["etag"]}
                ),
                await client.delete(path, headers={"If-Match": changed.headers["etag"]}),
            ]

    statuses = [answer.status_code for answer in answers]
    assert statuses == [201, 200, 200, 201, 200, 200, 200, 200, 204]


@pytest.mark.usefixtures("broken_adapter")
def test_with_the_fast_path_on_a_broken_adapter_shows_at_once(sqlite_url: str) -> None:
    with pytest.raises(AssertionError, match="a piece of the fast path ran"):
        create_app(make_settings(sqlite_url, fast_path=True))
