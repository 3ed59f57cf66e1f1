"""Password policy and Argon2id hashing (pwdlib), bounded in memory.

Each Argon2id hash takes ``memory_kib`` of RAM (64 MiB by default) for tens of milliseconds of
CPU, so it runs in a worker thread (argon2-cffi releases the GIL) instead of blocking the event
loop. Unbounded, every concurrent sign-in would add another 64 MiB to the worker: a handful of
parallel sign-ins gets a pod OOM-killed. So at most ``concurrency`` hashes run at once per
process; a request waits for a slot at most ``max_wait_seconds`` and then gets a fast 503 with
``Retry-After`` (``HashingBusy``) instead of queueing without end. A hash that has started always
finishes in its thread and only then gives its slot back, so the bound holds even when the
request waiting for it is cancelled. A hash made for a client names the client's address
bucket (``client``): one client address, or IPv6 /64, holds at most one slot at a time, so
guesses sent in parallel from one network cannot take every slot from everyone else's
sign-ins; its other requests wait behind it within the same bounded wait.

Peak memory of a worker is therefore its base size plus ``concurrency * memory_kib`` (see the
memory budget in docs/deploying.md).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from bookshelf.auth.exceptions import HashingBusy
from bookshelf.slots import Slots

MIN_LENGTH = 12
MAX_BYTES = 1024

# zxcvbn's list of the 30,000 most common passwords from public breaches, case-folded, one a
# line (written by tools/shipped_data.py). Kept as the one string it is read as: ~240 KB, where
# a frozenset of 30,000 strings costs a worker ~5 MiB. Finding a line in it takes tens of
# microseconds, nothing next to the Argon2 hash that follows every check.
_COMMON_PASSWORDS = "\n" + (
    resources.files("bookshelf.auth").joinpath("common_passwords.txt").read_text(encoding="utf-8")
)

_T = TypeVar("_T")


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """Why ``password`` is not acceptable (an empty list when it is)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password.encode("utf-8", errors="surrogatepass")) > MAX_BYTES:
        problems.append(f"must be at most {MAX_BYTES} bytes long")
    folded = password.casefold()
    if _is_common(folded):
        problems.append("is one of the most common passwords; choose another")
    if email is not None and folded in {email.casefold(), email.split("@")[0].casefold()}:
        problems.append("must not be your email address")
    return problems


def _is_common(folded: str) -> bool:
    # A password spanning lines could match two adjacent entries; no entry has a line break.
    return "\n" not in folded and f"\n{folded}\n" in _COMMON_PASSWORDS


class PasswordHasher:
    """Argon2id with the configured cost; hashes off the event loop, a bounded number at once.

    Callers must not hold a database connection or transaction while awaiting these methods:
    a hash can wait for a slot and then take a few hundred milliseconds.
    """

    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        concurrency: int = 2,
        max_wait_seconds: float = 2.0,
    ) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))
        self._slots = Slots(
            concurrency,
            work="password_hash",
            max_wait_seconds=max_wait_seconds,
            busy=lambda: HashingBusy(retry_after_seconds=1),
        )
        self._threads: ThreadPoolExecutor | None = None
        self.concurrency = concurrency
        # Compared against when the account does not exist, so an unknown email costs the
        # same time as a wrong password and the two cannot be told apart.
        self._decoy = self._hash.hash("decoy password that matches nothing")

    async def _bounded(self, work: Callable[[], _T], client: str | None) -> _T:
        await self._slots.take(client)
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.concurrency, "password-hash")
        running = asyncio.get_running_loop().run_in_executor(self._threads, work)
        # The slot is freed when the thread is done with its memory, not when the request
        # stops waiting: a cancelled request (client gone, timeout) must not free it early.
        running.add_done_callback(lambda _: self._slots.give_back(client))
        return await asyncio.shield(running)

    def close(self) -> None:
        """Let the hashing threads end (they are started again on the next hash)."""
        if self._threads is not None:
            self._threads.shutdown(wait=False)
            self._threads = None

    async def hash(self, password: str, *, client: str | None = None) -> str:
        """``client``: the address bucket of the client it is for (one slot per client)."""
        return await self._bounded(functools.partial(self._hash.hash, password), client)

    async def verify(
        self, password: str, password_hash: str | None, *, client: str | None = None
    ) -> bool:
        """True when ``password`` matches; with no hash, spends the same time and says False."""
        matches, _ = await self.verify_and_update(password, password_hash, client=client)
        return matches

    async def verify_and_update(
        self, password: str, password_hash: str | None, *, client: str | None = None
    ) -> tuple[bool, str | None]:
        """Whether ``password`` matches, and a new hash when the stored one was made with older
        cost settings (store it, so accounts move to the current cost as they sign in)."""
        target = password_hash if password_hash is not None else self._decoy
        matches, updated = await self._bounded(
            functools.partial(self._hash.verify_and_update, password, target), client
        )
        if password_hash is None:
            return False, None
        return matches, updated
