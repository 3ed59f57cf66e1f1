"""Bookshelf's benchmark suite: ``python -m bench`` (or ``python3 dev.py bench``).

Parts (``--parts``, default all seven):

* ``table``: Bookshelf (production settings, one worker) and the floor app (``bench/floor.py``)
  under the same wrk load, case by case, on a seeded PostgreSQL database of the bench's own.
  Prints requests/s, p50, p99, server CPU per request and Bookshelf's ratio to the floor, for
  Bookshelf as configured and with ``BOOKSHELF_FAST_PATH=false`` (``stock``) side by side;
  then the web app's pages beside the API calls they show (``bench/pages.py``: CPU within 2x).
* ``costs`` (``bench/costs.py``): Bookshelf's CPU per GET with each production feature
  switched off in turn.
* ``soak`` (``bench/memory.py``): Bookshelf under mixed load for ``--soak-seconds``; its RSS
  sampled throughout.
* ``signin`` (``bench/memory.py``): 32 concurrent sign-ins from 8 client addresses at the
  production Argon2id cost; the workers' peak RSS, and the clients that got nothing but 503
  busy.
* ``scale`` (``bench/scale.py``): p95 latency of the list, filter + sort, deep paging and search
  requests (two common words, one very common word, a word in 3% of the books, one book) at 10k
  books and again at 1M books (``--scale-books``), and each search's database time; lists are
  judged by their growth, searches by a bound at the large size. Exits non-zero on a miss.
* ``bulk``: 10,000 books in one ``POST /books/import`` against single ``POST /books`` (one at a
  time and 32 in flight), then the whole catalog through ``GET /books/export``.
* ``replicas`` (only when named): with one streaming replica, the routing's CPU per GET and
  the statements per second on each server per case (``bench/replicas.py``).
* ``import-memory``: a worker's memory growth for one ``POST /books/import`` at the body cap,
  one case per body shape (short lines, full books, unknown fields), each on a fresh worker.

The machine is shared by wrk, the app and PostgreSQL, so only ratios within one run mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench import bulk, costs, dataset, import_memory, load, memory, pages, replicas, report
from bench.report import Row
from bench.scale import FILTER_QUERY, SEARCH_QUERY
from bench.scale import run as run_scale
from bench.servers import Server, free_port, running

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
JWT_ISSUER, JWT_AUDIENCE = "bookshelf", "bookshelf-api"

# Bookshelf built from stock parts only: what the fast path's internals buy, measured.
STOCK = {"BOOKSHELF_FAST_PATH": "false"}
NEW_BOOK = json.dumps(
    {
        "title": "The Benchmarked Garden",
        "authors": ["Ada Tanaka", "Søren Okafor"],
        "language": "en",
        "published_date": "2024-05",
        "subjects": ["computing", "essays"],
        "page_count": 321,
    }
)


# A wrk script, or a function that makes a fresh one for each run.
Script = str | Callable[[], str]


class Bench:
    def __init__(self, options: argparse.Namespace, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.wrk = load.ensure_wrk()
        self.secret = secrets.token_urlsafe(48)

    # --- servers -------------------------------------------------------------------------------

    def bookshelf_env(self, database: dataset.BenchDatabase) -> dict[str, str]:
        """Production settings: every middleware, JSON logs, metrics and rate limiting on."""
        return {
            "BOOKSHELF_ENVIRONMENT": "production",
            "BOOKSHELF_DATABASE_URL": database.url,
            "BOOKSHELF_JWT_SECRET": self.secret,
            "BOOKSHELF_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "BOOKSHELF_CORS_ORIGINS": "https://catalog.example",
            "BOOKSHELF_PUBLIC_URL": "https://catalog.example",
            # Required in production; never used: on PostgreSQL `serve` runs no mail worker.
            "BOOKSHELF_SMTP_URL": "smtp://127.0.0.1:25",
            "BOOKSHELF_DATABASE_POOL_SIZE": str(self.options.pool_size),
            # Raised so the load is counted but never throttled.
            "BOOKSHELF_RATE_LIMIT_DEFAULT": "100000000/minute",
            "BOOKSHELF_RATE_LIMIT_AUTH": "1000/minute",
            **({"BOOKSHELF_REDIS_URL": self.options.redis_url} if self.options.redis_url else {}),
            "PYTHONPATH": str(ROOT / "src"),
        }

    def _listen(self, port: int) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(port), "--workers", str(self.options.workers)]

    def bookshelf(
        self,
        database: dataset.BenchDatabase,
        label: str = "bookshelf",
        overrides: dict[str, str] | None = None,
    ) -> AbstractContextManager[Server]:
        """``bookshelf serve``, as in production (uvloop, httptools, JSON logs to a file)."""
        port = free_port()
        return running(
            label,
            [sys.executable, "-m", "bookshelf", "serve", *self._listen(port)],
            env={**self.bookshelf_env(database), **(overrides or {})},
            port=port,
            ready_path="/health/ready",
            log=self.workdir / f"{label}.log",
        )

    def floor(self, database: dataset.BenchDatabase) -> AbstractContextManager[Server]:
        """The floor app on the same server settings (uvloop, httptools), without access log."""
        port = free_port()
        return running(
            "floor",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.floor:app",
                *self._listen(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env={
                "FLOOR_DATABASE_URL": database.dsn,
                "FLOOR_JWT_SECRET": self.secret,
                "FLOOR_JWT_ISSUER": JWT_ISSUER,
                "FLOOR_JWT_AUDIENCE": JWT_AUDIENCE,
                "FLOOR_POOL_SIZE": str(self.options.pool_size),
            },
            port=port,
            ready_path="/api/v1/books?limit=1",
            log=self.workdir / "floor.log",
        )

    # --- measuring -----------------------------------------------------------------------------

    def measure(
        self, server: Server, script: Script, case: str, connections: int | None = None
    ) -> Row:
        """Warm up, then measure; a script factory is called before each run (PATCH needs the
        books' current versions)."""
        options = self.options

        def drive(seconds: float) -> load.LoadResult:
            return load.run_wrk(
                self.wrk,
                server.base_url,
                script() if callable(script) else script,
                seconds=seconds,
                connections=connections or options.connections,
                threads=options.threads,
            )

        drive(options.warmup)
        cpu_before = server.cpu_seconds()
        result = drive(options.duration)
        cpu = server.cpu_seconds() - cpu_before
        row = Row(
            case=case,
            app=server.name,
            per_second=result.per_second,
            p50_ms=result.p50_ms,
            p95_ms=result.p95_ms,
            p99_ms=result.p99_ms,
            cpu_us=cpu / max(result.requests, 1) * 1e6,
            errors=result.errors,
        )
        print(
            f"  {case:<26} {server.name:<10} {row.per_second:>8.0f}/s  p50 {row.p50_ms:6.2f} ms"
            f"  p99 {row.p99_ms:6.2f} ms  {row.cpu_us:6.0f} µs CPU  errors {row.errors}",
            flush=True,
        )
        return row

    def scripts(self, database: dataset.BenchDatabase, token: str) -> dict[str, Script]:
        """wrk scripts per case; PATCH's is made per app, from the books' current versions."""
        auth = {"Authorization": f"Bearer {token}"}
        ids = database.sample_ids(1000)
        return {
            "GET /books/{id}": load.paths_script([f"/api/v1/books/{i}" for i in ids]),
            "GET /books": load.paths_script(["/api/v1/books"]),
            "GET /books?language&sort": load.paths_script(["/api/v1/books" + FILTER_QUERY]),
            "GET /books?q": load.paths_script(["/api/v1/books" + SEARCH_QUERY]),
            "POST /books": load.paths_script(
                ["/api/v1/books"],
                method="POST",
                body=NEW_BOOK,
                headers={**auth, "Content-Type": "application/json"},
            ),
            "PATCH /books/{id}": lambda: load.patch_script(
                database.versions(database.sample_ids(2000)),
                headers=auth,
                threads=self.options.threads,
            ),
            "GET /users/me": load.paths_script(["/api/v1/users/me"], headers=auth),
        }

    # --- parts ---------------------------------------------------------------------------------

    def table(self, database: dataset.BenchDatabase) -> dict[str, object]:
        """Per case: the floor, then Bookshelf; then, Bookshelf stopped, the same cases on
        Bookshelf with the fast path off (never three pools at once: PostgreSQL's 100
        connections). Each Bookshelf's ratio is to the floor's run of the case."""
        measured: dict[str, dict[str, Row]] = {}
        memory: dict[str, list[float]] = {}
        page_rows: list[dict[str, object]] = []
        with self.floor(database) as floor:
            for label, overrides in (("bookshelf", None), ("stock", STOCK)):
                with self.bookshelf(database, label, overrides) as app:
                    token = dataset.sign_in(app.base_url)
                    memory[f"{label}_start"] = app.rss_mib()
                    for case, script in self.scripts(database, token).items():
                        if self.options.cases and not any(c in case for c in self.options.cases):
                            continue
                        row = measured.setdefault(case, {})
                        if "floor" not in row:
                            row["floor"] = self.measure(floor, script, case)
                        own = self.measure(app, script, case)
                        ratio = own.per_second / row["floor"].per_second
                        row[label] = Row(**{**asdict(own), "ratio": ratio})
                    if label == "bookshelf":
                        # The web app's pages, beside the API calls they show.
                        api_cpu = {
                            case: by_app["bookshelf"].cpu_us
                            for case, by_app in measured.items()
                            if "bookshelf" in by_app
                        }
                        page_rows = pages.measure(
                            lambda script, case: self.measure(app, script, case),
                            api_cpu,
                            database.sample_ids(1000),
                        )
                    memory[f"{label}_after_load"] = app.rss_mib()
            memory["floor_after_load"] = floor.rss_mib()
        rows = [row for by_app in measured.values() for row in by_app.values()]
        return {"rows": [asdict(r) for r in rows], "pages": page_rows, "rss_mib": memory}

    def bulk(self, database: dataset.BenchDatabase) -> dict[str, object]:
        with self.bookshelf(database, overrides=bulk.SERVER_OVERRIDES) as app:
            return bulk.measure(app, dataset.sign_in(app.base_url))

    def import_memory(self, database: dataset.BenchDatabase) -> dict[str, object]:
        return import_memory.measure(lambda label: self.bookshelf(database, label))


def _machine() -> dict[str, str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "unknown",
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--parts",
        default="table,costs,soak,signin,scale,bulk,import-memory",
        help="table, costs, soak, signin, scale, bulk, import-memory",
    )
    parser.add_argument("--books", type=int, default=100_000, help="catalog size for the table")
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before each")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--pool-size",
        type=int,
        help="database pool of each worker (default: --connections shared by the workers)",
    )
    parser.add_argument("--soak-seconds", type=float, default=60)
    parser.add_argument("--replica-books", type=int, default=20_000, help="replicas part")
    parser.add_argument("--scale-small", type=int, default=10_000)
    parser.add_argument("--scale-books", type=int, default=1_000_000)
    parser.add_argument(
        "--scale-connections",
        type=int,
        default=8,
        help="fewer than the table's, so database time is not hidden behind queueing",
    )
    parser.add_argument("--redis-url", help="rate-limit counters in Redis (default: memory)")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL server where the bench may create databases",
    )
    parser.add_argument("--database", default="bookshelf_bench")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument(
        "--reuse-database",
        action="store_true",
        help="scale: reuse (and keep) a catalog that already holds the books asked for",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--case", dest="cases", action="append", help="only cases whose name holds this text"
    )
    options = parser.parse_args()
    # A pool sized to the concurrency: with fewer connections than requests in flight, requests
    # queue for a connection and the tail latency doubles (measured: p99/p50 4.9 -> 2.1). Each
    # worker has its own pool, so the concurrency is shared among them: two workers with 32
    # each, for both apps, wanted 128 connections of PostgreSQL's default 100.
    options.pool_size = options.pool_size or -(-options.connections // options.workers)
    parts = {p.strip() for p in options.parts.split(",")}
    known = {"table", "costs", "soak", "signin", "scale", "bulk", "import-memory", "replicas"}
    unknown = parts - known
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")

    machine = _machine()
    print("bench: " + ", ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    results: dict[str, object] = {"machine": machine, "options": vars(options) | {"json": None}}
    with tempfile.TemporaryDirectory(prefix="bookshelf-bench-") as workdir:
        bench = Bench(options, Path(workdir))
        if parts & {"table", "costs", "soak", "signin", "bulk", "import-memory"}:
            database = dataset.BenchDatabase(options.admin_url, options.database)
            print(f"bench: seeding {options.books:,} books into {database.name}", flush=True)
            database.recreate()
            env = {**os.environ, **bench.bookshelf_env(database)}
            try:
                database.cli("migrate", env=env)
                database.seed(options.books, env=env, random_seed=42)
                database.create_editor(env)
                if "table" in parts:
                    print(
                        "bench: table (floor and Bookshelf per case, then Bookshelf stock)",
                        flush=True,
                    )
                    results["table"] = bench.table(database)
                if "costs" in parts:
                    print("bench: costs of each feature (GET by id)", flush=True)
                    results["costs"] = costs.run_part(database, bench.secret)
                if "soak" in parts:
                    print("bench: soak", flush=True)
                    results["soak"] = memory.run_soak(bench, database)
                if "signin" in parts:
                    print("bench: sign-in burst (memory)", flush=True)
                    results["signin"] = memory.run_signin(bench, database)
                if "bulk" in parts:
                    print("bench: bulk import and export", flush=True)
                    results["bulk"] = bench.bulk(database)
                if "import-memory" in parts:
                    print("bench: import memory (one worker per case)", flush=True)
                    results["import-memory"] = bench.import_memory(database)
            finally:
                if not options.keep_database:
                    database.drop()
        if "scale" in parts:
            print("bench: scale", flush=True)
            results["scale"] = run_scale(bench)
        if "replicas" in parts:  # not in the default set: it starts two servers of its own
            print("bench: replicas (one streaming replica)", flush=True)
            results["replicas"] = replicas.run(bench, options)

    print(
        f"\nBookshelf vs floor — {machine['date']}, commit {machine['commit']}, "
        f"{options.workers} worker(s), {options.connections} connections, PostgreSQL"
    )
    if "table" in results:
        report.table(results["table"])  # type: ignore[arg-type]
    if "costs" in results:
        report.costs(results["costs"])  # type: ignore[arg-type]
    missed: list[str] = []
    if "scale" in results:
        missed += report.scale(results["scale"])  # type: ignore[arg-type]
    if options.json:
        options.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if missed:
        sys.exit("bench: missed " + "; ".join(missed))


if __name__ == "__main__":
    main()
