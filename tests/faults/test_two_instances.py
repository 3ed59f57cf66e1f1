"""Two server processes on one PostgreSQL and one Redis behave as one service.

Rate-limit counters live in Redis, sessions and account state in PostgreSQL, and optimistic
concurrency in the database, so what one instance does is seen by the other at once. The
shared Redis is used through a database number of our own, flushed before use.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coredis
import httpx
import pytest

from tests.faults.conftest import (
    PROBLEM_PREFIX,
    ThrowawayPostgres,
    bearer,
    create_admin,
    new_book,
    problem_type,
    sign_in,
    unavailable,
)
from tests.faults.pgbouncer import running_pgbouncer
from tests.servers import BookshelfServer, running_servers

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("BOOKSHELF_TEST_FAULTS_REDIS_URL", "redis://127.0.0.1:6379/14")
ROUNDS = 10
# Limits high enough never to trip, for the tests that are not about rate limiting.
GENEROUS = {"rate_limit_default": "100000/hour", "rate_limit_auth": "1000/hour"}


def use_redis(*, flush: bool) -> None:
    """Check that Redis answers (skip, or fail under CI, if not); empty our database if asked."""

    async def run() -> None:
        client: Any = coredis.Redis.from_url(REDIS_URL)
        await asyncio.wait_for(client.flushdb() if flush else client.ping(), timeout=5)

    try:
        asyncio.run(run())
    except (OSError, TimeoutError, coredis.exceptions.RedisError) as error:
        unavailable(f"Redis at {REDIS_URL} is not reachable: {error!r}")


def shared_settings(**overrides: str) -> dict[str, str]:
    return {"redis_url": REDIS_URL, "rate_limit_enabled": "true", **overrides}


@pytest.fixture(scope="module")
def database_url(throwaway_postgres: ThrowawayPostgres) -> str:
    return throwaway_postgres.url()


@pytest.fixture(scope="module")
def pair(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BookshelfServer, BookshelfServer]]:
    # Not flushed here: under pytest-xdist the rate-limit test may be counting in another worker;
    # these limits are never reached, and their counters are keyed apart from its "6/hour".
    use_redis(flush=False)
    log_dir = tmp_path_factory.mktemp("pair")
    settings = shared_settings(**GENEROUS)
    admin = lambda: create_admin(database_url)  # noqa: E731
    with running_servers(2, database_url, log_dir, meanwhile=admin, **settings) as (a, b):
        yield a, b


@pytest.fixture(scope="module")
def admin_token(pair: tuple[BookshelfServer, BookshelfServer]) -> str:
    token: str = sign_in(pair[0].base_url)["access_token"]
    return token


def etag(version: int) -> str:
    return f'"{version}"'


def register(server: BookshelfServer) -> tuple[str, str, str]:
    """A new reader account, made through ``server``: (id, email, password)."""
    email = f"reader-{uuid.uuid4().hex[:8]}@faults.example.org"
    password = f"reader passphrase {uuid.uuid4().hex}"
    response = httpx.post(
        f"{server.base_url}/api/v1/auth/register",
        json={"email": email, "password": password},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    signed_in = httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        data={"username": email, "password": password},
        timeout=10,
    ).json()
    me = httpx.get(
        f"{server.base_url}/api/v1/users/me",
        headers={"Authorization": f"Bearer {signed_in['access_token']}"},
        timeout=10,
    )
    return me.json()["id"], email, password


def me(server: BookshelfServer, token: str) -> int:
    response = httpx.get(f"{server.base_url}/api/v1/users/me", headers=bearer(token), timeout=10)
    if response.status_code == 401:
        assert problem_type(response) == PROBLEM_PREFIX + "invalid-token", response.text
    return response.status_code


def test_the_rate_limit_is_shared(database_url: str, tmp_path: Path) -> None:
    use_redis(flush=True)
    settings = shared_settings(rate_limit_default="6/hour")
    with running_servers(2, database_url, tmp_path, **settings) as (a, b):
        first_six = [
            httpx.get(f"{s.base_url}/api/v1/books", timeout=10) for s in (a, a, a, b, b, b)
        ]
        seventh = [httpx.get(f"{s.base_url}/api/v1/books", timeout=10) for s in (a, b)]
        problems = a.log_problems() + "\n" + b.log_problems()

    assert [r.status_code for r in first_six] == [200] * 6, problems
    assert [r.headers.get("ratelimit-remaining") for r in first_six] == list("543210")
    assert [r.status_code for r in seventh] == [429, 429], problems
    for response in seventh:
        assert problem_type(response) == PROBLEM_PREFIX + "rate-limited", response.text
        assert response.headers["ratelimit-limit"] == "6"
        assert int(response.headers["retry-after"]) >= 1


def test_a_reused_refresh_token_signs_the_session_out_on_both(
    pair: tuple[BookshelfServer, BookshelfServer],
) -> None:
    a, b = pair
    _, email, password = register(b)
    first = sign_in(a.base_url, email, password)
    rotated = httpx.post(
        f"{a.base_url}/api/v1/auth/refresh",
        json={"refresh_token": first["refresh_token"]},
        timeout=10,
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert me(b, second["access_token"]) == 200

    reused = httpx.post(
        f"{b.base_url}/api/v1/auth/refresh",
        json={"refresh_token": first["refresh_token"]},
        timeout=10,
    )
    assert reused.status_code == 400, reused.text
    assert problem_type(reused) == PROBLEM_PREFIX + "invalid-grant"
    after = {
        (server_name, token_name): me(server, tokens["access_token"])
        for server_name, server in (("A", a), ("B", b))
        for token_name, tokens in (("first", first), ("rotated", second))
    }
    assert after == dict.fromkeys(after, 401)
    again = httpx.post(
        f"{a.base_url}/api/v1/auth/refresh",
        json={"refresh_token": second["refresh_token"]},
        timeout=10,
    )
    assert again.status_code == 400, again.text


def test_deactivation_through_one_instance_is_enforced_by_the_other_at_once(
    pair: tuple[BookshelfServer, BookshelfServer], admin_token: str
) -> None:
    a, b = pair
    user_id, email, password = register(a)
    token = sign_in(b.base_url, email, password)["access_token"]
    assert me(b, token) == 200
    deactivated = httpx.patch(
        f"{a.base_url}/api/v1/users/{user_id}",
        json={"is_active": False},
        headers=bearer(admin_token),
        timeout=10,
    )
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["is_active"] is False
    assert (me(b, token), me(a, token)) == (401, 401)


async def race_patches(a: BookshelfServer, b: BookshelfServer, token: str) -> dict[str, Any]:
    """ROUNDS rounds of one PATCH through each instance with the same If-Match."""
    headers = bearer(token)
    async with (
        httpx.AsyncClient(base_url=a.base_url, headers=headers, timeout=20) as via_a,
        httpx.AsyncClient(base_url=b.base_url, headers=headers, timeout=20) as via_b,
    ):
        created = await via_a.post("/api/v1/books", json=new_book("race"))
        assert created.status_code == 201, created.text
        path = f"/api/v1/books/{created.json()['id']}"
        rounds, successes, last_title = [], 0, created.json()["title"]
        for number in range(ROUNDS):
            current = await via_b.get(path)
            tag, version = current.headers["etag"], current.json()["version"]
            assert tag == etag(version)
            titles = (f"Race {number} via A", f"Race {number} via B")
            answers = await asyncio.gather(
                *(
                    client.patch(path, json={"title": title}, headers={"If-Match": tag})
                    for client, title in zip((via_a, via_b), titles, strict=True)
                )
            )
            rounds.append(sorted(answer.status_code for answer in answers))
            for answer, title in zip(answers, titles, strict=True):
                if answer.status_code == 200:
                    successes += 1
                    last_title = title
                    assert answer.headers["etag"] == etag(version + 1)
                elif answer.status_code == 412:
                    assert problem_type(answer) == PROBLEM_PREFIX + "version-mismatch"
        final = (await via_a.get(path)).json()
    return {"rounds": rounds, "successes": successes, "final": final, "last_title": last_title}


def assert_no_lost_update(outcome: dict[str, Any], problems: str) -> None:
    assert outcome["rounds"] == [[200, 412]] * ROUNDS, problems
    assert outcome["final"]["version"] == outcome["successes"] + 1
    assert outcome["final"]["title"] == outcome["last_title"]


def test_concurrent_patches_through_both_instances_lose_no_update(
    pair: tuple[BookshelfServer, BookshelfServer], admin_token: str
) -> None:
    a, b = pair
    outcome = asyncio.run(race_patches(a, b, admin_token))
    assert_no_lost_update(outcome, a.log_problems() + "\n" + b.log_problems())


# "documented": what the README says to set behind PgBouncer (the statement cache off);
# "no statement timeout": also BOOKSHELF_DATABASE_STATEMENT_TIMEOUT_MS=0, because the timeout is
# sent as a startup parameter, which PgBouncer refuses unless told to ignore it.
BOUNCER_SETTINGS = {
    "documented": {"database_statement_cache": "false"},
    "no statement timeout": {
        "database_statement_cache": "false",
        "database_statement_timeout_ms": "0",
    },
}


@pytest.mark.parametrize("variant", list(BOUNCER_SETTINGS))
def test_concurrent_patches_through_pgbouncer_in_transaction_mode(
    throwaway_postgres: ThrowawayPostgres,
    database_url: str,
    admin_token: str,
    tmp_path: Path,
    variant: str,
) -> None:
    """The same race with both instances behind PgBouncer (transaction pooling). Skipped,
    even under CI, when pgbouncer is not installed."""
    with running_pgbouncer(throwaway_postgres) as bouncer:
        settings = shared_settings(**GENEROUS, **BOUNCER_SETTINGS[variant])
        with running_servers(2, bouncer.url(), tmp_path, **settings) as (a, b):
            ready = [httpx.get(f"{s.base_url}/health/ready", timeout=10) for s in (a, b)]
            listing = httpx.get(f"{a.base_url}/api/v1/books", timeout=10)
            problems = a.log_problems() + "\n" + b.log_problems()
            assert ([r.status_code for r in ready], listing.status_code) == ([200, 200], 200), (
                f"{ready[0].text}\n{listing.text}\n{problems}\n--- pgbouncer log ---\n"
                + "\n".join(bouncer.log_text().splitlines()[-6:])
            )
            outcome = asyncio.run(race_patches(a, b, admin_token))
            assert_no_lost_update(outcome, a.log_problems() + "\n" + b.log_problems())
