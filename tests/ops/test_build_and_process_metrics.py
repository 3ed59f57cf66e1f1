"""``bookshelf_build_info`` names the release and commit; ``process_*`` metrics survive
``--workers 2`` (one set per worker and one for the supervisor, by ``pid`` and ``role``);
problem responses are counted by their type."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bookshelf import __version__
from bookshelf.ops.metrics import BUILD_COMMIT_ENV
from tests.ops.support import sample, scrape
from tests.servers import BookshelfServer, free_port

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def process_samples(exposition: str, name: str) -> dict[tuple[str, str], float]:
    return {
        (item.labels["pid"], item.labels["role"]): item.value
        for family in text_string_to_metric_families(exposition)
        for item in family.samples
        if item.name == name
    }


def test_two_workers_export_build_info_and_each_process_metrics(tmp_path: Path) -> None:
    server = BookshelfServer(
        f"sqlite:///{tmp_path / 'processes.db'}",
        tmp_path,
        workers=2,
        admin_port=str(free_port()),
        extra_env={BUILD_COMMIT_ENV: COMMIT},
    )
    try:
        server.wait_live()
        exposition = httpx.get(f"{server.admin_url}/metrics", timeout=10).text
        assert sample(exposition, "bookshelf_build_info", version=__version__, commit=COMMIT) == 1
        memory = process_samples(exposition, "process_resident_memory_bytes")
        roles = sorted(role for _, role in memory)
        assert roles == ["supervisor", "worker", "worker"], memory
        assert (str(server.pid), "supervisor") in memory
        assert all(value > 10 * 2**20 for value in memory.values()), memory
        started = process_samples(exposition, "process_start_time_seconds")
        assert set(started) == set(memory)
        # A worker that dies is replaced by the supervisor: the dead one is no longer reported.
        dead_worker = next(int(pid) for pid, role in memory if role == "worker")
        os.kill(dead_worker, 9)
        replaced = {}
        for _ in range(300):
            replaced = process_samples(
                httpx.get(f"{server.admin_url}/metrics", timeout=10).text,
                "process_resident_memory_bytes",
            )
            workers = [pid for pid, role in replaced if role == "worker"]
            if len(workers) == 2 and str(dead_worker) not in workers:
                break
            httpx.get(f"{server.admin_url}/health/live", timeout=10)
            time.sleep(0.2)
        workers = [pid for pid, role in replaced if role == "worker"]
        assert len(workers) == 2, replaced
        assert str(dead_worker) not in workers, replaced
    finally:
        server.stop()


async def test_build_info_says_unknown_without_a_commit(
    anonymous_client: httpx.AsyncClient,
) -> None:
    exposition = await scrape(anonymous_client)
    assert os.environ.get(BUILD_COMMIT_ENV) is None
    assert sample(exposition, "bookshelf_build_info", version=__version__, commit="unknown") == 1
    # One process serving alone: the standard process collector's series, without labels.
    assert sample(exposition, "process_start_time_seconds") > 0


async def test_problem_responses_are_counted_by_type(
    anonymous_client: httpx.AsyncClient,
) -> None:
    before = await scrape(anonymous_client)
    for _ in range(3):
        missing = await anonymous_client.get(f"/api/v1/books/{uuid.uuid4()}")
        assert missing.status_code == 404
    invalid = await anonymous_client.get("/api/v1/books", params={"limit": "a lot"})
    assert invalid.status_code == 422
    after = await scrape(anonymous_client)

    def moved(problem_type: str) -> float:
        name = "bookshelf_http_problems_total"
        return sample(after, name, type=problem_type) - sample(before, name, type=problem_type)

    assert moved("book-not-found") == 3
    assert moved("validation-error") == 1
