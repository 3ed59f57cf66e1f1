"""A bounded number of holders at once, and a bounded wait for a turn.

How the service caps work that is expensive per request (password hashes, searches, bulk
imports and exports): a burst waits briefly for a slot, then is refused fast (a 503 problem
with ``Retry-After``) instead of piling up, holding memory or database connections while it
queues. ``SlotsPerKey`` caps the holders of one key (a client's address) the same way, with no
wait.

A holder may name a key (the client's address): then at most one holder per key at a time,
and the key's later arrivals wait behind it within the same bounded wait. So one client (or
one network, the address bucket being a /64 for IPv6) never holds more than one slot, however
many requests it sends at once, and the slots stay shared among clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from bookshelf.ops import metrics


class _Turn:
    """One key's turn: held by one holder; ``users`` counts its holder and those waiting."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class Slots:
    """At most ``size`` holders at once (and one per key); ``take`` waits up to
    ``max_wait_seconds`` in all for its turn (0: not at all), then raises what ``busy`` returns
    (counted as a refusal of ``work`` in the metrics). Each ``take`` that returned is matched by
    exactly one ``give_back`` with the same key."""

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
        # Keys with a holder or someone waiting; forgotten when neither is left, so this holds
        # at most one entry per request in flight.
        self._turns: dict[str, _Turn] = {}

    async def take(self, key: str | None = None) -> None:
        if key is None:
            await self._take_slot(self._max_wait_seconds)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_seconds
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = _Turn()
        turn.users += 1
        try:
            # Anyone else holding or awaiting the key's turn goes first.
            await self._wait(turn.lock.acquire(), self._max_wait_seconds, now=turn.users == 1)
            try:
                await self._take_slot(deadline - loop.time())
            except BaseException:
                turn.lock.release()
                raise
        except BaseException:
            self._leave(key, turn)
            raise

    def give_back(self, key: str | None = None) -> None:
        self._free.release()
        if key is not None:
            turn = self._turns[key]
            turn.lock.release()
            self._leave(key, turn)

    @asynccontextmanager
    async def held(self, key: str | None = None) -> AsyncIterator[None]:
        """A slot for the block: taken before it, given back after it, however it ends."""
        await self.take(key)
        try:
            yield
        finally:
            self.give_back(key)

    def _leave(self, key: str, turn: _Turn) -> None:
        turn.users -= 1
        if not turn.users:
            del self._turns[key]

    async def _take_slot(self, wait_seconds: float) -> None:
        await self._wait(self._free.acquire(), wait_seconds, now=not self._free.locked())

    async def _wait(
        self, acquire: Coroutine[Any, Any, bool], wait_seconds: float, *, now: bool
    ) -> None:
        """Await ``acquire``: at once when ``now`` says it will not suspend (no timer to arm
        and cancel), else for at most ``wait_seconds``."""
        if now:
            await acquire
            return
        if wait_seconds <= 0:
            acquire.close()  # never started: nothing to wait for
            self._refusals.inc()
            raise self._busy()
        try:
            async with asyncio.timeout(max(0.0, wait_seconds)):
                await acquire
        except TimeoutError:
            self._refusals.inc()
            raise self._busy() from None


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
