"""Prometheus metrics: the endpoint, exact counter movements, bounded labels, and one view of
all workers when several serve.

The registry is process-global, so every check reads a value before and after."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector

from bookshelf.config import Settings
from bookshelf.ops.observability import UNMATCHED_ROUTE
from tests.ops.support import http, random_address, sample, scrape, series_names, started
from tests.servers import BookshelfServer

REQUESTS = "bookshelf_http_requests_total"
LATENCY = "bookshelf_http_request_duration_seconds"
IN_FLIGHT = "bookshelf_http_requests_in_flight"
BOOK = "/api/v1/books/{book_id}"


async def test_metrics_are_served_outside_the_api(
    anonymous_client: httpx.AsyncClient,
) -> None:
    response = await anonymous_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "# TYPE bookshelf_http_requests_total counter" in response.text
    assert f"# TYPE {LATENCY} histogram" in response.text
    assert (await anonymous_client.get("/api/v1/metrics")).status_code == 404
    paths = (await anonymous_client.get("/openapi.json")).json()["paths"]
    assert [path for path in paths if "metrics" in path] == []


async def test_request_counter_and_histogram_move_by_exactly_the_requests_sent(
    anonymous_client: httpx.AsyncClient,
) -> None:
    labels_404 = {"method": "GET", "route": BOOK, "status_class": "4xx"}
    labels_200 = {"method": "GET", "route": "/api/v1/books", "status_class": "2xx"}
    before = await scrape(anonymous_client)
    for _ in range(3):
        response = await anonymous_client.get(f"/api/v1/books/{uuid.uuid4()}")
        assert response.status_code == 404
    for _ in range(2):
        assert (await anonymous_client.get("/api/v1/books")).status_code == 200
    after = await scrape(anonymous_client)

    def moved(name: str, labels: dict[str, str]) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved(REQUESTS, labels_404) == 3
    assert moved(f"{LATENCY}_count", labels_404) == 3
    assert moved(f"{LATENCY}_bucket", {**labels_404, "le": "+Inf"}) == 3
    assert moved(f"{LATENCY}_sum", labels_404) > 0
    assert moved(REQUESTS, labels_200) == 2
    assert moved(f"{LATENCY}_count", labels_200) == 2
    assert moved(REQUESTS, {**labels_404, "method": "POST"}) == 0


async def test_unknown_paths_share_one_label_and_never_appear_raw(
    anonymous_client: httpx.AsyncClient,
) -> None:
    labels = {"method": "GET", "route": UNMATCHED_ROUTE, "status_class": "4xx"}
    before = await scrape(anonymous_client)
    markers = [uuid.uuid4().hex for _ in range(20)]
    for number, marker in enumerate(markers):
        path = f"/{marker}" if number % 2 else f"/api/v1/{marker}/items?q={marker}"
        assert (await anonymous_client.get(path)).status_code == 404
    after = await scrape(anonymous_client)
    assert sample(after, REQUESTS, **labels) - sample(before, REQUESTS, **labels) == 20
    assert [marker for marker in markers if marker in after] == []


async def test_made_up_methods_share_one_label(anonymous_client: httpx.AsyncClient) -> None:
    before = await scrape(anonymous_client)
    methods = [f"X{uuid.uuid4().hex[:8].upper()}" for _ in range(5)]
    for method in methods:
        assert (await anonymous_client.request(method, "/api/v1/books")).status_code == 405
    after = await scrape(anonymous_client)
    labels = {"method": "OTHER", "route": "/api/v1/books", "status_class": "4xx"}
    assert sample(after, REQUESTS, **labels) - sample(before, REQUESTS, **labels) == 5
    assert [method for method in methods if method in after] == []


async def test_rate_limit_rejections_are_counted_by_limit(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_enabled": True, "rate_limit_auth": "2/hour"})
    form = {
        "username": "nobody@example.org",
        "password": "not the password",
        "grant_type": "password",
    }
    async with started(limited) as app, http(app, address=random_address()) as client:
        before = await scrape(client)
        statuses = [
            (await client.post("/api/v1/auth/token", data=form)).status_code for _ in range(3)
        ]
        after = await scrape(client)
    assert statuses[2] == 429
    assert statuses[:2] != [429, 429]
    name = "bookshelf_rate_limit_rejections_total"
    assert sample(after, name, limit="auth") - sample(before, name, limit="auth") == 1
    assert sample(after, name, limit="default") - sample(before, name, limit="default") == 0


def _in_flight() -> float:
    return REGISTRY.get_sample_value(IN_FLIGHT) or 0.0


async def test_in_flight_gauge_counts_requests_being_handled(settings: Settings) -> None:
    async def probe() -> dict[str, float]:
        return {"in_flight": _in_flight()}

    async def explode() -> None:
        raise RuntimeError("boom")

    async with started(settings.model_copy(update={"json_logs": True})) as app:
        app.add_api_route("/api/v1/probe", probe)
        app.add_api_route("/api/v1/explode", explode)
        async with http(app) as client:
            baseline = _in_flight()
            during = (await client.get("/api/v1/probe")).json()["in_flight"]
            assert during == baseline + 1
            assert _in_flight() == baseline
            assert (await client.get("/api/v1/explode")).status_code == 500
            assert (await client.get("/no/such/page")).status_code == 404
            assert _in_flight() == baseline
            exposition = await scrape(client)
    assert sample(exposition, IN_FLIGHT) == baseline + 1  # the scrape itself


async def test_pool_gauges_follow_the_pool(settings: Settings) -> None:
    async with started(settings.model_copy(update={"database_pool_size": 7})) as app:
        async with http(app) as client:
            assert (await client.get("/api/v1/books")).status_code == 200
            exposition = await scrape(client)
        pool_size = app.state.database.pool_status()[1]
    assert {"bookshelf_db_pool_size", "bookshelf_db_pool_checked_out"} <= series_names(exposition)
    assert sample(exposition, "bookshelf_db_pool_checked_out") == 0
    assert sample(exposition, "bookshelf_db_pool_size") == pool_size
    assert pool_size == 1  # open connections: the pool opens them as requests need them


@pytest.mark.parametrize("path", ["", "/internal/metrics"])
async def test_metrics_path_moves_or_disables_the_endpoint(settings: Settings, path: str) -> None:
    async with started(settings.model_copy(update={"metrics_path": path})) as app, http(app) as c:
        assert (await c.get("/metrics")).status_code == 404
        if path:
            assert "bookshelf_http_requests_total" in await scrape(c, path)


# --- several worker processes -----------------------------------------------------------------


def _books_served_per_worker(metrics_dir: Path) -> dict[str, float]:
    """From each worker's own sample file: how many GET /api/v1/books it answered."""
    served = {}
    for file in sorted(metrics_dir.glob("counter_*.db")):
        for family in MultiProcessCollector.merge([str(file)]):
            for item in family.samples:
                if item.name == REQUESTS and item.labels.get("route") == "/api/v1/books":
                    served[file.name] = served.get(file.name, 0.0) + item.value
    return served


