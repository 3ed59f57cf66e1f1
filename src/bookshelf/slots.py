"""A bounded number of holders at once, and a bounded wait for a turn.

How the service caps work that is expensive per request (password hashes, searches): a burst
waits briefly for a slot, then is refused fast (a 503 problem with ``Retry-After``) instead of
piling up, holding memory or database connections while it queues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bookshelf.ops import metrics


class Slots:
    """At most ``size`` holders at once; ``take`` waits up to ``max_wait_seconds`` for a free
    slot, then raises what ``busy`` returns (counted as a refusal of ``work`` in the metrics).
    Each ``take`` that returned is matched by exactly one ``give_back``."""

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
        try:
            async with asyncio.timeout(self._max_wait_seconds):
                await self._free.acquire()
        except TimeoutError:
            self._refusals.inc()
            raise self._busy() from None

    def give_back(self) -> None:
        self._free.release()
