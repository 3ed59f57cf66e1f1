"""A bounded number of holders at once, and a bounded wait for a turn.

How the service caps work that is expensive per request (password hashes, searches, bulk
imports and exports): a burst waits briefly for a slot, then is refused fast (a 503 problem
with ``Retry-After``) instead of piling up, holding memory or database connections while it
queues. ``SlotsPerKey`` caps the holders of one key (a client's address) the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from bookshelf.ops import metrics


class Slots:
    """At most ``size`` holders at once; ``take`` waits up to ``max_wait_seconds`` for a free
    slot (0: not at all), then raises what ``busy`` returns (counted as a refusal of ``work``
    in the metrics). Each ``take`` that returned is matched by exactly one ``give_back``."""

    def __init__(
        self,
        size: int,
        *,
        work: str,
        max_wait_seconds: float,
        busy: Callable[[], Exception],
    ) -> None:
        self._free = asyncio.Semaphore(size)
        self._max_wait_seconds = max_wait_seconds
        self._busy = busy
        self._refusals = metrics.BUSY_REFUSALS.labels(work)

    async def take(self) -> None:
        if not self._free.locked():
            # A free slot is taken without suspending: no timer to arm and cancel.
            await self._free.acquire()
            return
        if self._max_wait_seconds == 0:
            self._refusals.inc()
            raise self._busy()
        try:
            async with asyncio.timeout(self._max_wait_seconds):
                await self._free.acquire()
        except TimeoutError:
            self._refusals.inc()
            raise self._busy() from None

    def give_back(self) -> None:
        self._free.release()

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """A slot for the block: taken before it, given back after it, however it ends."""
        await self.take()
        try:
            yield
        finally:
            self.give_back()


class SlotsPerKey:
    """At most ``size`` holders of each key at once, refused at once past that with what
    ``refused`` returns (counted as a rate-limit refusal of ``limit`` in the metrics). Only
    keys with holders are remembered, so the memory is that of the holders."""

    def __init__(self, size: int, *, limit: str, refused: Callable[[], Exception]) -> None:
        self._size = size
        self._refused = refused
        self._refusals = metrics.RATE_LIMITED.labels(limit)
        self._holders: dict[str, int] = {}

    def take(self, key: str) -> None:
        held = self._holders.get(key, 0)
        if held >= self._size:
            self._refusals.inc()
            raise self._refused()
        self._holders[key] = held + 1

    def give_back(self, key: str) -> None:
        held = self._holders.pop(key) - 1
        if held:
            self._holders[key] = held
