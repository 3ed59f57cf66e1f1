"""PostgreSQL stops in the middle of traffic, then comes back.

While it is down every answer is a success or a 503 problem (never a 500, never a trace or SQL),
readiness names the database and liveness stays up. When it is back, the same server process
serves again within a bounded time, and every book whose POST was answered 201 is still there.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.faults.conftest import (
    PROBLEM_PREFIX,
    ThrowawayPostgres,
    bearer,
    create_admin,
    fold,
    leaks,
    new_book,
    problem_type,
    sign_in,
)
from tests.servers import BookshelfServer, running_bookshelf

pytestmark = pytest.mark.slow

CLIENTS = 3
MAX_REQUESTS = 3000  # bound on the whole background traffic
PAUSE_SECONDS = 0.02
UP_SECONDS = 1.0
DOWN_SECONDS = 2.0
RECOVERY_SECONDS = 20.0
ALLOWED_503 = {PROBLEM_PREFIX + "database-unavailable", PROBLEM_PREFIX + "timeout"}


@dataclass
class Traffic:
    phase: str = "up"
    stop: bool = False
    sent: int = 0
    committed: dict[str, str] = field(default_factory=dict)  # book id -> title
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # phase, request, status
    bad: list[str] = field(default_factory=list)


def check(traffic: Traffic, label: str, response: httpx.Response) -> None:
    traffic.seen.append((traffic.phase, label, response.status_code))
    leak = leaks(response.text)
    if leak is not None:
        traffic.bad.append(f"{label} -> {response.status_code} leaks {leak!r}: {response.text}")
    if response.status_code in (200, 201):
        return
    kind = problem_type(response)
    if response.status_code != 503 or kind not in ALLOWED_503:
        traffic.bad.append(
            f"[{traffic.phase}] {label} -> {response.status_code} "
            f"{response.headers.get('content-type')}: {response.text[:300]}"
        )
    elif "retry-after" not in response.headers:
        traffic.bad.append(f"{label} -> 503 without Retry-After")


async def client_loop(http: httpx.AsyncClient, traffic: Traffic, token: str, number: int) -> None:
    rng = random.Random(number)
    for step in itertools.count():
        if traffic.stop or traffic.sent >= MAX_REQUESTS:
            return
        traffic.sent += 1
        operation = (step + number) % 3
        try:
            if operation == 0:
                response = await http.get("/api/v1/books", params={"limit": 5})
                label = "GET /books"
            elif operation == 1:
                book_id = rng.choice(sorted(traffic.committed))
                response = await http.get(f"/api/v1/books/{book_id}")
                label = f"GET /books/{book_id}"
            else:
                payload = new_book(f"c{number}-{step}")
                response = await http.post("/api/v1/books", json=payload, headers=bearer(token))
                label = "POST /books"
                if response.status_code == 201:
                    traffic.committed[response.json()["id"]] = payload["title"]
        except httpx.HTTPError as error:
            traffic.bad.append(f"[{traffic.phase}] transport error {error!r}")
            return
        check(traffic, label, response)
        await asyncio.sleep(PAUSE_SECONDS)


async def wait_until_serving(http: httpx.AsyncClient, traffic: Traffic) -> float:
    """Seconds until a list and readiness both answer 200 again (bounded)."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS:
        listing = await http.get("/api/v1/books", params={"limit": 1})
        check(traffic, "GET /books (recovery probe)", listing)
        ready = await http.get("/health/ready")
        if listing.status_code == 200 and ready.status_code == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise AssertionError(f"not serving {RECOVERY_SECONDS:g} s after PostgreSQL came back")


