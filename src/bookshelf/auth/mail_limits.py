"""The budget per *target* address of the endpoints that cause mail, so nobody can mail-bomb an
address from many client addresses. (Per client address, those endpoints have the strict
budget of sign-in, applied by the request pipeline: ``ops.ratelimit.AUTH_PATHS``.) The
target's budget is counted whether or not the address has an account, and spending it changes
nothing in the answer: the mail is just not written."""

from __future__ import annotations

import hashlib
import logging

from limits import parse_many

from bookshelf.ops import metrics
from bookshelf.ops.ratelimit import RateLimits

logger = logging.getLogger("bookshelf.ratelimit")

TARGET = "mail-target"


class MailLimits:
    def __init__(self, limits: RateLimits, target_rate: str) -> None:
        self.limits = limits
        self.items = parse_many(target_rate)

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
