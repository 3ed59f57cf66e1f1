"""Fixtures for the operating tests: the shared Redis, Redis servers of a test's own (one to
stall, a cluster) and a PostgreSQL-only database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import coredis
import pytest

from tests.conftest import empty_tables
from tests.ops.redis_servers import debuggable_redis, redis_cluster
from tests.ops.support import random_address

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class SharedRedis:
    """The test Redis. Other tests may use it too: each test takes fresh client addresses from
    ``address()`` and only the rate-limit keys naming those addresses are deleted afterwards."""

    url: str
    client: coredis.Redis  # type: ignore[type-arg]
    addresses: list[str] = field(default_factory=list)

    def address(self) -> str:
        address = random_address()
        self.addresses.append(address)
        return address

    async def keys_for(self, address: str) -> list[str]:
        return [
            key.decode() if isinstance(key, bytes) else str(key)
            async for key in self.client.scan_iter(match=f"LIMITS*address:{address}/*")
        ]


@pytest.fixture
async def shared_redis() -> AsyncIterator[SharedRedis]:
    url = os.environ.get("BOOKSHELF_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = coredis.Redis.from_url(url)
    try:
        async with asyncio.timeout(3):
            await client.ping()
    except (OSError, TimeoutError, coredis.exceptions.RedisError) as error:
        reason = f"Redis at {url} is not reachable: {error!r}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: Redis tests must run)")
        pytest.skip(reason)
    redis = SharedRedis(url, client)
    yield redis
    for address in redis.addresses:
        keys = await redis.keys_for(address)
        if keys:
            await client.delete(keys)


@pytest.fixture
async def pg_url(postgresql_url: str) -> AsyncIterator[str]:
    """The worker's PostgreSQL database, for PostgreSQL-only tests; emptied afterwards."""
    yield postgresql_url
    await empty_tables(postgresql_url)


@pytest.fixture
def debug_redis(tmp_path: Path) -> Iterator[int]:
    """The port of a Redis of the test's own that can be stalled (``redis_servers.stalled``)."""
    with debuggable_redis(tmp_path) as port:
        yield port


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """A three-node Redis Cluster for the module's tests; the ports of its nodes."""
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as ports:
        yield ports
