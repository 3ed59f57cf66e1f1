"""Prometheus metrics, served at ``/metrics`` (path configurable; outside the API prefix).

Labels are the route *template* (``/api/v1/books/{book_id}``) and the status class, never raw
paths, so cardinality stays bounded. With several worker processes (``bookshelf serve
--workers N`` sets ``PROMETHEUS_MULTIPROC_DIR``), every worker writes its samples to that
directory and a scrape of any worker aggregates all of them.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from bookshelf import __version__
from bookshelf.ops.processes import ServingProcessesCollector, register_serving_process

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Set by the image build (``--build-arg BOOKSHELF_BUILD_COMMIT=$(git rev-parse HEAD)``).
BUILD_COMMIT_ENV = "BOOKSHELF_BUILD_COMMIT"

REQUESTS = Counter(
    "bookshelf_http_requests",
    "HTTP requests handled.",
    ["method", "route", "status_class"],
)
LATENCY = Histogram(
    "bookshelf_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response.",
    ["method", "route", "status_class"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge(
    "bookshelf_http_requests_in_flight",
    "Requests being handled now.",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "bookshelf_db_pool_size", "Connections the pool keeps open.", multiprocess_mode="livesum"
)
POOL_CHECKED_OUT = Gauge(
    "bookshelf_db_pool_checked_out",
    "Pooled connections in use by requests.",
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "bookshelf_rate_limit_rejections",
    "Requests refused with 429, by limit (default, auth, mail-target, export-per-address).",
    ["limit"],
)
BUSY_REFUSALS = Counter(
    "bookshelf_busy_refusals",
    "Requests refused with 503 busy for want of a slot, by work (search, password_hash, "
    "import, export): a rising count says that work's concurrency is too low for the load.",
    ["work"],
)
RATE_LIMIT_STORE_FAILURES = Counter(
    "bookshelf_rate_limit_store_failures",
    "Rate-limit checks whose shared store failed, by limit and what was done instead "
    "(allowed, or counted_in_process for the strict auth budget).",
    ["limit", "outcome"],
)

PROBLEMS = Counter(
    "bookshelf_http_problems",
    "Problem responses sent, by problem type (the last part of its URI, e.g. "
    "database-unavailable; about:blank for plain HTTP errors such as 404 and 405).",
    ["type"],
)
BUILD_INFO = Gauge(
    "bookshelf_build_info",
    "Always 1; its labels say which release (version) and source commit is running.",
    ["version", "commit"],
    multiprocess_mode="max",
)


def publish_build_info() -> None:
    """Set ``bookshelf_build_info`` in this process (in every worker: multiprocess mode reads
    the values each process wrote)."""
    commit = os.environ.get(BUILD_COMMIT_ENV, "").strip() or "unknown"
    BUILD_INFO.labels(version=__version__, commit=commit).set(1)


def _exposition() -> bytes:
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(ServingProcessesCollector(directory))
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def install_metrics(app: FastAPI, path: str) -> None:
    publish_build_info()
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        register_serving_process(directory)

    @app.get(path, include_in_schema=False)
    async def metrics() -> Response:
        return Response(_exposition(), media_type=CONTENT_TYPE_LATEST)
