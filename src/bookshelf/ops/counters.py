"""The counters behind the rate limits: one operation counts a request and answers how much of
the budget is left, in process memory or in Redis.

Both keep the ``limits`` library's sliding window counter: a limit of N per window allows a
request while ``floor(previous window's count * the part of the previous window still inside the
sliding window + current window's count) < N``, and a refused request is not counted. What
``limits`` needs two operations for (``hit``, then ``get_window_stats``), these do in one: in
memory a dict lookup, in Redis one script for every limit and identity of the request (on a
Redis Cluster, one per limit and identity, all sent at once: see ``RedisCounters``).

Redis keys and their lifetimes are exactly those of ``limits``' Redis storage (and of its
cluster storage), so instances of an older release keep sharing the counters during a rolling
deploy. The cluster support changed no key for that reason: each counter's two keys already
share a hash tag (limits' braces), so a counter is what is run per slot, and a request's
counters are never moved under one tag of their own, which would rename every key (a deploy
would then start every budget afresh, old and new instances counting apart until the old are
gone) and, since one user's counter is counted with many addresses, could only be one tag for
everything: the whole limiter on one node.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import unquote, urlsplit

from limits import RateLimitItem

if TYPE_CHECKING:  # the client is imported only with Redis configured: ~16 MiB per process
    import coredis
    from coredis.typing import KeyT, ValueT

    RedisClient = coredis.Redis[bytes] | coredis.RedisCluster[bytes]

# Identities one in-process counter keeps (those counted in the last two windows). Past it the
# least recently counted is forgotten: its next request starts a fresh budget. About 180 bytes
# each plus the identity's string (measured: ~25 MB per limit at the bound).
MAX_KEYS = 100_000

REDIS_KEY_PREFIX = "LIMITS"  # limits' default: the keys older releases use
# A Redis Cluster, in limits' notation: redis+cluster://[user:password@]host:port[,host:port]
CLUSTER_SCHEME = "redis+cluster"


class Count(NamedTuple):
    """One request counted against one limit for one identity."""

    allowed: bool
    remaining: int
    reset_seconds: int  # until the budget grows again, rounded up (0: nothing counted)


def window_count(
    allowed: bool,
    limit: int,
    expiry: float,
    previous_count: int,
    previous_ttl: float,
    current_count: int,
    current_ttl: float,
) -> Count:
    """The answer of ``limits``' ``get_window_stats`` for a window just counted into.

    ``previous_ttl`` is the part of the previous window still inside the sliding window (0 when
    it counted nothing); ``current_ttl`` is what is left of the current window plus one window.
    """
    remaining = max(0, limit - math.floor(previous_count * previous_ttl / expiry + current_count))
    if not (previous_count or current_count):
        return Count(allowed, remaining, 0)
    reset = math.inf
    if previous_count:
        # The weighted previous count drops by one every expiry / previous_count seconds.
        step = expiry / previous_count
        reset = previous_ttl % step or step
    if current_count:
        # The current window becomes the previous one. (limits answers 0 when this falls
        # exactly on the window's start; a whole window is the truth.)
        reset = min(reset, current_ttl % expiry or expiry)
    return Count(allowed, remaining, math.ceil(reset))


class _Window:
    """One identity's counts: the current window (its number and count) and the one before."""

    __slots__ = ("current", "number", "previous")

    def __init__(self, number: int) -> None:
        self.number = number
        self.current = 0
        self.previous = 0

    def count(self, number: int) -> int:
        if number == self.number:
            return self.current
        if number == self.number - 1:
            return self.previous
        return 0


