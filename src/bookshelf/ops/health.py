"""Liveness and readiness.

``/health/live``: the process answers. ``/health/ready``: it can serve traffic — the database
answers, its migrations are at head, Redis answers (when configured), and the process is not
draining after SIGTERM. A failing check is named in the 503 problem, so an operator sees why a
pod left the load balancer.

Readiness must neither lie nor cost: a probe that waits behind busy request traffic for a pooled
connection would take a healthy pod out of rotation exactly when it is busiest, and a probe that
runs its checks on every call turns a probe storm into database load. So the checks run on a
pool of their own (one connection: the request pool's state never decides readiness), at most
once per ``BOOKSHELF_READINESS_CACHE_SECONDS`` however many probes arrive (one runs the checks,
the others wait for its answer), and draining is reported at once, never from the cache. The
migrations' heads are ``db.migrate.HEADS``, held equal to Alembic's by a test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bookshelf.db import migrate
from bookshelf.db.database import Database, unit_of_work
from bookshelf.db.exceptions import DatabaseUnavailable
from bookshelf.ops.ratelimit import RateLimits
from bookshelf.problems import problem_response

router = APIRouter(prefix="/health", include_in_schema=False)
logger = logging.getLogger("bookshelf.health")

CHECK_TIMEOUT_SECONDS = 2.0
_SELECT_1 = text("SELECT 1")
OK = "ok"
# What a failing check reports: the kind of failure, never an exception's class or message
# (they leak the driver and the infrastructure to whoever can reach the probe).
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
UNKNOWN = "unknown"


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


class Readiness:
    """The readiness checks, single-flight and cached, on a connection budget of their own."""

    def __init__(
        self,
        database: Database,
        rate_limits: RateLimits | None,
        *,
        cache_seconds: float,
        timeout_seconds: float = CHECK_TIMEOUT_SECONDS,
    ) -> None:
        self.database = database
        self._redis = rate_limits if rate_limits is not None and rate_limits.uses_redis else None
        self._cache_seconds = cache_seconds
        self._timeout_seconds = timeout_seconds
        self._lock = asyncio.Lock()
        self._checked_at = float("-inf")
        self._checks: dict[str, str] = {}

    def _fresh(self) -> bool:
        return time.monotonic() - self._checked_at < self._cache_seconds

    async def checks(self) -> dict[str, str]:
        """The latest result, or a new one if it is older than the cache period."""
        if self._fresh():
            return self._checks
        async with self._lock:
            # A probe that waited for the lock takes the result of the one that held it.
            if not self._fresh():
                self._checks = await self._run_checks()
                self._checked_at = time.monotonic()
        return self._checks

    async def _run_checks(self) -> dict[str, str]:
        checks = await self._database()
        if self._redis is not None:
            checks["redis"] = await self._outcome("redis", self._redis.check())
        return checks

    async def _database(self) -> dict[str, str]:
        """Database and migrations on one checkout: the migrations check needs the database."""
        checks = {"database": UNKNOWN, "migrations": UNKNOWN}
        heads = migrate.HEADS

        async def probe() -> str:
            try:
                current = await self._revisions(checks)
            except DatabaseUnavailable:
                # The pooled connection may be one a database restart broke (its loss has
                # expired the pool): one more try, on a new connection, reports the database.
                current = await self._revisions(checks)
            return OK if current == heads else f"at {', '.join(current) or None}, not at head"

        outcome = await self._outcome("database", probe())
        if checks["database"] == OK:
            checks["migrations"] = outcome
        else:
            checks["database"] = outcome
        return checks

    async def _revisions(self, checks: dict[str, str]) -> tuple[str, ...]:
        async with unit_of_work(self.database, write=False) as connection:
            await connection.execute(_SELECT_1)
            checks["database"] = OK
            return await migrate.revisions_of(connection)

    async def _outcome(self, name: str, check: Awaitable[str]) -> str:
        try:
            async with asyncio.timeout(self._timeout_seconds):
                return await check
        except TimeoutError:
            logger.warning("readiness check %s timed out", name)
            return TIMEOUT
        except Exception as error:
            # The class goes to the log, for operators; the probe's answer only names the check.
            logger.warning("readiness check %s failed: %s", name, type(error).__name__)
            return UNREACHABLE


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    readiness: Readiness = state.readiness
    checks = dict(await readiness.checks())
    if state.draining:
        checks["draining"] = "shutting down"
    failing = [name for name, result in checks.items() if result != OK]
    if not failing:
        return JSONResponse({"status": "ready", "checks": checks})
    return problem_response(
        request,
        status=503,
        title="Not ready",
        detail="Failing: " + ", ".join(f"{name} ({checks[name]})" for name in failing) + ".",
        slug="not-ready",
        extra={"checks": checks},
        headers={"Retry-After": "5"},
    )
