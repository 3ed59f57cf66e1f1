"""What each production feature costs: Bookshelf's CPU per GET by id, measured in process.

Requests go straight through the ASGI app one after another (no HTTP server, no concurrency) and
are timed with ``time.thread_time``: the event loop's thread only, since threads left behind by
earlier apps in this process would count in ``process_time``. The variants take turns, three
rounds, each keeping its best, so a slow spell of the (virtual) machine does not land on one
variant. wrk runs on a shared two-core machine differ by a hundred microseconds; this is precise
to a few. The database is the bench's own, so each request does its real query.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import cProfile
import os
import pstats
import re
import time
from typing import Any

from bench.dataset import BenchDatabase
from bookshelf.config import Settings
from bookshelf.main import configure_process, create_app

# Settings for production with every feature on, and each feature switched off in turn.
FEATURES: dict[str, dict[str, Any]] = {
    "all features on": {},
    "without rate limiting": {"rate_limit_enabled": False},
    "without access log": {"log_level": "WARNING"},
    "without metrics": {"metrics_path": ""},
    "without CORS and trusted hosts": {"cors_origins": "", "allowed_hosts": "*"},
}
ROUNDS, REQUESTS = 3, 2000
LIVENESS = "GET /health/live instead (no database, no dependencies)"


async def _cpu_per_request(
    settings: Settings, path: str, profile: cProfile.Profile | None = None
) -> float:
    # As `bookshelf serve` starts each worker: the process's logging, then the app.
    configure_process(settings)
    app = create_app(settings)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async with app.router.lifespan_context(app):
        for _ in range(200):  # warm up: pool, caches, compiled statements
            await app({**scope, "state": {}}, receive, send)
        if profile is not None:
            profile.enable()
        started = time.thread_time()
        for _ in range(REQUESTS):
            await app({**scope, "state": {}}, receive, send)
        elapsed = time.thread_time() - started
        if profile is not None:
            profile.disable()
    if statuses != {200}:
        raise RuntimeError(f"costs: {path} answered {sorted(statuses)}")
    return elapsed / REQUESTS * 1e6


def feature_costs(base: dict[str, Any], book_id: str) -> dict[str, float]:
    """CPU µs per GET of one book for each entry of FEATURES."""
    results: dict[str, float] = {}
    # The access log would write to the terminal; the cost of writing it is measured anyway.
    production = Settings(**base)
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        for _round in range(ROUNDS):
            for name, overrides in FEATURES.items():
                # Copied without validation: production refuses ALLOWED_HOSTS=*, which is
                # exactly the variant that measures what the host check costs.
                settings = production.model_copy(update=overrides)
                cpu = asyncio.run(_cpu_per_request(settings, f"/api/v1/books/{book_id}"))
                results[name] = min(cpu, results.get(name, cpu))
            # The same app and features, on a route without database or dependencies.
            cpu = asyncio.run(_cpu_per_request(production, "/health/live"))
            results[LIVENESS] = min(cpu, results.get(LIVENESS, cpu))
    return results


_LIBRARY = re.compile(r"site-packages/([A-Za-z0-9_]+)")


def _library(filename: str) -> str:
    """Who a function belongs to: its installed package, Bookshelf, or the standard library
    (builtins are counted where they run: a C function's time is its own entry, named here
    after the package that defines it when it has one)."""
    if (match := _LIBRARY.search(filename)) is not None:
        return match.group(1)
    if "/bookshelf/" in filename:
        return "bookshelf"
    return "standard library and builtins"


def library_split(base: dict[str, Any], book_id: str) -> dict[str, float]:
    """Share of the CPU of a GET of one book (every feature on), by library: the self time of
    each function under cProfile, summed by the package it belongs to. The profiler slows
    every call alike, so the shares are what matters, not the total."""
    profile = cProfile.Profile()
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        asyncio.run(_cpu_per_request(Settings(**base), f"/api/v1/books/{book_id}", profile))
    totals: collections.Counter[str] = collections.Counter()
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (
        _calls,
        _primitive,
        self_time,
        _cumulative,
        _callers,
    ) in stats.items():
        totals[_library(filename)] += self_time
    whole = sum(totals.values())
    return {name: 100 * spent / whole for name, spent in totals.most_common()}


def run_part(database: BenchDatabase, jwt_secret: str) -> dict[str, dict[str, float]]:
    """The ``costs`` part: CPU per GET-by-id with each production feature switched off in
    turn, and by library (in process, production settings)."""
    base = {
        "environment": "production",
        "database_url": database.url,
        "jwt_secret": jwt_secret,
        "allowed_hosts": "127.0.0.1,localhost",
        "cors_origins": "https://catalog.example",
        "public_url": "https://catalog.example",
        "smtp_url": "smtp://127.0.0.1:25",
        "rate_limit_default": "100000000/minute",
    }
    book_id = database.sample_ids(1)[0]
    results = feature_costs(base, book_id)
    for name, cpu in results.items():
        print(f"  GET /books/{{id}}, {name:<32} {cpu:6.0f} µs CPU", flush=True)
    split = library_split(base, book_id)
    for library, share in split.items():
        print(f"  GET /books/{{id}} CPU by library: {library:<32} {share:5.1f} %", flush=True)
    return {"features": results, "by_library": split}
