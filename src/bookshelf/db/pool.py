"""A pool of driver connections, the same for both drivers.

asyncpg has a pool of its own, but every release there runs in a new task (``asyncio.shield``)
and every checkout with a time limit under ``wait_for``: a large part of a GET by id
(measured in process: bench/RESULTS.md), for work that here is a list ``pop`` and ``append``.
aiosqlite has no pool at all. This one does what the service needs and no more:

- at most ``size`` connections, opened lazily (the service starts while the database is down);
  a checkout waits up to ``timeout`` for a free one, then raises ``DatabaseUnavailable``
  (a 503);
- ``expire()`` (a connection was found lost: a database restart) closes the idle connections
  and marks the checked-out ones to be closed when they come back, so one request meets the
  restart instead of one per pooled connection;
- a connection that comes back unusable (closed, or still in a transaction the caller could
  not end) is closed instead of kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bookshelf.db.exceptions import DatabaseUnavailable

C = TypeVar("C")


class Pool(Generic[C]):
    def __init__(
        self,
        *,
        size: int,
        timeout: float,
        open_connection: Callable[[], Awaitable[C]],
        close_connection: Callable[[C], Awaitable[None]],
    ) -> None:
        self.size = size
        self._timeout = timeout
        self._open_connection = open_connection
        self._close_connection = close_connection
        self._slots = asyncio.Semaphore(size)
        self._idle: list[C] = []
        self._generation = 0
        self._generations: dict[int, int] = {}  # id(connection) -> generation it was opened in
        self._closed = False

    @property
    def open_count(self) -> int:
        return len(self._generations)

    @property
    def checked_out(self) -> int:
        return len(self._generations) - len(self._idle)

    async def acquire(self) -> C:
        if self._closed:
            raise DatabaseUnavailable("the pool is closed")
        if self._slots.locked():  # only then is a timer worth its cost
            try:
                async with asyncio.timeout(self._timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise DatabaseUnavailable("no pooled connection came free in time") from None
        else:
            await self._slots.acquire()  # returns at once
        if self._idle:
            return self._idle.pop()
        try:
            connection = await self._open_connection()
        except BaseException:
            self._slots.release()
            raise
        self._generations[id(connection)] = self._generation
        return connection

    def keep(self, connection: C) -> bool:
        """Put ``connection`` back for the next checkout, if it belongs to the current
        generation and the pool is open: no await, so the caller needs no shield against
        cancellation. False (and nothing done) when it must be closed (``release``)."""
        if self._closed or self._generations.get(id(connection)) != self._generation:
            return False
        self._idle.append(connection)
        self._slots.release()
        return True

    async def release(self, connection: C, *, reusable: bool) -> None:
        """Give ``connection`` back: kept for the next checkout if ``reusable`` and not expired,
        closed otherwise. Never raises."""
        if reusable and self.keep(connection):
            return
        try:
            await self._discard(connection)
        finally:
            self._slots.release()

    async def _discard(self, connection: C) -> None:
        self._generations.pop(id(connection), None)
        with contextlib.suppress(Exception):
            await self._close_connection(connection)

    async def expire(self) -> None:
        """Replace every connection: the idle ones now, the checked-out ones on release."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._discard(connection)

    async def close(self) -> None:
        self._closed = True
        await self.expire()
