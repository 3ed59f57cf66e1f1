"""GET /api/v1/books?q=: a search's cost is bounded, by rows ranked and by time.

``sort=relevance`` ranks at most ``BOOKSHELF_SEARCH_RANK_CANDIDATES`` matches and pages through
them by ``(rank, id)``; on PostgreSQL a search runs under ``BOOKSHELF_SEARCH_STATEMENT_TIMEOUT_MS``
and a search past it is a 503 problem with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Integer, text

from bookshelf.config import Settings
from bookshelf.db.database import Database, unit_of_work
from bookshelf.db.engine import create_engine
from bookshelf.main import create_app
from bookshelf.users.schemas import Role
from tests.conftest import empty_tables, make_settings
from tests.factories import BOOKS, assert_problem, create_book, sign_in
from tests.ops.support import busy_refusals

CAP = 5


@pytest.fixture
async def capped_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"search_rank_candidates": CAP}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def capped_client(capped_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=capped_app, raise_app_exceptions=False)
    headers = await sign_in(capped_app, Role.ADMIN)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client


async def pages(client: httpx.AsyncClient, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a listing, following next_cursor (at most 50 pages)."""
    served: list[list[dict[str, Any]]] = []
    cursor = None
    for _ in range(50):
        response = await client.get(
            BOOKS, params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        served.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return served
    raise AssertionError("paging did not end")


async def test_relevance_ranks_at_most_the_cap_and_pages_through_those_once(
    capped_client: httpx.AsyncClient,
) -> None:
    strong = {
        (await create_book(capped_client, title=f"Dragon {n}", authors=["Dragon Smith"]))["id"]
        for n in range(6)
    }
    weak = {
        (await create_book(capped_client, title=f"Tale {n}", subtitle="a dragon"))["id"]
        for n in range(6)
    }
    await create_book(capped_client, title="No match here")

    served = await pages(capped_client, q="dragon", limit=2)
    ids = [item["id"] for page in served for item in page]

    assert len(ids) == CAP, "more matches served than the cap allows to rank"
    assert len(set(ids)) == CAP, "a candidate was served twice"
    assert set(ids) <= strong | weak
    assert len(served) == 3  # 2 + 2 + 1, and the last page says there is no next one
    # The same candidates in the same order, whatever the page size.
    whole = (await capped_client.get(BOOKS, params={"q": "dragon", "limit": 100})).json()
    assert [item["id"] for item in whole["items"]] == ids
    assert whole["next_cursor"] is None
    by_three = await pages(capped_client, q="dragon", limit=3)
    assert [item["id"] for page in by_three for item in page] == ids


async def test_relevance_is_exact_within_the_candidates(
    capped_client: httpx.AsyncClient,
) -> None:
    # Weak matches first (the index yields them first), then strong ones: with a cap of 5 and
    # 3 + 4 matches, the candidates hold both kinds, ranked strong before weak.
    for n in range(3):
        await create_book(capped_client, title=f"Tale {n}", subtitle="a dragon", authors=["Jo"])
    for n in range(4):
        await create_book(capped_client, title=f"Dragon {n}", authors=["Dragon Smith"])

    served = await pages(capped_client, q="dragon", limit=100)
    titles = [item["title"] for item in served[0]]

    assert len(titles) == CAP
    strong = [title for title in titles if title.startswith("Dragon")]
    assert strong
    assert titles[: len(strong)] == strong


async def test_filters_apply_before_the_cap(capped_client: httpx.AsyncClient) -> None:
    for n in range(CAP + 3):
        await create_book(capped_client, title=f"Dragon {n}", language="en")
    french = await create_book(capped_client, title="Dragon français", language="fr")

    served = await pages(capped_client, q="dragon", language="fr")

    assert [item["id"] for page in served for item in page] == [french["id"]]


async def test_other_sorts_serve_every_match_past_the_cap(
    capped_client: httpx.AsyncClient,
) -> None:
    created = {(await create_book(capped_client, title=f"Dragon {n}"))["id"] for n in range(9)}

    served = await pages(capped_client, q="dragon", sort="title", limit=4)

    assert {item["id"] for page in served for item in page} == created


# --- search slots: how many searches run at once ------------------------------------------


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A started app for ``settings`` and an editor's client of it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = await sign_in(app, Role.EDITOR)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as client:
            yield app, client


async def test_a_search_past_its_wait_for_a_slot_is_a_fast_503_busy_problem(
    settings: Settings,
) -> None:
    """Every slot taken (here by the test itself): a search waits its bounded time for one,
    then is refused with a problem it may retry; a list without ``q`` never waits."""
    limited = settings.model_copy(update={"search_concurrency": 1, "search_wait_seconds": 0.2})
    async with served(limited) as (app, client):
        await create_book(client, title="Dragon Days")
        slots = app.state.search_slots
        await slots.take()
        refusals = busy_refusals("search")
        try:
            started = time.monotonic()
            async with asyncio.timeout(5):
                refused = await client.get(BOOKS, params={"q": "dragon"})
            waited = time.monotonic() - started
            plain_list = await client.get(BOOKS)
        finally:
            slots.give_back()
        after = await client.get(BOOKS, params={"q": "dragon"})

    problem = assert_problem(refused, 503, "busy", instance=BOOKS)
    assert problem["detail"] == "Too many searches are in progress; retry shortly."
    assert refused.headers["retry-after"] == "1"
    assert 0.2 <= waited < 3
    assert busy_refusals("search") == refusals + 1
    assert plain_list.status_code == 200, plain_list.text
    assert after.status_code == 200, after.text
    assert [item["title"] for item in after.json()["items"]] == ["Dragon Days"]


async def test_a_queued_search_holds_no_connection(settings: Settings) -> None:
    """With one pooled connection and the one search slot taken, a queued search must leave
    the connection to the other requests: the slot is taken before the connection."""
    one_connection = settings.model_copy(
        update={
            "database_pool_size": 1,
            "database_max_overflow": 0,
            "database_pool_timeout_seconds": 1.0,
            "search_concurrency": 1,
            "search_wait_seconds": 10.0,
        }
    )
    async with served(one_connection) as (app, client):
        book = await create_book(client, title="Dragon Days")
        slots = app.state.search_slots
        await slots.take()
        try:
            queued = asyncio.create_task(client.get(BOOKS, params={"q": "dragon"}))
            await asyncio.sleep(0.1)  # the search is now waiting for its slot
            meanwhile = await client.get(f"{BOOKS}/{book['id']}")
            assert not queued.done()
        finally:
            slots.give_back()
        async with asyncio.timeout(5):
            search = await queued

    assert meanwhile.status_code == 200, meanwhile.text
    assert search.status_code == 200, search.text
    assert [item["id"] for item in search.json()["items"]] == [book["id"]]


async def test_a_search_abandoned_while_queued_takes_no_slot_with_it(settings: Settings) -> None:
    """A client that goes away (or a request cut by its time limit) while its search waits for
    a slot is cancelled there; the slot it was waiting for stays free for the next search."""
    limited = settings.model_copy(update={"search_concurrency": 1, "search_wait_seconds": 5.0})
    async with served(limited) as (app, client):
        slots = app.state.search_slots
        await slots.take()
        abandoned = asyncio.create_task(client.get(BOOKS, params={"q": "dragon"}))
        await asyncio.sleep(0.1)  # waiting for the slot
        abandoned.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await abandoned
        slots.give_back()
        async with asyncio.timeout(2):  # a leaked slot would make this search wait 5 s
            after = await client.get(BOOKS, params={"q": "dragon"})

    assert abandoned.cancelled()
    assert after.status_code == 200, after.text


async def test_a_search_gives_its_slot_back_however_it_ends(settings: Settings) -> None:
    """Refused parameters, a forged cursor and an answered search each free the one slot: the
    next search never waits."""
    limited = settings.model_copy(update={"search_concurrency": 1, "search_wait_seconds": 0.2})
    async with served(limited) as (_app, client):
        await create_book(client, title="Dragon Days")
        answers = [
            await client.get(BOOKS, params={"q": "dragon", "limit": 0}),
            await client.get(BOOKS, params={"q": "dragon", "cursor": "not-a-cursor"}),
            await client.get(BOOKS, params={"q": "dragon"}),
            await client.get(BOOKS, params={"q": "dragon"}),
        ]

    assert [answer.status_code for answer in answers] == [422, 422, 200, 200]


# --- the search statement timeout (PostgreSQL) ------------------------------------------------


@pytest.fixture
def pg_database(postgresql_url: str) -> Iterator[str]:
    yield postgresql_url
    asyncio.run(empty_tables(postgresql_url))


@pytest.mark.postgres_only
async def test_search_past_its_statement_timeout_is_a_503_problem(pg_database: str) -> None:
    """A search blocked behind a lock runs into the search timeout (200 ms), far below the
    general one (15 s): the server cancels it and the client gets a 503 it may retry."""
    settings = make_settings(
        pg_database,
        database_pool_size=1,
        database_max_overflow=0,
        search_statement_timeout_ms=200,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database: Database = app.state.database
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with books_locked(settings):
                started = time.monotonic()
                async with asyncio.timeout(5):
                    response = await client.get(BOOKS, params={"q": "dragon"})
                seconds = time.monotonic() - started
            after = await client.get(BOOKS, params={"q": "dragon"})
            async with unit_of_work(database, write=False) as connection:
                timeout = await connection.scalar(text("SHOW statement_timeout"))

    problem = assert_problem(response, 503, "search-timeout", instance=BOOKS)
    assert response.headers["retry-after"] == "5"
    assert "OperationalError" not in response.text
    assert "57014" not in response.text
    assert problem["title"] == "Search timed out"
    assert seconds < 3
    assert after.status_code == 200, after.text
    # The search's own timeout ended with its transaction: the pooled connection keeps 15 s.
    assert timeout == "15s"


@asynccontextmanager
async def books_locked(settings: Settings) -> AsyncIterator[None]:
    """Another client holding an exclusive lock on books (a search waits for it)."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("LOCK TABLE books IN ACCESS EXCLUSIVE MODE"))
            yield
            await connection.rollback()
    finally:
        await engine.dispose()


@pytest.mark.postgres_only
async def test_search_statements_are_never_served_by_a_generic_plan(pg_database: str) -> None:
    """How common the words are decides the plan (posting list or table scan): a prepared search
    must not switch to one generic plan after a few executions, as PostgreSQL otherwise does."""
    settings = make_settings(pg_database, database_pool_size=1, database_max_overflow=0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for q in ["garden lisbon"] * 8 + ["the"] * 4:
                assert (await client.get(BOOKS, params={"q": q})).status_code == 200
        async with unit_of_work(app.state.database, write=False) as connection:
            plans = (
                await connection.execute(
                    text(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                        "WHERE statement LIKE '%plainto_tsquery%' "
                        "AND statement NOT LIKE '%pg_prepared_statements%'"
                    ).columns(generic_plans=Integer, custom_plans=Integer)
                )
            ).one()

    assert plans.custom_plans == 12
    assert plans.generic_plans == 0
