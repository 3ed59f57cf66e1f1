"""A burst of 32 concurrent sign-ins against a real ``bookshelf serve`` with the production
Argon2id cost (64 MiB per hash): the worker's peak memory stays within its documented budget
(base + BOOKSHELF_PASSWORD_HASH_CONCURRENCY x 64 MiB), every request gets a sign-in answer or a
fast 503 with Retry-After, and the liveness probe keeps answering meanwhile."""

from __future__ import annotations

import uuid
from pathlib import Path

from bench.signin import peak_rss_mib, rss_mib, sign_in_burst
from tests.faults.conftest import ADMIN_PASSWORD, create_admin, sign_in
from tests.servers import running_bookshelf

HASH_MIB = 64
SLOTS = 2
# Allocator and interpreter noise on top of the hashes' own memory.
SLACK_MIB = 48


def test_a_sign_in_burst_stays_within_the_memory_budget(
    postgresql_url: str, tmp_path: Path
) -> None:
    email = f"burst-{uuid.uuid4().hex[:8]}@faults.example.org"
    create_admin(postgresql_url, email=email)
    with running_bookshelf(
        postgresql_url,
        tmp_path,
        password_hash_time_cost="3",
        password_hash_memory_kib=str(HASH_MIB * 1024),
        password_hash_concurrency=str(SLOTS),
        password_hash_wait_seconds="2",
    ) as server:
        # Warm up: the first sign-in also moves the account to the production cost.
        sign_in(server.base_url, email=email)
        baseline = rss_mib(server.pid)
        result = sign_in_burst(server.base_url, email=email, password=ADMIN_PASSWORD)
        peak = peak_rss_mib(server.pid)
        log = server.log_problems()

    assert peak <= baseline + SLOTS * HASH_MIB + SLACK_MIB, (peak, baseline, result)
    assert sum(result.statuses.values()) == 32
    assert set(result.statuses) <= {200, 400, 503}, result.statuses
    # At least the requests that got the slots straight away were really checked (which of
    # them, right or wrong password, depends on arrival order).
    assert result.statuses[200] + result.statuses[400] >= SLOTS, result.statuses
    assert result.busy_without_retry_after == 0
    assert result.live_statuses, "the liveness probe never ran"
    assert set(result.live_statuses) == {200}, result.live_statuses
    assert "error:" not in log, log


def test_a_greedy_client_cannot_take_every_hashing_slot(
    postgresql_url: str, tmp_path: Path
) -> None:
    """One client address sends 40 sign-ins at once, before four others send one each: the
    greedy client holds at most one hashing slot at a time, so each of the others is served
    (served in arrival order, all 40 would be ahead of them, and they would wait past the
    bounded wait and get 503)."""
    email = f"greedy-{uuid.uuid4().hex[:8]}@faults.example.org"
    create_admin(postgresql_url, email=email)
    with running_bookshelf(
        postgresql_url,
        tmp_path,
        password_hash_time_cost="3",
        password_hash_memory_kib=str(HASH_MIB * 1024),
        password_hash_concurrency=str(SLOTS),
        password_hash_wait_seconds="2",
    ) as server:
        sign_in(server.base_url, email=email)
        result = sign_in_burst(
            server.base_url, email=email, password=ADMIN_PASSWORD, shares=[40, 1, 1, 1, 1]
        )
        log = server.log_problems()

    assert sum(result.statuses.values()) == 44
    assert result.clients_refused_entirely == 0, result
    assert result.statuses[503] > 0, result  # the greedy client's queue was cut short
    assert result.busy_without_retry_after == 0
    assert "error:" not in log, log
