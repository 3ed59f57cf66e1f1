"""SIGTERM while requests are in flight: every accepted request completes.

Requests are made slow without touching the app: another session holds an ACCESS EXCLUSIVE
lock on ``books``, so every list query waits in PostgreSQL. SIGTERM arrives while ten of them
wait; the listening socket must close at once, the ten must all finish with 200 once the lock
is released, and the process must exit 0 within ``BOOKSHELF_GRACEFUL_SHUTDOWN_SECONDS``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.faults.conftest import ThrowawayPostgres
from tests.servers import BookshelfServer, running_bookshelf

pytestmark = pytest.mark.slow

IN_FLIGHT = 10
GRACE_SECONDS = 10
HOLD_AFTER_SIGTERM_SECONDS = 1.0


async def waiting_on_lock(monitor: asyncpg.Connection, expected: int) -> int:
    """Sessions of the server waiting on a lock, polled until ``expected`` (10 s at most)."""
    deadline = time.monotonic() + 10
    count = 0
    while time.monotonic() < deadline:
        count = await monitor.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        if count >= expected:
            break
        await asyncio.sleep(0.05)
    return int(count)


async def new_connection(base_url: str) -> str:
    """What a request on a new connection gets: "refused", a status, or the error."""
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as fresh:
            response = await fresh.get("/health/live")
    except httpx.ConnectError:
        return "refused"
    except httpx.HTTPError as error:
        return type(error).__name__
    return str(response.status_code)


async def drain(
    cluster: ThrowawayPostgres, server: BookshelfServer
) -> tuple[dict[str, object], float]:
    """What was observed, and when SIGTERM was sent (monotonic clock)."""
    url = cluster.url()
    locker = await asyncpg.connect(url, timeout=10)
    monitor = await asyncpg.connect(url, timeout=10)
    observed: dict[str, object] = {}
    limits = httpx.Limits(max_connections=IN_FLIGHT)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as http:
            assert (await http.get("/api/v1/books")).status_code == 200
            lock = locker.transaction()
            await lock.start()
            try:
                await locker.execute("LOCK TABLE books IN ACCESS EXCLUSIVE MODE")
                requests = [
                    asyncio.create_task(http.get("/api/v1/books", params={"limit": n + 1}))
                    for n in range(IN_FLIGHT)
                ]
                observed["waiting"] = await waiting_on_lock(monitor, IN_FLIGHT)
                server.process.send_signal(signal.SIGTERM)
                sent = time.monotonic()
                # uvicorn's supervisor (--workers > 1) passes signals on every 0.5 s.
                await asyncio.sleep(HOLD_AFTER_SIGTERM_SECONDS)
                observed["new connection after SIGTERM"] = await new_connection(server.base_url)
                observed["done before release"] = sum(task.done() for task in requests)
                observed["alive before release"] = server.process.poll() is None
            finally:
                await lock.rollback()
            results = await asyncio.wait_for(
                asyncio.gather(*requests, return_exceptions=True), timeout=GRACE_SECONDS
            )
    finally:
        await locker.close()
        await monitor.close()
    observed["results"] = [
        result.status_code if isinstance(result, httpx.Response) else repr(result)
        for result in results
    ]
    observed["bodies ok"] = all(
        isinstance(result, httpx.Response)
        and result.status_code == 200
        and "items" in result.json()
        for result in results
    )
    return observed, sent


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_every_accepted_request_finish_and_exits_0(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path, workers: int
) -> None:
    """One worker is the brief's case; two is what deploy/Dockerfile runs."""
    url = throwaway_postgres.url()
    grace = str(GRACE_SECONDS)
    with running_bookshelf(
        url, tmp_path, workers=workers, graceful_shutdown_seconds=grace
    ) as server:
        observed, sent = asyncio.run(drain(throwaway_postgres, server))
        try:
            code = server.process.wait(timeout=max(0.1, sent + GRACE_SECONDS - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = None
        exited_after = time.monotonic() - sent
        log = server.log()
        problems = server.log_problems()

    observed["drain logged"] = "SIGTERM: draining in-flight requests" in log
    observed["exit code"] = code
    observed["exited within grace"] = code is not None and exited_after <= GRACE_SECONDS
    # The ten were in flight, held in the database, when SIGTERM came; then all finished.
    # One worker closes its listening socket at once. With several, uvicorn's supervisor keeps
    # the shared socket until the workers have exited, so a new connection is accepted but never
    # answered (a known limitation, in the README): it must not be served, that is all.
    new_connection_outcomes = {"refused"} if workers == 1 else {"refused", "ReadTimeout"}
    if observed["new connection after SIGTERM"] in new_connection_outcomes:
        observed["new connection after SIGTERM"] = "not served"
    expected = {
        "waiting": IN_FLIGHT,
        "new connection after SIGTERM": "not served",
        "done before release": 0,
        "alive before release": True,
        "results": [200] * IN_FLIGHT,
        "bodies ok": True,
        "drain logged": True,
        "exit code": 0,
        "exited within grace": True,
    }
    assert observed == expected, f"server log, warnings and errors:\n{problems}"
