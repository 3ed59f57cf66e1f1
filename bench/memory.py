"""The memory parts: a worker's RSS under a long mixed load (``soak``) and during a burst of
sign-ins at the production Argon2id cost (``signin``)."""

from __future__ import annotations

import threading
import time

from bench import dataset, load, signin
from bench.harness import Harness
from bench.scale import FILTER_QUERY, SEARCH_QUERY

# The sign-in burst's client addresses (4 requests each).
SIGN_IN_CLIENTS = 8


def run_soak(bench: Harness, database: dataset.BenchDatabase) -> dict[str, object]:
    seconds = bench.options.soak_seconds
    with bench.bookshelf(database, "bookshelf-soak") as app:
        token = dataset.sign_in(app.base_url)
        ids = database.sample_ids(1000)
        paths = [f"/api/v1/books/{i}" for i in ids]
        paths += ["/api/v1/books", "/api/v1/books" + FILTER_QUERY]
        paths += ["/api/v1/books" + SEARCH_QUERY, "/api/v1/users/me"] * 20
        script = load.paths_script(paths, headers={"Authorization": f"Bearer {token}"})
        # Warm up first, so caches and pools are full before the first sample.
        load.run_wrk(bench.wrk, app.base_url, script, seconds=5, connections=32, threads=2)
        samples: list[tuple[float, float]] = []
        result: dict[str, load.LoadResult] = {}

        def drive() -> None:
            result["load"] = load.run_wrk(
                bench.wrk, app.base_url, script, seconds=seconds, connections=32, threads=2
            )

        driver = threading.Thread(target=drive)
        started = time.monotonic()
        driver.start()
        while driver.is_alive():
            samples.append((time.monotonic() - started, sum(app.rss_mib())))
            driver.join(timeout=5)
        samples.append((time.monotonic() - started, sum(app.rss_mib())))
    first, last = samples[0][1], samples[-1][1]
    # Growth is judged between the first and the last third, so one sample is not decisive.
    third = max(1, len(samples) // 3)
    early = sum(s for _, s in samples[:third]) / third
    late = sum(s for _, s in samples[-third:]) / third
    print(
        f"  soak {seconds:.0f} s: {result['load'].requests} requests, errors "
        f"{result['load'].errors}; RSS {first:.1f} → {last:.1f} MiB "
        f"(first third {early:.1f}, last third {late:.1f} MiB)",
        flush=True,
    )
    return {
        "seconds": seconds,
        "requests": result["load"].requests,
        "errors": result["load"].errors,
        "rss_samples_mib": [round(s, 1) for _, s in samples],
        "early_mib": early,
        "late_mib": late,
    }


def run_signin(bench: Harness, database: dataset.BenchDatabase) -> dict[str, object]:
    """32 sign-ins at once from 8 client addresses (4 each, the first client's first) with
    the production Argon2id cost: the workers' peak memory against the budget (base +
    BOOKSHELF_PASSWORD_HASH_CONCURRENCY x 64 MiB), and how many clients got no answer but
    503 busy."""
    # The burst measures the hashing slots: the budget of attempts on one account from new
    # addresses (32 here, on the bench's one editor) would answer most of it 429 first.
    overrides = {"BOOKSHELF_RATE_LIMIT_SIGN_IN_ACCOUNT": "100000/hour"}
    with bench.bookshelf(database, "bookshelf-signin", overrides) as app:
        email, password = dataset.EDITOR_EMAIL, dataset.EDITOR_PASSWORD
        signin.sign_in_burst(app.base_url, email=email, password=password, requests=2)
        baseline = max(signin.rss_mib(pid) for pid in app.workers())
        result = signin.sign_in_burst(
            app.base_url, email=email, password=password, clients=SIGN_IN_CLIENTS
        )
        peak = max(signin.peak_rss_mib(pid) for pid in app.workers())
    statuses = {str(status): count for status, count in sorted(result.statuses.items())}
    print(
        f"  sign-in burst of 32 from {SIGN_IN_CLIENTS} clients: {statuses} in "
        f"{result.seconds:.1f} s, {result.clients_refused_entirely} client(s) refused every "
        f"time; worker RSS {baseline:.0f} MiB before, peak {peak:.0f} MiB; /health/live "
        f"{sorted(set(result.live_statuses))}, slowest {result.live_slowest_seconds:.2f} s",
        flush=True,
    )
    return {
        "statuses": statuses,
        "clients": SIGN_IN_CLIENTS,
        "clients_refused_entirely": result.clients_refused_entirely,
        "seconds": result.seconds,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "live_statuses": sorted(set(result.live_statuses)),
        "live_slowest_seconds": result.live_slowest_seconds,
    }
