"""A burst of concurrent sign-ins against a running server, and the worker's peak memory.

Argon2id needs ``password_hash_memory_kib`` (64 MiB by default) per hash in flight, so a burst of
sign-ins is the cheapest way to grow a worker's memory. Bookshelf caps the hashes in flight
(``BOOKSHELF_PASSWORD_HASH_CONCURRENCY``) and answers the overflow with a fast 503; this measures
that the cap holds (peak RSS from the kernel's high-water mark, ``VmHWM``) and that the worker
still answers its liveness probe meanwhile. Used by the bench's ``signin`` part and by
``tests/faults/test_signin_burst.py``.

The burst comes from ``clients`` client addresses (127.0.0.10, .11, …: all of 127/8 is
loopback), each sending its share of the requests at once, the first client's all before the
second's: a greedy client first, as in a guessing run beside real users. What is measured is
whether each client's first attempt is still served (``clients_refused_entirely``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret


def _status_kib(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise LookupError(f"{name} not in /proc/{pid}/status")


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """The most memory the process has ever had resident (the kernel's high-water mark)."""
    return _status_kib(pid, "VmHWM") / 1024


@dataclass
class BurstResult:
    statuses: Counter[int] = field(default_factory=Counter)
    # Clients every one of whose requests was refused busy (503).
    clients_refused_entirely: int = 0
    # 503s that came without a Retry-After header (should be none).
    busy_without_retry_after: int = 0
    live_statuses: list[int] = field(default_factory=list)
    live_slowest_seconds: float = 0.0
    seconds: float = 0.0


async def _sign_in(
    client: httpx.AsyncClient, email: str, password: str, result: BurstResult
) -> int:
    response = await client.post(TOKEN_PATH, data={"username": email, "password": password})
    result.statuses[response.status_code] += 1
    if response.status_code == 503 and "retry-after" not in response.headers:
        result.busy_without_retry_after += 1
    return response.status_code


def client_address(number: int) -> str:
    """The loopback source address of burst client ``number``."""
    return f"127.0.0.{10 + number}"


async def _probe_liveness(
    client: httpx.AsyncClient, done: asyncio.Event, result: BurstResult
) -> None:
    while not done.is_set():
        started = time.perf_counter()
        try:
            status = (await client.get("/health/live", timeout=5)).status_code
        except httpx.HTTPError:
            status = 0
        result.live_slowest_seconds = max(
            result.live_slowest_seconds, time.perf_counter() - started
        )
        result.live_statuses.append(status)
        await asyncio.sleep(0.05)


async def _burst(base_url: str, email: str, password: str, shares: Sequence[int]) -> BurstResult:
    result = BurstResult()
    limits = httpx.Limits(max_connections=max(shares) + 1)
    senders = [
        httpx.AsyncClient(
            base_url=base_url,
            timeout=60,
            limits=limits,
            transport=httpx.AsyncHTTPTransport(local_address=client_address(n), limits=limits),
        )
        for n in range(len(shares))
    ]
    try:
        done = asyncio.Event()
        probe = asyncio.create_task(_probe_liveness(senders[0], done, result))
        started = time.perf_counter()
        # Half with the right password, half with a wrong one: both cost one hash. Client 0's
        # requests are sent first, then client 1's, and so on.
        by_client = [n for n, share in enumerate(shares) for _ in range(share)]
        statuses = await asyncio.gather(
            *(
                _sign_in(
                    senders[client],
                    email,
                    password if n % 2 == 0 else password + " (wrong)",
                    result,
                )
                for n, client in enumerate(by_client)
            )
        )
        result.seconds = time.perf_counter() - started
        done.set()
        await probe
    finally:
        for sender in senders:
            await sender.aclose()
    for client in range(len(shares)):
        mine = [
            status for status, sender in zip(statuses, by_client, strict=True) if sender == client
        ]
        if all(status == 503 for status in mine):
            result.clients_refused_entirely += 1
    return result


def sign_in_burst(
    base_url: str,
    *,
    email: str,
    password: str,
    requests: int = 32,
    clients: int = 1,
    shares: Sequence[int] | None = None,
) -> BurstResult:
    """``requests`` sign-ins sent at once from ``clients`` addresses (an even share each, or
    ``shares[n]`` from client n), while ``/health/live`` is polled."""
    if shares is None:
        shares = [requests // clients + (n < requests % clients) for n in range(clients)]
    return asyncio.run(_burst(base_url, email, password, shares))
