"""The ``replicas`` part: Bookshelf with one streaming replica (docs/replicas.md).

A throw-away primary and a ``pg_basebackup -R`` replica of it (the replica tests' harness,
``tests/db/replication.py``: free ports, temporary directories, stopped at the end), with
``pg_stat_statements`` on both. Two measures:

* what routing costs: CPU per GET by id in process (as the ``costs`` part measures), fast path
  on, with every read on the primary against the same reads routed to the replica;
* where the load goes: under the table's wrk load, statements per second on each server per
  case (counted by each server's ``pg_stat_statements``). On this machine the replica shares
  the cores with the primary, the app and wrk, so speed-up is not the measure: the primary's
  read load falling to near zero is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
from contextlib import AbstractContextManager
from typing import Any, Protocol

from bench import dataset, load
from bench.costs import REQUESTS, ROUNDS
from bench.costs import _cpu_per_request as cpu_per_request
from bench.report import Row
from bench.servers import Server
from bookshelf.config import Settings
from tests.db.replication import replication, statements, wait_replayed

# The read cases of the table, one signed-in read, and a write for contrast.
CASES = (
    "GET /books/{id}",
    "GET /books",
    "GET /books?language&sort",
    "GET /books?q",
    "GET /users/me",
    "POST /books",
)


def routing_cpu(base: dict[str, Any], replica_url: str, book_id: str) -> dict[str, float]:
    """CPU µs per GET of one book: every read on the primary, then routed to the replica."""
    variants = {
        "primary only": Settings(**base),
        "routed to the replica": Settings(**base, database_replica_urls=replica_url),
    }
    results: dict[str, float] = {}
    path = f"/api/v1/books/{book_id}"
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        # More rounds than the costs part: the difference sought is a few microseconds.
        for _round in range(ROUNDS * 2):
            for name, settings in variants.items():
                cpu = asyncio.run(cpu_per_request(settings, path))
                results[name] = min(cpu, results.get(name, cpu))
        # What the load of the machine cannot blur: Python calls per request, counted.
        for name, settings in variants.items():
            profile = cProfile.Profile()
            asyncio.run(cpu_per_request(settings, path, profile))
            calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
            results[f"{name}: Python calls"] = calls / REQUESTS
    return results


class BenchLike(Protocol):
    """What this part uses of ``bench.__main__.Bench``."""

    wrk: str

    def bookshelf(
        self, database: dataset.BenchDatabase, label: str, overrides: dict[str, str] | None
    ) -> AbstractContextManager[Server]: ...

    def bookshelf_env(self, database: dataset.BenchDatabase) -> dict[str, str]: ...

    def scripts(self, database: dataset.BenchDatabase, token: str) -> dict[str, Any]: ...

    def measure(self, server: Server, script: Any, case: str) -> Row: ...


def run(bench: BenchLike, options: argparse.Namespace) -> dict[str, object]:
    """The part with the runner's options (``--replica-books``, duration, connections)."""
    return measure(
        bench,
        books=options.replica_books,
        seconds=options.duration,
        connections=options.connections,
        threads=options.threads,
    )


def measure(
    bench: BenchLike, *, books: int, seconds: float, connections: int, threads: int
) -> dict[str, object]:
    """Run the part; ``bench.__main__.Bench`` lends its server, settings and measuring."""
    with replication() as servers:
        database = dataset.BenchDatabase(servers.primary.url("postgres"), "bookshelf")
        replica_url = servers.replica.url()
        production = bench.bookshelf_env(database)
        env = {**os.environ, **production}
        database.seed(books, env=env, random_seed=23)
        database.create_editor(env)
        asyncio.run(wait_replayed(servers.primary, servers.replica))
        book_id = database.sample_ids(1)[0]
        # In process, the settings `bookshelf serve` gets from the same environment.
        base = {
            name.removeprefix("BOOKSHELF_").lower(): value
            for name, value in production.items()
            if name.startswith("BOOKSHELF_")
        }
        cpu = routing_cpu(base, replica_url, book_id)
        overhead = cpu["routed to the replica"] / cpu["primary only"] - 1
        for name, value in cpu.items():
            unit = "per request" if name.endswith("calls") else "µs CPU"
            print(f"  GET /books/{{id}} in process, {name:<36} {value:8.1f} {unit}", flush=True)
        print(f"  routing overhead per GET by id: {overhead * 100:+.1f} %", flush=True)
        overrides = {"BOOKSHELF_DATABASE_REPLICA_URLS": replica_url}
        rows: list[dict[str, object]] = []
        with bench.bookshelf(database, "bookshelf-replica", overrides) as app:
            token = dataset.sign_in(app.base_url)
            by_case = bench.scripts(database, token)
            for case in CASES:
                script = by_case[case]
                row = bench.measure(app, script, case)  # warm-up, and the usual row
                counted = script() if callable(script) else script
                before = [asyncio.run(statements(s)) for s in (servers.primary, servers.replica)]
                result = load.run_wrk(
                    bench.wrk,
                    app.base_url,
                    counted,
                    seconds=seconds,
                    connections=connections,
                    threads=threads,
                )
                after = [asyncio.run(statements(s)) for s in (servers.primary, servers.replica)]
                primary, replica = (
                    (a - b) / result.seconds for a, b in zip(after, before, strict=True)
                )
                share = primary / max(primary + replica, 1e-9)
                print(
                    f"  {case:<26} {result.per_second:8.0f} req/s  statements/s: primary "
                    f"{primary:8.0f}, replica {replica:8.0f} (primary {share * 100:5.1f} %)",
                    flush=True,
                )
                rows.append(
                    {
                        "case": case,
                        "requests_per_second": result.per_second,
                        "p99_ms": result.p99_ms,
                        "errors": result.errors,
                        "cpu_us": row.cpu_us,
                        "primary_statements_per_second": primary,
                        "replica_statements_per_second": replica,
                        "primary_share": share,
                    }
                )
    return {"books": books, "cpu_us": cpu, "routing_overhead": overhead, "cases": rows}
