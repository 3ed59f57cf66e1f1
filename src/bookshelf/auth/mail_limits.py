"""Budgets of the endpoints that cause mail: the strict per-address auth budget (as for
sign-in), and a budget per *target* address, so nobody can mail-bomb an address from many
client addresses. The target's budget is counted whether or not the address has an account,
and spending it changes nothing in the answer: the mail is just not written."""

from __future__ import annotations

import hashlib
import logging

from limits import parse_many
from starlette.types import Scope

from bookshelf.auth.exceptions import TooManyMailRequests
from bookshelf.ops import metrics
from bookshelf.ops.ratelimit import STRICT, RateLimits, client_address_key

logger = logging.getLogger("bookshelf.ratelimit")

TARGET = "mail-target"


class MailLimits:
    def __init__(self, limits: RateLimits, target_rate: str) -> None:
        self.limits = limits
        self.items = parse_many(target_rate)

    async def count_address(self, scope: Scope) -> None:
        """The strict per-address budget; raise 429 when it is spent."""
        verdict = await self.limits.hit(STRICT, (client_address_key(scope),))
        if verdict is not None and not verdict.allowed:
            metrics.RATE_LIMITED.labels(STRICT).inc()
            raise TooManyMailRequests(
                limit=verdict.limit, retry_after_seconds=verdict.reset_seconds
            )

    async def target_allows(self, email: str) -> bool:
        """Whether another mail may go to ``email`` now (counted). The key is a hash: the
        limiter's store never holds addresses."""
        key = "email:" + hashlib.sha256(email.encode()).hexdigest()[:32]
        # Protective: with the shared store down, still counted (in this process).
        verdict = await self.limits.count(TARGET, self.items, (key,), protective=True)
        if verdict is not None and not verdict.allowed:
            metrics.RATE_LIMITED.labels(TARGET).inc()
            logger.warning("mail target budget spent; no mail written")
            return False
        return True
