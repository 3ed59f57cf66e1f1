"""A Redis that stops answering without going away (``DEBUG SLEEP`` on a Redis of the test's
own): each Redis command gives up after ``BOOKSHELF_REDIS_TIMEOUT_MS``, which counts as a store
failure (the fallback, its metric and its log line), and the request's time limit covers the
rate limiter. The stalls last several times what the answers are allowed, so a slow machine
cannot make these pass or fail by chance."""

from __future__ import annotations

import logging
import time
import uuid

import httpx
import pytest
from pydantic import SecretStr

from bookshelf.config import Settings
from bookshelf.ops.ratelimit import SIGN_IN_ACCOUNT, STRICT
from tests.factories import assert_problem
from tests.ops.redis_servers import stalled
from tests.ops.support import http, random_address, started, store_failures

BOOKS = "/api/v1/books"
TOKEN = "/api/v1/auth/token"
# A new email each run: its account's budget of sign-in attempts (BOOKSHELF_RATE_LIMIT_SIGN_IN_
# ACCOUNT) lives in the shared Redis for an hour, and these tests count per-address budgets.
BAD_LOGIN = {"username": f"nobody-{uuid.uuid4().hex[:12]}@example.org", "password": "wrong"}
STALL_SECONDS = 3.0
# Far above the 100 ms the Redis calls may take, far below the stall.
ANSWERED_WITHIN = 1.5


def on_redis(settings: Settings, port: int, **overrides: object) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_default": "50/hour",
            "rate_limit_auth": "5/hour",
            "redis_url": SecretStr(f"redis://127.0.0.1:{port}/0"),
            **overrides,
        }
    )


async def timed(request: object) -> tuple[httpx.Response, float]:
    started_at = time.monotonic()
    response = await request  # type: ignore[misc]
    return response, time.monotonic() - started_at


async def test_a_stalled_redis_costs_one_timeout_then_the_fallback(
    settings: Settings, debug_redis: int, caplog: pytest.LogCaptureFixture
) -> None:
    configured = on_redis(settings, debug_redis)
    assert configured.redis_timeout_ms == 100  # the default under test
    allowed = store_failures("default", "allowed")
    counted = store_failures(STRICT, "counted_in_process")
    counted_account = store_failures(SIGN_IN_ACCOUNT, "counted_in_process")
    async with started(configured) as app, http(app, address=random_address()) as client:
        before = await client.get(BOOKS)
        with (
            caplog.at_level(logging.WARNING, logger="bookshelf.ratelimit"),
            stalled(debug_redis, STALL_SECONDS),
        ):
            listed, list_seconds = await timed(client.get(BOOKS))
            signed_in, sign_in_seconds = await timed(client.post(TOKEN, data=BAD_LOGIN))
        after = await client.get(BOOKS)
    assert before.headers["ratelimit-remaining"] == "49"
    # The catalog is served during the stall, uncounted (no RateLimit headers) ...
    assert listed.status_code == 200
    assert "ratelimit-remaining" not in listed.headers
    assert list_seconds < ANSWERED_WITHIN
    # ... and sign-in is counted in this process instead.
    assert signed_in.status_code == 400, signed_in.text  # a wrong password, answered
    assert signed_in.headers["ratelimit-remaining"] == "4"
    assert sign_in_seconds < ANSWERED_WITHIN
    assert store_failures("default", "allowed") == allowed + 1
    assert store_failures(STRICT, "counted_in_process") == counted + 1
    assert store_failures(SIGN_IN_ACCOUNT, "counted_in_process") == counted_account + 1
    lines = [r for r in caplog.records if r.name == "bookshelf.ratelimit"]
    # Sign-in counts twice: its address's strict budget, and its account's.
    assert [(r.levelname, r.getMessage()) for r in lines] == [
        ("WARNING", "rate limit store unavailable; default budget: request allowed"),
        ("WARNING", "rate limit store unavailable; auth budget: request counted_in_process"),
        (
            "WARNING",
            "rate limit store unavailable; sign-in-account budget: request counted_in_process",
        ),
    ]
    assert all("timed out after 0.1 seconds" in str(r.exc_info and r.exc_info[1]) for r in lines)
    # Redis answers again: back on its counters. (The script sent before the timeout may have
    # run when Redis woke: the request it counted was one.)
    assert after.headers["ratelimit-remaining"] in {"47", "48"}


async def test_the_request_time_limit_covers_the_rate_limiter(
    settings: Settings, debug_redis: int
) -> None:
    """A Redis timeout longer than the request's time limit: the time limit answers."""
    configured = on_redis(
        settings, debug_redis, redis_timeout_ms=10_000, request_timeout_seconds=0.3
    )
    async with started(configured) as app, http(app, address=random_address()) as client:
        with stalled(debug_redis, STALL_SECONDS):
            response, seconds = await timed(client.get(BOOKS))
    assert_problem(response, 503, "timeout", instance=BOOKS)
    assert response.headers["retry-after"] == "1"
    assert seconds < ANSWERED_WITHIN
