"""Liveness and readiness.

``/health/live``: the process answers. ``/health/ready``: it can serve traffic — the database
answers, its migrations are at head, Redis answers (when configured), and the process is not
draining after SIGTERM. A failing check is named in the 503 problem, so an operator sees why a
pod left the load balancer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf import migrate
from bookshelf.problems import problem_response

router = APIRouter(prefix="/health", include_in_schema=False)

CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def _database(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return "ok"


async def _migrations(engine: AsyncEngine) -> str:
    current = await migrate.current_revision(engine)
    return "ok" if current == migrate.head_revision() else f"at {current}, not at head"


async def _run(check: Any) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            result: str = await check
            return result
    except TimeoutError:
        return "timed out"
    except Exception as error:
        return f"failed: {type(error).__name__}"


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    checks = {
        "database": await _run(_database(state.engine)),
        "migrations": await _run(_migrations(state.engine)),
    }
    if state.rate_limits is not None and state.rate_limits.uses_redis:
        checks["redis"] = await _run(state.rate_limits.check())
    if state.draining:
        checks["draining"] = "shutting down"
    failing = [name for name, result in checks.items() if result != "ok"]
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
