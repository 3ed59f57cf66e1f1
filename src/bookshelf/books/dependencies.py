"""Dependencies of the books feature."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from bookshelf.api import uuid_or_not_found
from bookshelf.books.exceptions import BookNotFound
from bookshelf.db.connections import handler_exits
from bookshelf.slots import Slots


async def parse_book_id(book_id: str) -> UUID:
    return uuid_or_not_found(book_id, BookNotFound)


BookId = Annotated[UUID, Depends(parse_book_id)]


async def search_slot(request: Request) -> None:
    """A search's turn (``GET /books?q=``): at most ``BOOKSHELF_SEARCH_CONCURRENCY`` run at once
    per worker, and one that waits past ``BOOKSHELF_SEARCH_WAIT_SECONDS`` is a 503 ``busy``
    problem (``SearchBusy``). Taken before the request's connection (a route dependency, solved
    first), so a queued search holds no pooled connection: however many searches arrive, the
    other requests still find connections. Given back when the handler returns, after the
    connection. A list without ``q`` takes none."""
    if not request.query_params.get("q"):
        return
    slots: Slots = request.app.state.search_slots
    await slots.take()
    handler_exits(request).callback(slots.give_back)
