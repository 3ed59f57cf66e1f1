"""GET /api/v1/books/export: how many stream at once, and a search export's share of searches.

An export holds its turn for as long as it streams: at most ``BOOKSHELF_EXPORT_CONCURRENCY`` per
worker (one more: a fast 503 ``busy``) and ``BOOKSHELF_EXPORT_PER_ADDRESS`` per client address
(one more: a 429 ``too-many-exports``), each with ``Retry-After``. The tests that hold streams
open run a real server (uvicorn on a thread) and read a few lines, then nothing, as a slow
reader does: the catalog is larger than the sockets' buffers, so the server really waits on the
reader. Client addresses are told apart by ``X-Forwarded-For`` from a trusted proxy (the test).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from bookshelf.books import bulk
from bookshelf.config import Settings
from bookshelf.db.connections import opened_database
from bookshelf.db.database import unit_of_work
from bookshelf.main import create_app
from tests.factories import BOOKS, assert_problem, book_payload, create_book, sign_in
from tests.ops.support import busy_refusals, http, started
from tests.servers import running_server

EXPORT = f"{BOOKS}/export"
# An export that matches no book: it takes a turn and gives it back at once. (Not HEAD: on a
# real server, uvicorn answers a HEAD that the pipeline serves as GET with a body.)
NOTHING = {"author": "nobody wrote this"}
# ~9 MB of NDJSON: more than the sockets between server and client hold (``reader``), so an
# export left unread is still streaming, and holding its turn, when the test looks.
HELD_BOOKS = 1000


async def seed_books(settings: Settings, count: int = HELD_BOOKS) -> None:
    lines = [
        (number, json.dumps(book_payload(isbn=None, description="z" * 9000)).encode())
        for number in range(1, count + 1)
    ]
    async with (
        opened_database(settings) as database,
        unit_of_work(database, write=True) as connection,
    ):
        outcomes = await bulk.import_books(connection, lines, actor=None)
    assert [(outcome.line, outcome.error) for outcome in outcomes if outcome.error] == []


def reader(url: str) -> httpx.AsyncClient:
    """A client of ``url`` whose sockets buffer little: on this machine the kernel would grow
    a receiving buffer to 32 MiB, holding a whole export unread."""
    small_buffer = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)]
    transport = httpx.AsyncHTTPTransport(socket_options=small_buffer)
    return httpx.AsyncClient(base_url=url, timeout=10, transport=transport)


def bounded(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update={"trusted_proxies": "127.0.0.1", **overrides})


def sent_from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


@asynccontextmanager
async def held_export(client: httpx.AsyncClient, address: str, **params: str) -> AsyncIterator[str]:
    """An export from ``address`` that has started and is then left unread (the id of its
    first book); leaving the block closes the connection, most of the export unsent: a client
    that disconnects mid-stream."""
    async with client.stream("GET", EXPORT, params=params, headers=sent_from(address)) as answer:
        assert answer.status_code == 200
        # Kept while held: an iterator left to the garbage collector closes the response.
        lines = answer.aiter_lines()
        book_id: str = json.loads(await anext(lines))["id"]
        await asyncio.sleep(0.2)  # the server fills the sockets' buffers and waits
        yield book_id


async def served_again(client: httpx.AsyncClient, address: str) -> httpx.Response:
    """An export, once the server has noticed that the readers before it went away (on its
    next write): tried for a few seconds."""
    for _ in range(50):
        answer = await client.get(EXPORT, params=NOTHING, headers=sent_from(address))
        if answer.status_code == 200:
            break
        await asyncio.sleep(0.1)
    return await client.get(EXPORT, headers=sent_from(address))


def rate_limit_refusals(limit: str) -> float:
    sample = REGISTRY.get_sample_value("bookshelf_rate_limit_rejections_total", {"limit": limit})
    return sample or 0.0


def exported_ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [json.loads(line)["id"] for line in answer.text.splitlines()]


async def test_an_export_past_the_workers_slots_is_a_fast_503_and_the_api_still_serves(
    settings: Settings,
) -> None:
    """Two exports stream (``BOOKSHELF_EXPORT_CONCURRENCY=2``) from two addresses, their readers
    stalled: a third, from a third address, is refused at once; reads by id, lists and searches
    are still served. When the two readers disconnect mid-stream, their turns come back."""
    limited = bounded(settings, export_concurrency=2, export_per_address=5, search_wait_seconds=1)
    await seed_books(limited)
    app = create_app(limited)
    with running_server(app) as url:
        async with reader(url) as client:
            async with AsyncExitStack() as streams:
                book_id = await streams.enter_async_context(held_export(client, "10.0.0.1"))
                await streams.enter_async_context(held_export(client, "10.0.0.2"))
                refusals = busy_refusals("export")
                refused = await client.get(EXPORT, headers=sent_from("10.0.0.3"))
                counted = busy_refusals("export") - refusals
                by_id = await client.get(f"{BOOKS}/{book_id}")
                listed = await client.get(BOOKS, params={"limit": 5})
                searched = await client.get(BOOKS, params={"q": "book", "limit": 5})
            # Both readers have gone, with most of their exports unsent.
            after = await served_again(client, "10.0.0.3")

    problem = assert_problem(refused, 503, "busy", instance=EXPORT)
    assert problem["detail"] == "Too many exports are in progress; retry later."
    assert refused.headers["retry-after"] == "10"
    assert counted == 1
    assert by_id.status_code == 200, by_id.text
    assert listed.status_code == 200, listed.text
    assert searched.status_code == 200, searched.text
    assert len(exported_ids(after)) == HELD_BOOKS


async def test_exports_past_the_per_address_cap_are_429_for_that_address_only(
    settings: Settings,
) -> None:
    """One export at a time per address (IPv6: per /64): a second from the same address, or
    from another address of the same /64, is a 429 problem; other addresses are served."""
    limited = bounded(settings, export_concurrency=10, export_per_address=1)
    await seed_books(limited)
    app = create_app(limited)
    with running_server(app) as url:
        async with reader(url) as client:
            refusals = rate_limit_refusals("export-per-address")
            async with held_export(client, "10.1.1.1"), held_export(client, "2001:db8:0:1::1"):
                same_address = await client.get(EXPORT, headers=sent_from("10.1.1.1"))
                same_block = await client.get(
                    EXPORT, params=NOTHING, headers=sent_from("2001:db8:0:1::2")
                )
                other_address = await client.get(
                    EXPORT, params=NOTHING, headers=sent_from("10.1.1.2")
                )
                other_block = await client.get(
                    EXPORT, params=NOTHING, headers=sent_from("2001:db8:0:2::1")
                )
                counted = rate_limit_refusals("export-per-address") - refusals
            after = await served_again(client, "10.1.1.1")

    problem = assert_problem(same_address, 429, "too-many-exports", instance=EXPORT)
    assert problem["detail"] == (
        "At most 1 export(s) may stream at once from one address; retry when one has ended."
    )
    assert same_address.headers["retry-after"] == "10"
    assert same_block.status_code == 429
    assert same_block.headers["retry-after"] == "10"
    assert counted == 2
    assert other_address.status_code == other_block.status_code == 200
    assert len(exported_ids(after)) == HELD_BOOKS


async def test_an_export_gives_its_turn_back_however_its_stream_ends(settings: Settings) -> None:
    """One export at a time: exports read to the end, an export refused for its filters, and
    one cut by the stream time limit each give the one turn back."""
    limited = bounded(
        settings, export_concurrency=1, export_per_address=1, stream_timeout_seconds=0.5
    )
    await seed_books(limited)
    app = create_app(limited)
    with running_server(app) as url:
        async with reader(url) as client:
            answers = [
                await client.get(EXPORT),
                await client.get(EXPORT),
                await client.get(EXPORT, params={"language": "xx"}),
            ]
            with contextlib.suppress(httpx.HTTPError):
                async with client.stream("GET", EXPORT) as cut:
                    lines = cut.aiter_lines()
                    await anext(lines)
                    await asyncio.sleep(1.5)  # past the stream's time limit: the server cuts it
                    async for _ in lines:
                        pass
            after = await served_again(client, "127.0.0.1")

    assert [answer.status_code for answer in answers] == [200, 200, 422]
    assert len(exported_ids(answers[0])) == HELD_BOOKS
    assert len(exported_ids(after)) == HELD_BOOKS


# --- an export's searches share the search slots ----------------------------------------------


async def test_a_search_export_takes_a_search_slot_for_its_batches(settings: Settings) -> None:
    """With every search slot taken (here by the test), an export with ``q`` is refused like
    a search (503 busy), not let through; an export without ``q`` takes no search slot."""
    limited = settings.model_copy(
        update={"search_concurrency": 1, "search_wait_seconds": 0.2, "export_concurrency": 1}
    )
    async with started(limited) as app, http(app, headers=await sign_in(app)) as client:
        await create_book(client, title="Dragon Days")
        refusals = busy_refusals("search")
        async with app.state.search_slots.held():
            refused = await client.get(EXPORT, params={"q": "dragon"})
            plain = await client.get(EXPORT)
        searched = await client.get(EXPORT, params={"q": "dragon"})

    problem = assert_problem(refused, 503, "busy", instance=EXPORT)
    assert problem["detail"] == "Too many searches are in progress; retry shortly."
    assert busy_refusals("search") == refusals + 1
    # The refused export gave its own turn back: the one export slot served the next two.
    assert len(exported_ids(plain)) == 1
    assert len(exported_ids(searched)) == 1


async def test_a_search_export_holds_no_search_slot_between_batches(settings: Settings) -> None:
    """The one search slot is taken for each batch's query, not for the whole stream: while a
    search export waits on its reader, searches are served."""
    limited = bounded(settings, search_concurrency=1, search_wait_seconds=1.0)
    await seed_books(limited)
    app = create_app(limited)
    with running_server(app) as url:
        async with reader(url) as client:
            async with held_export(client, "10.2.2.2", q="book"):
                searched = await client.get(BOOKS, params={"q": "book", "limit": 3})
            whole = await served_again(client, "10.2.2.2")
            searched_export = await client.get(EXPORT, params={"q": "book"})

    assert searched.status_code == 200, searched.text
    assert len(searched.json()["items"]) == 3
    assert len(exported_ids(searched_export)) == len(exported_ids(whole)) == HELD_BOOKS


@pytest.mark.parametrize("cap", [1, 3])
async def test_sequential_exports_from_one_address_are_never_refused(
    settings: Settings, cap: int
) -> None:
    """Exports answered whole (the in-process client reads each to its end) and HEADs (which
    stop after the first batch) give their turns back: one address may export again and
    again."""
    limited = settings.model_copy(update={"export_concurrency": cap, "export_per_address": cap})
    async with started(limited) as app, http(app, headers=await sign_in(app)) as client:
        await create_book(client)
        answers = [await client.get(EXPORT) for _ in range(cap + 1)]
        answers += [await client.head(EXPORT) for _ in range(cap + 1)]
        answers.append(await client.get(EXPORT))
    assert [answer.status_code for answer in answers] == [200] * (2 * cap + 3)
    assert len(exported_ids(answers[-1])) == 1