@pytest.mark.slow
def test_a_scrape_of_any_worker_counts_every_workers_requests(tmp_path: Path) -> None:
    # TMPDIR: the folder `serve` creates for the workers' samples lands under tmp_path.
    server = BookshelfServer(
        f"sqlite:///{tmp_path / 'workers.db'}",
        tmp_path,
        workers=2,
        extra_env={"TMPDIR": str(tmp_path)},
    )
    base_url = server.base_url
    try:
        server.wait_live()
        [metrics_dir] = tmp_path.glob("bookshelf-metrics-*")
        # Each worker creates its gauge file on start-up; the second may lag on a busy machine.
        deadline = time.monotonic() + 30
        while len(list(metrics_dir.glob("gauge_livesum_*.db"))) < 2:
            assert time.monotonic() < deadline, "the second worker did not start"
            time.sleep(0.1)
        sent = 0
        # Fresh connections, so the kernel hands them to both workers; more until both served.
        while sent < 400 and (sent < 40 or len(_books_served_per_worker(metrics_dir)) < 2):
            for _ in range(40):
                assert httpx.get(f"{base_url}/api/v1/books", timeout=10).status_code == 200
            sent += 40
        # A worker counts a request just after sending its response: give the last one a moment.
        deadline = time.monotonic() + 5
        per_worker = _books_served_per_worker(metrics_dir)
        while sum(per_worker.values()) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
            per_worker = _books_served_per_worker(metrics_dir)
        assert len(per_worker) == 2, per_worker
        assert sum(per_worker.values()) == sent
        labels = {"method": "GET", "route": "/api/v1/books", "status_class": "2xx"}
        scraped = [
            sample(httpx.get(f"{base_url}/metrics", timeout=10).text, REQUESTS, **labels)
            for _ in range(8)
        ]
        assert scraped == [sent] * 8
        assert server.stop() == 0, server.log_tail()
    finally:
        server.stop()