class MemoryCounter:
    """One limit (``limit`` requests per ``expiry`` seconds) for every identity, in this process.

    Synchronous: in one event loop nothing runs between reading and counting. Identities are kept
    in least-recently-counted order, so the ones whose windows have both ended are always at the
    front, and are dropped there when a new identity arrives; at most ``max_keys`` are kept.
    """

    def __init__(self, limit: int, expiry: int, *, max_keys: int = MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.limit = limit
        self.expiry = expiry
        self.max_keys = max_keys
        self.evicted = 0  # live identities forgotten because of max_keys
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def hit(self, identity: str, now: float) -> Count:
        expiry = self.expiry
        # Window numbers as limits' memory storage computes them (its keys' suffixes).
        current_number = int(now / expiry)
        previous_number = int((now - expiry) / expiry)
        window = self._windows.get(identity)
        if window is None:
            self._make_room(current_number)
            window = self._windows[identity] = _Window(current_number)
        else:
            self._windows.move_to_end(identity)
        previous_count = window.count(previous_number)
        current_count = window.count(current_number)
        # Seconds of the previous window still inside the sliding window, and of the current
        # window plus one (the lifetime limits gives a window's counter).
        previous_ttl = (1 - ((now - expiry) / expiry) % 1) * expiry if previous_count else 0.0
        current_ttl = (1 - (now / expiry) % 1) * expiry + expiry
        allowed = math.floor(previous_count * previous_ttl / expiry + current_count) < self.limit
        if allowed:
            current_count += 1
            if current_number > window.number:
                window.previous = window.count(current_number - 1)
                window.number = current_number
                window.current = 0
            # (A clock stepped back counts into the newest window.)
            window.current += 1
        return window_count(
            allowed, self.limit, expiry, previous_count, previous_ttl, current_count, current_ttl
        )

    def _make_room(self, current_number: int) -> None:
        windows = self._windows
        # Both windows of the least recently counted identities have ended: nothing to keep.
        while windows and next(iter(windows.values())).number + 2 <= current_number:
            windows.popitem(last=False)
        if len(windows) >= self.max_keys:
            windows.popitem(last=False)
            self.evicted += 1


class MemoryCounters:
    """The in-process counters of every budget (a budget being a name and its limits)."""

    def __init__(self, *, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._budgets: dict[str, tuple[MemoryCounter, ...]] = {}

    def budget(self, name: str, items: list[RateLimitItem]) -> tuple[MemoryCounter, ...]:
        counters = self._budgets.get(name)
        if counters is None:
            counters = self._budgets[name] = tuple(
                MemoryCounter(item.amount, item.get_expiry(), max_keys=self.max_keys)
                for item in items
            )
        return counters

    def hit(
        self, name: str, items: list[RateLimitItem], identities: tuple[str, ...], now: float
    ) -> list[Count]:
        """Count one request for every identity against every item (identities outermost)."""
        counters = self.budget(name, items)
        return [counter.hit(identity, now) for identity in identities for counter in counters]


# KEYS: the previous and the current window's key of each counter, in pairs; ARGV: the limit
# and the window (seconds) of each, in pairs. limits' two scripts (acquire_sliding_window.lua,
# then sliding_window.lua) in one, for every counter: shift an ended current window into the
# previous one, count the request if the weighted count allows it, and return per counter
# allowed (1/0), previous count, previous PTTL, current count, current PTTL.
_HIT_SCRIPT = """
local result = {}
for i = 1, #KEYS, 2 do
    local previous_key, current_key = KEYS[i], KEYS[i + 1]
    local limit = tonumber(ARGV[i])
    local expiry = tonumber(ARGV[i + 1]) * 1000
    local current_ttl = redis.call('pttl', current_key)
    if current_ttl > 0 and current_ttl < expiry then
        redis.call('rename', current_key, previous_key)
        redis.call('set', current_key, 0, 'PX', current_ttl + expiry)
    end
    local previous_count = tonumber(redis.call('get', previous_key)) or 0
    local previous_ttl = math.max(redis.call('pttl', previous_key), 0)
    local current_count = tonumber(redis.call('get', current_key)) or 0
    local allowed = 0
    if math.floor(previous_count * previous_ttl / expiry) + current_count < limit then
        allowed = 1
        if redis.call('exists', current_key) == 1 then
            current_count = redis.call('incrby', current_key, 1)
        else
            redis.call('set', current_key, 1, 'PX', expiry * 2)
            current_count = 1
        end
    end
    local n = #result
    result[n + 1] = allowed
    result[n + 2] = previous_count
    result[n + 3] = previous_ttl
    result[n + 4] = current_count
    result[n + 5] = math.max(redis.call('pttl', current_key), 0)
end
return result
"""


def redis_client(url: str, *, timeout_seconds: float) -> RedisClient:
    """A client for ``BOOKSHELF_REDIS_URL`` (``redis+unix://`` accepted, as limits does; a
    ``redis+cluster://`` URL names a cluster's startup nodes).

    Every command, and every connection attempt, waits at most ``timeout_seconds``, and a
    command that timed out is not tried again: a stalled Redis costs a request one timeout,
    then the fallback (``ratelimit.RateLimits.count``). A dropped connection (Redis restarted)
    is tried again once, at once, on a new one."""
    import coredis
    from coredis.retry import ConstantRetryPolicy

    options: dict[str, Any] = {
        "stream_timeout": timeout_seconds,
        "connect_timeout": timeout_seconds,
        "retry_policy": ConstantRetryPolicy((coredis.exceptions.ConnectionError,), 1, 0),
    }
    parts = urlsplit(url)
    if parts.scheme != CLUSTER_SCHEME:
        return coredis.Redis.from_url(url.replace("redis+unix://", "unix://", 1), **options)
    from coredis.typing import Node

    credentials, _, nodes = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    return coredis.RedisCluster(
        startup_nodes=[
            Node(host=host.strip("[]"), port=int(port))  # (an IPv6 address in brackets)
            for host, _, port in (node.rpartition(":") for node in nodes.split(","))
        ],
        username=unquote(username) or None,
        password=unquote(password) or None,
        **options,
    )


class RedisCounters:
    """The counters of every budget in Redis, shared by every instance: one round trip counts a
    request against every limit for every identity.

    A Redis Cluster runs a script only on keys of one hash slot. Each counter's two keys share
    one (the braces of limits' names), but a request's counters do not: there, one script per
    counter, all sent at once (still one round trip's wait). Each counter's decision was its own
    in the one script too, so the answers are the same."""

    def __init__(self, client: RedisClient, *, key_prefix: str = REDIS_KEY_PREFIX) -> None:
        from coredis import RedisCluster

        self.client = client
        self.key_prefix = key_prefix
        self.per_counter = isinstance(client, RedisCluster)
        self._script = client.register_script(_HIT_SCRIPT)

    def key(self, name: str, item: RateLimitItem, identity: str) -> str:
        """The current window's key, as limits' ``RedisStorage`` names it (the previous
        window's is this plus ``/-1``)."""
        return f"{self.key_prefix}:{{{item.key_for(name, identity)}}}"

    async def hit(
        self, name: str, items: list[RateLimitItem], identities: tuple[str, ...]
    ) -> list[Count]:
        """Count one request for every identity against every item (identities outermost)."""
        keys: list[KeyT] = []
        arguments: list[ValueT] = []
        for identity in identities:
            for item in items:
                current = self.key(name, item, identity)
                keys += (current + "/-1", current)
                arguments += (item.amount, item.get_expiry())
        if self.per_counter:
            replies = await asyncio.gather(
                *(
                    self._script.execute(keys[at : at + 2], arguments[at : at + 2])
                    for at in range(0, len(keys), 2)
                )
            )
            reply = [value for part in replies for value in cast(list[Any], part)]
        else:
            reply = cast(list[Any], await self._script.execute(keys, arguments))
        counts = []
        offset = 0
        for _ in identities:
            for item in items:
                allowed, previous_count, previous_ttl, current_count, current_ttl = reply[
                    offset : offset + 5
                ]
                offset += 5
                counts.append(
                    window_count(
                        bool(allowed),
                        item.amount,
                        item.get_expiry(),
                        int(previous_count),
                        int(previous_ttl) / 1000,
                        int(current_count),
                        int(current_ttl) / 1000,
                    )
                )
        return counts

    async def check(self) -> bool:
        try:
            await self.client.ping()
        except Exception:
            return False
        return True
