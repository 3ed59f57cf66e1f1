"""Rate limits with the ``limits`` library: per user when the request carries a valid access
token, per client address otherwise, and a stricter per-address limit on the sign-in,
registration and refresh endpoints. Counters live in process memory by default and in Redis
when ``BOOKSHELF_REDIS_URL`` is set, so every instance shares them.

The client address is the connection's peer, which ``ProxyHeadersMiddleware`` replaces with the
``X-Forwarded-For`` client only when the peer is a configured trusted proxy.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookshelf.auth.tokens import InvalidToken, TokenSigner
from bookshelf.config import Settings
from bookshelf.ops import metrics
from bookshelf.problems import problem_response

logger = logging.getLogger("bookshelf.ratelimit")

AUTH_PATHS = frozenset({"/auth/token", "/auth/register", "/auth/refresh"})


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.uses_redis = settings.redis_url is not None
        self.storage: Storage = (
            RedisStorage("async+" + settings.redis_url)
            if settings.redis_url is not None
            else MemoryStorage()
        )
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.default = parse_many(settings.rate_limit_default)
        self.auth = parse_many(settings.rate_limit_auth)

    async def check(self) -> str:
        return "ok" if await self.storage.check() else "not answering"

    async def hit(self, items: list[RateLimitItem], *identifiers: str) -> Verdict:
        """Count one request against every item; the tightest one decides."""
        verdicts = []
        for item in items:
            allowed = await self.limiter.hit(item, *identifiers)
            stats = await self.limiter.get_window_stats(item, *identifiers)
            reset = max(0, math.ceil(stats.reset_time - time.time()))
            verdicts.append(Verdict(allowed, item.amount, stats.remaining, reset))
        refused = [v for v in verdicts if not v.allowed]
        if refused:
            return max(refused, key=lambda v: v.reset_seconds)
        return min(verdicts, key=lambda v: v.remaining)


class RateLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, limits: RateLimits, signer: TokenSigner, api_prefix: str
    ) -> None:
        self.app = app
        self.limits = limits
        self.signer = signer
        self.api_prefix = api_prefix

    def _identity(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                try:
                    claims = self.signer.verify_once(
                        value[7:].decode("latin-1"), scope.setdefault("state", {})
                    )
                except InvalidToken:
                    break
                return f"user:{claims.user_id}"
        client = scope.get("client")
        return f"address:{client[0] if client else 'unknown'}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.api_prefix):
            await self.app(scope, receive, send)
            return
        if path[len(self.api_prefix) :] in AUTH_PATHS:
            client = scope.get("client")
            name, items = "auth", self.limits.auth
            identity = f"address:{client[0] if client else 'unknown'}"
        else:
            name, items, identity = "default", self.limits.default, self._identity(scope)
        try:
            verdict = await self.limits.hit(items, name, identity)
        except Exception:
            logger.warning("rate limiter unavailable; request allowed", exc_info=True)
            await self.app(scope, receive, send)
            return
        headers = [
            (b"ratelimit-limit", str(verdict.limit).encode()),
            (b"ratelimit-remaining", str(verdict.remaining).encode()),
            (b"ratelimit-reset", str(verdict.reset_seconds).encode()),
        ]
        if not verdict.allowed:
            metrics.RATE_LIMITED.labels(name).inc()
            response = problem_response(
                None,
                status=429,
                title="Too many requests",
                detail=f"Rate limit of {verdict.limit} requests exceeded; "
                f"retry in {verdict.reset_seconds} s.",
                slug="rate-limited",
                instance=path,
                headers={"Retry-After": str(max(1, verdict.reset_seconds))},
            )
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
