"""Rate limits: ``limits``' notation and sliding window counter, counted by ``counters.py`` in
one operation per request. Counters live in process memory by default and in Redis when
``BOOKSHELF_REDIS_URL`` is set, so every instance shares them.

Who is counted:
- Every API request counts against its client address (IPv6 addresses grouped by /64, the
  smallest block a client is usually given, so rotating through one's own block buys nothing).
- A request with a valid access token counts against its user as well: signing up N accounts
  does not multiply what one address may send.
- The sign-in, registration and refresh endpoints, the ones that mail an address or take a
  reset token, and every password check elsewhere (a password change), have a stricter budget
  (``rate_limit_auth``), per address and, where the account is known, per account.
- Sign-in attempts on one account from addresses it has never signed in from have a budget of
  their own (``rate_limit_sign_in_account``), whichever address they come from: guessing one
  account's password from many addresses (an IPv6 /48 holds 65,536 /64s) goes no faster than
  that. Attempts from an address the account has signed in from before are not counted, so
  nobody can lock the owner out of the places the owner signs in from. Counted per submitted
  email, whether or not it has an account, so the refusal tells nobody which addresses do.

When the shared store (Redis) does not answer, or not within ``BOOKSHELF_REDIS_TIMEOUT_MS``
(a stalled Redis is a failed one), ordinary requests are let through (an outage of the limiter
must not become an outage of the catalog), but the strict budgets fall back to counters in this
process: password guessing stays bounded per instance. Both are logged and counted in
``bookshelf_rate_limit_store_failures``. The request's time limit covers the limiter too
(``ops.pipeline.RequestPipeline``).

The client address is the connection's peer, which ``ProxyHeadersMiddleware`` replaces with the
``X-Forwarded-For`` client only when the peer is a configured trusted proxy.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from starlette.responses import Response
from starlette.types import Scope

from bookshelf.auth.exceptions import InvalidToken, TooManyPasswordAttempts
from bookshelf.auth.tokens import TokenSigner
from bookshelf.config import Settings
from bookshelf.ops import metrics
from bookshelf.ops.counters import (
    MAX_KEYS,
    REDIS_KEY_PREFIX,
    Count,
    MemoryCounters,
    RedisCounters,
    redis_client,
)
from bookshelf.problems import problem_response

logger = logging.getLogger("bookshelf.ratelimit")

# The strict budget: sign-in, registration, refresh, and the endpoints that mail an address or
# take a reset token.
AUTH_PATHS = frozenset(
    {
        "/auth/token",
        "/auth/register",
        "/auth/refresh",
        "/auth/verify-email/resend",
        "/auth/password-reset",
        "/auth/password-reset/confirm",
        "/auth/email-change/cancel",
    }
)
# The web app's forms that do what those endpoints do (``bookshelf.web``): their posts have the
# strict budget too, their pages (and every other page) the default one.
PAGE_AUTH_PATHS = frozenset(
    {
        "/sign-in",
        "/register",
        "/resend-verification",
        "/forgot-password",
        "/reset-password",
        "/verify-email",
        "/cancel-email-change",
    }
)
# The pages' assets: a page's own request is counted, not each of the files it loads.
ASSETS_PREFIX = "/static/"
DEFAULT, STRICT = "default", "auth"
SIGN_IN_ACCOUNT = "sign-in-account"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


@functools.lru_cache(maxsize=4096)
def address_key(host: str | None) -> str:
    """The bucket of a client address: IPv4 as is, IPv6 by its /64 (IPv4-mapped as IPv4)."""
    if not host:
        return "address:unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # not an IP (a Unix socket path, a test client's name)
        return f"address:{host}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"address:{address.ipv4_mapped}"
        return f"address:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"address:{address}"


def client_address_key(scope: Scope) -> str:
    client = scope.get("client")
    return address_key(client[0] if client else None)


class RateLimits:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        max_keys: int = MAX_KEYS,
        redis_key_prefix: str = REDIS_KEY_PREFIX,
    ) -> None:
        self.uses_redis = settings.redis_url is not None
        self.clock = clock
        self.redis = (
            RedisCounters(
                redis_client(
                    settings.redis_url.get_secret_value(),
                    timeout_seconds=settings.redis_timeout_seconds,
                ),
                key_prefix=redis_key_prefix,
            )
            if settings.redis_url is not None
            else None
        )
        # With Redis: strict budgets only, and only while Redis fails.
        self.memory = MemoryCounters(max_keys=max_keys)
        self.default = parse_many(settings.rate_limit_default)
        self.auth = parse_many(settings.rate_limit_auth)
        self.sign_in_account = parse_many(settings.rate_limit_sign_in_account)

    async def check(self) -> str:
        if self.redis is None or await self.redis.check():
            return "ok"
        return "not answering"

    @staticmethod
    def _decide(items: list[RateLimitItem], counts: list[Count]) -> Verdict:
        """The tightest count decides: the refusal lasting longest (the first of equals), else
        the fewest remaining (the first of equals). ``counts`` run identity by identity."""
        best, best_at = counts[0], 0
        for at in range(1, len(counts)):
            count = counts[at]
            if best.allowed:
                if not count.allowed or count.remaining < best.remaining:
                    best, best_at = count, at
            elif not count.allowed and count.reset_seconds > best.reset_seconds:
                best, best_at = count, at
        limit = items[best_at % len(items)].amount
        return Verdict(best.allowed, limit, best.remaining, best.reset_seconds)

    async def hit(self, name: str, identities: tuple[str, ...]) -> Verdict | None:
        """The verdict for one request; None when the store failed and the request may pass."""
        strict = name == STRICT
        return await self.count(
            name, self.auth if strict else self.default, identities, protective=strict
        )

    async def count(
        self,
        name: str,
        items: list[RateLimitItem],
        identities: tuple[str, ...],
        *,
        protective: bool,
    ) -> Verdict | None:
        """Count one event of budget ``name`` against every item for every identity. When the
        shared store fails, a protective budget (password guessing, mail to one address) is
        counted in this process instead; any other is let through (None)."""
        if self.redis is not None:
            try:
                counts = await self.redis.hit(name, items, identities)
            except Exception:
                outcome = "counted_in_process" if protective else "allowed"
                metrics.RATE_LIMIT_STORE_FAILURES.labels(name, outcome).inc()
                logger.warning(
                    "rate limit store unavailable; %s budget: request %s",
                    name,
                    outcome,
                    exc_info=True,
                )
                if not protective:
                    return None
            else:
                return self._decide(items, counts)
        return self._decide(items, self.memory.hit(name, items, identities, self.clock()))

    async def count_password_check(self, user_id: str, address: str) -> None:
        """Count a password check outside the sign-in endpoints (a password change) against the
        strict budget of both the account and the address (``address_key``); raise when either
        is spent."""
        verdict = await self.hit(STRICT, (f"user:{user_id}", address))
        if verdict is not None and not verdict.allowed:
            metrics.RATE_LIMITED.labels(STRICT).inc()
            raise TooManyPasswordAttempts(
                limit=verdict.limit, retry_after_seconds=verdict.reset_seconds
            )

    async def count_sign_in_attempt(self, login: str) -> None:
        """Count a sign-in attempt on the account ``login`` (its normalised email) from an
        address it has not signed in from (``SIGN_IN_ACCOUNT``); raise when that budget is
        spent. The key is a hash: the store never holds addresses."""
        key = "account:" + hashlib.sha256(login.encode()).hexdigest()[:32]
        # Protective: with the shared store down, still counted (in this process).
        verdict = await self.count(SIGN_IN_ACCOUNT, self.sign_in_account, (key,), protective=True)
        if verdict is not None and not verdict.allowed:
            metrics.RATE_LIMITED.labels(SIGN_IN_ACCOUNT).inc()
            raise TooManyPasswordAttempts(
                limit=verdict.limit, retry_after_seconds=verdict.reset_seconds
            )


def budget_for(
    scope: Scope, api_path: str, authorization: bytes | None, signer: TokenSigner
) -> tuple[str, tuple[str, ...]]:
    """The budget an API request counts against (``api_path`` is its path below the API
    prefix), and the identities it is counted for: its address, and its user when it carries
    a valid access token (checked once per process: ``TokenSigner.verify``)."""
    address = client_address_key(scope)
    if api_path in AUTH_PATHS:
        return STRICT, (address,)
    if authorization is not None and authorization[:7].lower() == b"bearer ":
        try:
            claims = signer.verify(authorization[7:].decode("latin-1"))
        except InvalidToken:
            return DEFAULT, (address,)
        return DEFAULT, (f"user:{claims.user_id}", address)
    return DEFAULT, (address,)


def page_budget(scope: Scope, path: str) -> tuple[str, tuple[str, ...]] | None:
    """The budget a request for a page of the web app counts against (None for its assets),
    per client address: the strict one for a form that signs in, registers, mails an address
    or takes a mailed link's token, the default one for everything else. (A signed-in
    browser's cookie is not read here: its requests count against its address.)"""
    if path.startswith(ASSETS_PREFIX):
        return None
    address = client_address_key(scope)
    if scope["method"] == "POST" and path in PAGE_AUTH_PATHS:
        return STRICT, (address,)
    return DEFAULT, (address,)


def verdict_headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    """The ``RateLimit-*`` headers (IETF draft) of every limited response."""
    return [
        (b"ratelimit-limit", str(verdict.limit).encode()),
        (b"ratelimit-remaining", str(verdict.remaining).encode()),
        (b"ratelimit-reset", str(verdict.reset_seconds).encode()),
    ]


def too_many_requests(verdict: Verdict, budget: str, path: str) -> Response:
    metrics.RATE_LIMITED.labels(budget).inc()
    return problem_response(
        None,
        status=429,
        title="Too many requests",
        detail=f"Rate limit of {verdict.limit} requests exceeded; "
        f"retry in {verdict.reset_seconds} s.",
        slug="rate-limited",
        instance=path,
        headers={"Retry-After": str(max(1, verdict.reset_seconds))},
    )