async def outage(
    cluster: ThrowawayPostgres, mode: str, base_url: str, pid_alive: Callable[[], bool]
) -> Traffic:
    token = sign_in(base_url)["access_token"]
    traffic = Traffic()
    limits = httpx.Limits(max_connections=CLIENTS + 2)
    async with httpx.AsyncClient(base_url=base_url, timeout=20, limits=limits) as http:
        for number in range(5):
            payload = new_book(f"seed {number}")
            created = await http.post("/api/v1/books", json=payload, headers=bearer(token))
            assert created.status_code == 201, created.text
            traffic.committed[created.json()["id"]] = payload["title"]
        loops = [
            asyncio.create_task(client_loop(http, traffic, token, number))
            for number in range(CLIENTS)
        ]
        try:
            await asyncio.sleep(UP_SECONDS)
            traffic.phase = "stopping"
            await asyncio.to_thread(cluster.stop, mode)
            traffic.phase = "down"
            await asyncio.sleep(DOWN_SECONDS)

            ready = await http.get("/health/ready")
            assert ready.status_code == 503, ready.text
            assert problem_type(ready) == PROBLEM_PREFIX + "not-ready"
            assert ready.json()["checks"]["database"] != "ok"
            assert "database" in ready.json()["detail"]
            assert leaks(ready.text) is None, ready.text
            live = await http.get("/health/live")
            assert live.status_code == 200, live.text

            traffic.phase = "starting"
            await asyncio.to_thread(cluster.start)
            traffic.phase = "recovering"
            recovery = await wait_until_serving(http, traffic)
            traffic.phase = "after"
            await asyncio.sleep(UP_SECONDS)
        finally:
            traffic.stop = True
            await asyncio.gather(*loops, return_exceptions=True)
            if not cluster.is_running():  # a failed check must not leave the next test without it
                await asyncio.to_thread(cluster.start)
        traffic.phase = f"recovered in {recovery:.1f} s"
        assert pid_alive(), "the server process exited during the outage"
        missing = []
        for book_id, title in traffic.committed.items():
            response = await http.get(f"/api/v1/books/{book_id}")
            if response.status_code != 200 or response.json()["title"] != title:
                missing.append(f"{book_id}: {response.status_code} {response.text[:200]}")
        assert missing == [], f"committed books lost after the outage: {missing}"
    return traffic


@pytest.fixture(scope="module")
def server(
    throwaway_postgres: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BookshelfServer]:
    """One server process for both outages: it must survive and recover from each."""
    url = throwaway_postgres.url()
    log_dir = tmp_path_factory.mktemp("outage")
    with running_bookshelf(url, log_dir, meanwhile=lambda: create_admin(url)) as running:
        yield running


@pytest.mark.parametrize("mode", ["immediate", "fast"])
def test_requests_during_a_database_outage_get_503_and_the_server_recovers(
    throwaway_postgres: ThrowawayPostgres, server: BookshelfServer, mode: str
) -> None:
    """``mode`` is how PostgreSQL stops: ``immediate`` (a crash, then recovery on start) or
    ``fast`` (sessions terminated by the administrator)."""
    assert server.process.poll() is None, "the server exited before this test"
    pid, mark = server.pid, server.mark()
    alive = lambda: server.process.poll() is None  # noqa: E731
    try:
        traffic = asyncio.run(outage(throwaway_postgres, mode, server.base_url, alive))
    except AssertionError as error:
        pytest.fail(
            f"{error}\n--- server log, warnings and errors ---\n{server.log_problems(mark)}"
        )
    assert server.pid == pid
    assert server.process.poll() is None

    statuses = {(phase, status) for phase, _label, status in traffic.seen}
    if traffic.bad:
        pytest.fail(
            f"{len(traffic.bad)} of {len(traffic.seen)} responses were wrong ({traffic.phase}):"
            f"\n{fold(traffic.bad)}\n--- server log, warnings and errors ---\n"
            + server.log_problems(mark)
        )
    # The fault really happened and the traffic really overlapped it.
    assert ("up", 201) in statuses
    assert ("down", 503) in statuses
    assert ("after", 200) in statuses
    assert ("after", 201) in statuses
    assert traffic.sent < MAX_REQUESTS
