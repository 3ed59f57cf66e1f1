"""Password policy and Argon2id hashing (pwdlib).

Hashing is deliberately slow (tens of milliseconds of CPU), so it runs in a worker thread
(argon2-cffi releases the GIL) instead of blocking the event loop for every other request.
"""

from __future__ import annotations

import functools

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
MAX_BYTES = 1024

# zxcvbn's list of the 30,000 most common passwords from public breaches.
_COMMON_PASSWORDS = frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"])


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """Why ``password`` is not acceptable (an empty list when it is)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password.encode("utf-8", errors="surrogatepass")) > MAX_BYTES:
        problems.append(f"must be at most {MAX_BYTES} bytes long")
    folded = password.casefold()
    if folded in _COMMON_PASSWORDS:
        problems.append("is one of the most common passwords; choose another")
    if email is not None and folded in {email.casefold(), email.split("@")[0].casefold()}:
        problems.append("must not be your email address")
    return problems


class PasswordHasher:
    """Argon2id with the configured cost; verifies and hashes off the event loop."""

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))
        # Compared against when the account does not exist, so an unknown email costs the
        # same time as a wrong password and the two cannot be told apart.
        self._decoy = self._hash.hash("decoy password that matches nothing")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """True when ``password`` matches; with no hash, spends the same time and says False."""
        target = password_hash if password_hash is not None else self._decoy
        matches = await anyio.to_thread.run_sync(
            functools.partial(self._hash.verify, password, target)
        )
        return matches and password_hash is not None
