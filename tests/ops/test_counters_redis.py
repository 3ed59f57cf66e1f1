"""The Redis rate-limit counters, against the test Redis: limits' keys and answers from one round
trip, and RateLimits riding out a Redis that goes away and comes back. Each test uses a key prefix
of its own, deleted afterwards."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from limits import parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from pydantic import SecretStr

from bookshelf.config import Settings
from bookshelf.ops.counters import Count, RedisCounters, redis_client
from bookshelf.ops.ratelimit import STRICT, RateLimits, Verdict
from tests.ops.conftest import SharedRedis
from tests.ops.support import store_failures

HOUR = 3600


@pytest.fixture
async def prefix(shared_redis: SharedRedis) -> AsyncIterator[str]:
    prefix = f"test-counters-{uuid.uuid4().hex}"
    yield prefix
    keys = [key async for key in shared_redis.client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await shared_redis.client.delete(keys)


def limits_limiter(url: str, prefix: str) -> SlidingWindowCounterRateLimiter:
    return SlidingWindowCounterRateLimiter(RedisStorage("async+" + url, key_prefix=prefix))


async def limits_count(
    limiter: SlidingWindowCounterRateLimiter, spec: str, name: str, identity: str
) -> Count:
    """What RateLimits did before counters.py, for one item: limits' hit, then its stats."""
    (item,) = parse_many(spec)
    allowed = await limiter.hit(item, name, identity)
    stats = await limiter.get_window_stats(item, name, identity)
    return Count(allowed, stats.remaining, max(0, math.ceil(stats.reset_time - time.time())))


async def test_keys_and_counts_are_shared_with_limits(
    shared_redis: SharedRedis, prefix: str
) -> None:
    """An instance of the previous release counts in the same keys (a rolling deploy)."""
    limiter = limits_limiter(shared_redis.url, prefix)
    counters = RedisCounters(redis_client(shared_redis.url, timeout_seconds=1), key_prefix=prefix)
    items = parse_many("5/hour")
    for _ in range(2):
        await limiter.hit(items[0], "default", "address:a")
    (count,) = await counters.hit("default", items, ("address:a",))
    assert (count.allowed, count.remaining) == (True, 2)
    assert HOUR - 2 <= count.reset_seconds <= HOUR
    assert (await limiter.get_window_stats(items[0], "default", "address:a")).remaining == 2
    key = f"{prefix}:{{LIMITER/default/address:a/5/1/hour}}"
    assert counters.key("default", items[0], "address:a") == key
    assert [k async for k in shared_redis.client.scan_iter(match=f"{prefix}:*")] == [key.encode()]


async def test_a_fresh_window_resets_after_a_whole_window(
    shared_redis: SharedRedis, prefix: str
) -> None:
    counters = RedisCounters(redis_client(shared_redis.url, timeout_seconds=1), key_prefix=prefix)
    assert await counters.hit("default", parse_many("5/hour"), ("address:a",)) == [
        Count(True, 4, HOUR)
    ]


async def test_answers_equal_limits_across_a_window_shift(
    shared_redis: SharedRedis, prefix: str
) -> None:
    """limits (its two scripts) and the counters (one) in lockstep on keys of their own; the
    end of a window is brought forward by shortening the keys' lifetimes (Redis' clock)."""
    limiter = limits_limiter(shared_redis.url, prefix + "-limits")
    counters = RedisCounters(redis_client(shared_redis.url, timeout_seconds=1), key_prefix=prefix)
    spec, name = "6/hour", "default"
    items = parse_many(spec)

    async def both(identity: str) -> tuple[Count, Count]:
        expected = await limits_count(limiter, spec, name, identity)
        (count,) = await counters.hit(name, items, (identity,))
        return expected, count

    async def age(identity: str, milliseconds: int) -> None:
        for key_prefix in (prefix + "-limits", prefix):
            key = RedisCounters(shared_redis.client, key_prefix=key_prefix).key(
                name, items[0], identity
            )
            await shared_redis.client.pexpire(key, milliseconds)

    pairs = [await both("address:a") for _ in range(7)]
    # 5600 s later the current window has 2000 s left of its two-window lifetime: the next
    # request shifts it to the previous window, of which floor(6 * 2000/3600) = 3 still count.
    await age("address:a", 2_000_000)
    pairs += [await both("address:a") for _ in range(4)]
    for expected, count in pairs:
        assert (count.allowed, count.remaining) == (expected.allowed, expected.remaining)
        if expected.reset_seconds == 0 and count.reset_seconds == HOUR:
            continue  # limits' 0 when its stats ran in the window's first millisecond
        assert abs(count.reset_seconds - expected.reset_seconds) <= 1
    assert [count.allowed for _, count in pairs] == [True] * 6 + [False] + [True] * 3 + [False]


async def test_every_limit_and_identity_in_one_round_trip(
    shared_redis: SharedRedis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    counters = RedisCounters(redis_client(shared_redis.url, timeout_seconds=1), key_prefix=prefix)
    calls = 0
    execute = counters._script.execute

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await execute(*args, **kwargs)

    monkeypatch.setattr(counters._script, "execute", counted)
    counts = await counters.hit("default", parse_many("5/minute;20/hour"), ("user:u", "address:a"))
    assert calls == 1
    assert [c.remaining for c in counts] == [4, 19, 4, 19]


class Proxy:
    """A TCP relay to the test Redis that can be taken down and brought back on its port."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target_host, self.target_port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.target = parts
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return urlunsplit(self.target._replace(netloc=f"127.0.0.1:{self.port}"))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            self.target_host, self.target_port
        )
        self.writers += [writer, upstream_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, RuntimeError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def test_rate_limits_ride_out_a_redis_outage(
    settings: Settings, shared_redis: SharedRedis, prefix: str
) -> None:
    proxy = Proxy(shared_redis.url)
    await proxy.start()
    limits = RateLimits(
        settings.model_copy(
            update={
                "rate_limit_enabled": True,
                "rate_limit_default": "5/hour",
                "rate_limit_auth": "3/hour",
                "redis_url": SecretStr(proxy.url),
            }
        ),
        redis_key_prefix=prefix,
    )
    identities = ("address:a",)
    try:
        before = [await limits.hit("default", identities) for _ in range(2)]
        assert await limits.check() == "ok"
        await proxy.stop()
        allowed, counted = (
            store_failures("default", "allowed"),
            store_failures(STRICT, "counted_in_process"),
        )
        # Ordinary requests pass uncounted; the strict budget is counted in this process.
        assert await limits.hit("default", identities) is None
        during = [await limits.hit(STRICT, identities) for _ in range(4)]
        assert await limits.check() == "not answering"
        assert store_failures("default", "allowed") == allowed + 1
        assert store_failures(STRICT, "counted_in_process") == counted + 4
        await proxy.start()
        after = await limits.hit("default", identities)
        assert await limits.check() == "ok"
    finally:
        if proxy.server is not None and proxy.server.is_serving():
            await proxy.stop()
    assert [(v.allowed, v.remaining) for v in before] == [(True, 4), (True, 3)]
    assert [(v.allowed, v.remaining) for v in during] == [
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
    ]
    # Back on Redis, whose counts were kept: the request during the outage was not counted.
    assert after == Verdict(True, 5, 2, after.reset_seconds)
    assert HOUR - 5 <= after.reset_seconds <= HOUR
