"""The bench's scale part judges each case by its own criterion (issue 23): lists, filters and
deep pages by their growth from the small catalog to the large one, searches by a bound at the
large one (database time at one connection, p95 under load). Speed is not asserted here."""

from __future__ import annotations

import pytest

from bench import report, scale
from bookshelf.books.seed import seed_books
from bookshelf.db.connections import opened_database
from tests.conftest import empty_tables, make_settings

LIST = "GET /books?language&sort"
SEARCH = "GET /books?q (word in 3% of books)"


def _verdict(
    case: str, small_p95: float, large_p95: float, database_ms: float | None = None
) -> bool:
    database = {} if database_ms is None else {case: database_ms}
    (verdict,) = scale.verdicts({case: small_p95}, {case: large_p95}, database)
    return verdict.passed


def test_a_list_case_passes_up_to_one_and_a_half_times_growth() -> None:
    assert _verdict(LIST, 10.0, 15.0)
    assert not _verdict(LIST, 10.0, 15.1)


def test_a_list_case_is_not_saved_by_a_fast_database() -> None:
    # Lists keep the growth criterion; a database time does not count for them.
    assert not _verdict(LIST, 10.0, 30.0, database_ms=0.5)


def test_a_search_case_is_judged_by_the_bound_whatever_its_growth() -> None:
    assert _verdict(SEARCH, 10.0, 60.0, database_ms=10.0)
    assert _verdict(SEARCH, 10.0, 100.0, database_ms=15.0)


def test_a_search_case_over_its_database_time_fails() -> None:
    assert not _verdict(SEARCH, 10.0, 20.0, database_ms=15.01)


def test_a_search_case_over_its_p95_under_load_fails() -> None:
    assert not _verdict(SEARCH, 90.0, 100.5, database_ms=2.0)


def test_a_search_case_without_a_database_time_fails() -> None:
    assert not _verdict(SEARCH, 10.0, 12.0)


def test_every_search_case_of_the_part_is_judged_by_the_bound() -> None:
    cases = scale.search_cases("library toramsen")
    assert len(cases) == 4
    assert all(scale.is_search(case) for case in cases)
    assert not any(scale.is_search(case) for case in ("GET /books", LIST, "GET /books?cursor"))


def test_the_report_prints_each_verdict_and_returns_the_missed_cases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def timing(judged_ms: float, wall_ms: float) -> dict[str, float]:
        return {"judged_ms": judged_ms, "median_ms": wall_ms, "low_ms": 1.25, "high_ms": 40.5}

    result = {
        "one_book_search": "library toramsen",
        "connections": 8,
        "sizes": [10_000, 1_000_000],
        "p95_ms": {
            "10000": {"GET /books": 10.0, LIST: 10.0, SEARCH: 10.0, "GET /books?q": 10.0},
            "1000000": {"GET /books": 11.0, LIST: 20.0, SEARCH: 60.0, "GET /books?q": 30.0},
        },
        "database_ms": {
            "10000": {SEARCH: timing(1.0, 1.5), "GET /books?q": timing(0.4, 0.5)},
            # The search's wall time is over the bound, its CPU time is not, and the other
            # way round: the judged time decides.
            "1000000": {SEARCH: timing(16.0, 12.0), "GET /books?q": timing(3.5, 20.0)},
        },
        "load_average": {"start": [1.0, 1.0, 1.0]},
    }
    missed = report.scale(result)
    printed = capsys.readouterr().out
    assert missed == [
        "scale: GET /books?language&sort (≤ 1.5x growth)",
        f"scale: {SEARCH} (≤ 15 ms database, ≤ 100 ms p95)",
    ]
    assert "| GET /books | 10.00 | 11.00 | 1.10x | - | - | - | ≤ 1.5x growth | met |" in printed
    assert f"| {SEARCH} | 10.00 | 60.00 | 6.00x | 1.00 | 16.00 | 12.00 (1.25-40.50) |" in printed
    assert "| GET /books?q | 10.00 | 30.00 | 3.00x | 0.40 | 3.50 | 20.00 (1.25-40.50) |" in printed
    assert printed.count("MISSED") == 2
    assert "load average (1, 5, 15 min) start [1.0, 1.0, 1.0]" in printed


@pytest.mark.postgres_only
async def test_database_time_is_the_services_own_search_statement(postgresql_url: str) -> None:
    settings = make_settings(postgresql_url)
    async with opened_database(settings) as database:
        await seed_books(database, 300, seed=11, batch_size=300)
    try:
        measured = await scale.search_database_time(settings, "the")
    finally:
        await empty_tables(postgresql_url)
    # The relevance search's shape: capped, ranked candidates, the page joined to books.
    assert "plainto_tsquery" in measured.statement
    assert "ts_rank" in measured.statement
    assert "candidates" in measured.statement
    assert 0 < measured.low_ms <= measured.median_ms <= measured.high_ms
    # The test server is a local process: its backend's CPU time is read, and judged.
    assert measured.cpu_ms is not None
    assert measured.cpu_ms > 0
    assert measured.judged_ms == measured.cpu_ms
    assert measured.planning_ms > 0
    assert measured.execution_ms > 0
    assert measured.shared_hit_blocks + measured.shared_read_blocks > 0
