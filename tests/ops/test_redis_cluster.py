"""The rate limits on a Redis Cluster (``redis+cluster://``): three primaries started for this
module, so a request's counters land in several hash slots on several nodes. The counts, the
keys and their sharing with ``limits``' own cluster storage (a previous release, in a rolling
deploy) are those of a single Redis."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from limits import parse_many
from limits.aio.storage import RedisClusterStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from pydantic import SecretStr

from bookshelf.config import Settings
from bookshelf.ops.counters import RedisCounters, redis_client
from bookshelf.ops.ratelimit import STRICT
from tests.ops.redis_servers import CLUSTER_PASSWORD, keys_by_node
from tests.ops.support import http, random_address, started, store_failures

BOOKS = "/api/v1/books"


def cluster_url(ports: list[int]) -> str:
    """Two of the nodes (the client finds the third) and the password, percent-encoded."""
    nodes = ",".join(f"127.0.0.1:{port}" for port in ports[:2])
    return f"redis+cluster://:{quote(CLUSTER_PASSWORD, safe='')}@{nodes}"


async def test_counters_on_a_cluster_count_as_on_one_redis(cluster_ports: list[int]) -> None:
    prefix = f"cluster-{uuid.uuid4().hex}"
    counters = RedisCounters(
        redis_client(cluster_url(cluster_ports), timeout_seconds=1), key_prefix=prefix
    )
    items = parse_many("5/minute;20/hour")
    identities = ("user:u", "address:a")

    first = await counters.hit("default", items, identities)
    second = await counters.hit("default", items, identities)

    assert [(c.allowed, c.remaining) for c in first] == [(True, 4), (True, 19)] * 2
    assert [(c.allowed, c.remaining) for c in second] == [(True, 3), (True, 18)] * 2
    # limits' key names, each counter's (here: current window only) on its node.
    expected = sorted(
        counters.key("default", item, identity) for identity in identities for item in items
    )
    held = keys_by_node(cluster_ports, f"{prefix}:*")
    assert sorted(key for keys in held.values() for key in keys) == expected
    assert len([keys for keys in held.values() if keys]) >= 2, held  # really across nodes
    # limits' cluster storage (what a previous release would run) reads the same counts.
    limiter = SlidingWindowCounterRateLimiter(
        RedisClusterStorage(
            f"async+redis+cluster://127.0.0.1:{cluster_ports[0]}",
            key_prefix=prefix,
            password=CLUSTER_PASSWORD,  # (limits does not percent-decode a URL's password)
        )
    )
    stats = await limiter.get_window_stats(items[0], "default", "user:u")
    assert stats.remaining == 3
    assert await limiter.hit(items[1], "default", "address:a")
    (after_limits,) = await counters.hit("default", items[1:], ("address:a",))
    assert after_limits.remaining == 16


async def test_rate_limits_run_on_a_cluster_url(
    settings: Settings, cluster_ports: list[int]
) -> None:
    on_cluster = settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_default": "3/hour",
            "rate_limit_auth": "3/hour",
            "redis_url": SecretStr(cluster_url(cluster_ports)),
        }
    )
    failures = store_failures("default", "allowed"), store_failures(STRICT, "counted_in_process")
    async with started(on_cluster) as app, http(app, address=random_address()) as client:
        answers = [await client.get(BOOKS) for _ in range(4)]
        ready = await client.get("/health/ready")
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers.get("ratelimit-remaining") for r in answers] == ["2", "1", "0", "0"]
    assert (store_failures("default", "allowed"), store_failures(STRICT, "counted_in_process")) == (
        failures
    )
    assert ready.status_code == 200, ready.text
