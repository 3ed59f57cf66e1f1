"""Dependencies of the books feature."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from starlette.datastructures import State

from bookshelf.api import uuid_or_not_found
from bookshelf.books.exceptions import BookNotFound, ExportBusy, ImportBusy, TooManyExports
from bookshelf.config import Settings
from bookshelf.dependencies import Exit, exit_calling, with_exit
from bookshelf.ops.ratelimit import client_address_key
from bookshelf.slots import Slots, SlotsPerKey


def book_id_from_path(book_id: str) -> UUID:
    """The book id of a path: a UUID, or ``BookNotFound`` (anything else names no book: a 404,
    not a 422). ``BookId`` parses with it; ``GET /books/{book_id}`` calls it in the route,
    where a dependency would be one more to solve per request on the hottest route."""
    return uuid_or_not_found(book_id, BookNotFound)


async def parse_book_id(book_id: str) -> UUID:
    return book_id_from_path(book_id)


BookId = Annotated[UUID, Depends(parse_book_id)]

# The conditional-request headers of a book's routes (``bookshelf.conditional`` reads them).
IfMatch = Annotated[
    str | None,
    Header(
        max_length=1000,
        description='Only change the book if its ETag is one of these (e.g. `"3"`), else 412.',
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(max_length=1000, description="Answer 304 if the book's ETag is one of these."),
]


@with_exit
async def search_slot(request: Request) -> tuple[None, Exit | None]:
    """A search's turn (``GET /books?q=``): at most ``BOOKSHELF_SEARCH_CONCURRENCY`` run at once
    per worker, and one that waits past ``BOOKSHELF_SEARCH_WAIT_SECONDS`` is a 503 ``busy``
    problem (``SearchBusy``). Taken before the request's connection (a route dependency, solved
    first), so a queued search holds no pooled connection: however many searches arrive, the
    other requests still find connections. Given back when the handler returns, after the
    connection. A list without ``q`` takes none."""
    if not request.query_params.get("q"):
        return None, None
    slots: Slots = request.app.state.search_slots
    await slots.take()
    return None, exit_calling(slots.give_back)


# How long an import waits for its turn: about what one import at the caps takes (bench/
# RESULTS.md). A queued import holds no connection and has not read its body.
IMPORT_WAIT_SECONDS = 5.0


def add_bulk_slots(state: State, settings: Settings) -> None:
    """The worker's slots of imports and exports, and its exports per client address."""
    state.import_slots = Slots(
        settings.import_concurrency,
        work="import",
        max_wait_seconds=IMPORT_WAIT_SECONDS,
        busy=ImportBusy,
    )
    state.export_slots = Slots(
        settings.export_concurrency, work="export", max_wait_seconds=0, busy=ExportBusy
    )
    state.export_address_slots = SlotsPerKey(
        settings.export_per_address,
        limit="export-per-address",
        refused=lambda: TooManyExports(settings.export_per_address),
    )


@with_exit
async def import_slot(request: Request) -> tuple[None, Exit]:
    """An import's turn (``POST /books/import``): at most ``BOOKSHELF_IMPORT_CONCURRENCY`` run
    at once per worker, and one that waits past ``IMPORT_WAIT_SECONDS`` is a 503 ``busy``
    problem (``ImportBusy``). Taken before the request's connection, like a search's (on
    SQLite a writer's connection holds the write lock, which the running import needs), and
    before the body is read, so at most so many bodies are held at once. Given back when the
    handler returns, after the connection."""
    slots: Slots = request.app.state.import_slots
    await slots.take()
    return None, exit_calling(slots.give_back)


async def take_export_turn(request: Request) -> Callable[[], None]:
    """An export's turn (``GET /books/export``), refused at once past
    ``BOOKSHELF_EXPORT_PER_ADDRESS`` exports from the client's address (a 429
    ``too-many-exports`` problem; IPv6 by /64, as the rate limits count) or
    ``BOOKSHELF_EXPORT_CONCURRENCY`` exports on the worker (503 ``busy``): waiting is no use
    when a turn lasts a whole stream. Not a dependency, since the turn outlives the handler:
    this returns the function that gives it back, once however often it is called."""
    per_address: SlotsPerKey = request.app.state.export_address_slots
    worker: Slots = request.app.state.export_slots
    address = client_address_key(request.scope)
    per_address.take(address)
    try:
        await worker.take()  # no wait: refused at once, or taken without suspending
    except BaseException:
        per_address.give_back(address)
        raise
    given_back = False

    def give_back() -> None:
        nonlocal given_back
        if not given_back:
            given_back = True
            worker.give_back()
            per_address.give_back(address)

    return give_back
