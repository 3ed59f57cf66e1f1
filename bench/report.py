"""The bench's results as printed: the table (both modes side by side), the costs and the
scale parts."""

from __future__ import annotations

from dataclasses import dataclass

from bench import costs as costs_part
from bench import pages
from bench import scale as scale_part

# name, target ratio to the floor (the fast-path targets: every case has one)
TARGETS = {
    "GET /books/{id}": 0.45,
    "GET /books": 0.4,
    "GET /books?language&sort": 0.4,
    "GET /books?q": 0.4,
    "POST /books": 0.45,
    "PATCH /books/{id}": 0.4,
    "GET /users/me": 0.45,
}
MAX_P99_OVER_P50 = 4.0


@dataclass(frozen=True)
class Row:
    case: str
    app: str
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_us: float
    errors: int
    ratio: float | None = None


def table(result: dict[str, object]) -> None:
    rows = [Row(**r) for r in result["rows"]]  # type: ignore[attr-defined]
    print()
    print(
        "| case | app | req/s | p50 ms | p99 ms | p99/p50 | CPU µs/req | errors | ratio | target |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        # The targets are the fast path's; the stock rows say what it buys.
        target = TARGETS.get(row.case) if row.app == "bookshelf" else None
        verdict = ""
        if row.ratio is not None:
            tail_ok = row.p99_ms <= MAX_P99_OVER_P50 * row.p50_ms
            ratio_ok = target is None or row.ratio >= target
            goal = f"≥ {target:.2f}x" if target is not None else "-"
            verdict = f"{goal} {'met' if ratio_ok and tail_ok and not row.errors else 'MISSED'}"
        print(
            f"| {row.case} | {row.app} | {row.per_second:,.0f} | {row.p50_ms:.2f} | "
            f"{row.p99_ms:.2f} | {row.p99_ms / row.p50_ms:.1f} | {row.cpu_us:,.0f} | "
            f"{row.errors} | {'' if row.ratio is None else f'{row.ratio:.2f}x'} | {verdict} |"
        )
    _modes(rows)
    if result.get("pages"):
        pages.print_table(result["pages"])  # type: ignore[arg-type]
    memory = result["rss_mib"]  # type: ignore[index]
    print()
    for name, sizes in memory.items():
        print(f"RSS {name}: " + ", ".join(f"{s:.1f} MiB" for s in sizes) + " per worker")


def _modes(rows: list[Row]) -> None:
    """The fast path and stock parts side by side, per case."""
    by_case: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_case.setdefault(row.case, {})[row.app] = row
    print()
    print("| case | fast path req/s (ratio) | stock req/s (ratio) | CPU µs/req fast / stock |")
    print("|---|---:|---:|---:|")
    for case, apps in by_case.items():
        fast, stock = apps.get("bookshelf"), apps.get("stock")
        if fast is None or stock is None:
            continue
        print(
            f"| {case} | {fast.per_second:,.0f} ({fast.ratio or 0:.2f}x) | "
            f"{stock.per_second:,.0f} ({stock.ratio or 0:.2f}x) | "
            f"{fast.cpu_us:,.0f} / {stock.cpu_us:,.0f} |"
        )


def costs(result: dict[str, dict[str, float]]) -> None:
    cpu_by_feature = result["features"]
    full = cpu_by_feature["all features on"]
    print()
    print("| Bookshelf, GET /books/{id}, in process | CPU µs/req | the feature costs |")
    print("|---|---:|---:|")
    for name, cpu in cpu_by_feature.items():
        saved = "" if name in ("all features on", costs_part.LIVENESS) else f"{full - cpu:,.0f} µs"
        print(f"| {name} | {cpu:,.0f} | {saved} |")
    print()
    print("| GET /books/{id}, every feature on: CPU by library (cProfile self time) | share |")
    print("|---|---:|")
    for library, share in result["by_library"].items():
        if share >= 0.5:
            print(f"| {library} | {share:.1f} % |")


def scale(result: dict[str, object]) -> list[str]:
    """The scale part's table, one verdict per case; returns the cases that missed."""
    sizes: list[int] = result["sizes"]  # type: ignore[assignment]
    small, large = sizes
    p95: dict[str, dict[str, float]] = result["p95_ms"]  # type: ignore[assignment]
    database: dict[str, dict[str, dict[str, float]]] = result["database_ms"]  # type: ignore[assignment]
    large_database_ms = {case: t["judged_ms"] for case, t in database[str(large)].items()}
    judged = scale_part.verdicts(p95[str(small)], p95[str(large)], large_database_ms)
    print()
    loads: dict[str, list[float]] = result["load_average"]  # type: ignore[assignment]
    print(
        f"Scale: {result['connections']} connections; "
        f"one-book search q={result['one_book_search']!r}; load average (1, 5, 15 min) "
        + ", ".join(f"{when} {values}" for when, values in loads.items())
    )
    print(
        "database ms: what the bound judges, the backend's CPU time per search (else the wall"
        " time); wall: PostgreSQL's planning + execution time, median (low-high) of the runs"
    )
    print(
        f"| case | p95 ms at {small:,} | p95 ms at {large:,} | growth | "
        f"database ms at {small:,} | database ms at {large:,} | wall ms at {large:,} | "
        "criterion | verdict |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for verdict in judged:
        case = verdict.case
        times = [database[str(size)].get(case) for size in (small, large)]
        shown = [f"{t['judged_ms']:.2f}" if t else "-" for t in times]
        # The wall time's spread shows how much load from outside the bench moved it.
        wall = (
            times[1]
            and f"{times[1]['median_ms']:.2f} ({times[1]['low_ms']:.2f}-{times[1]['high_ms']:.2f})"
        )
        print(
            f"| {case} | {p95[str(small)][case]:.2f} | {p95[str(large)][case]:.2f} | "
            f"{p95[str(large)][case] / p95[str(small)][case]:.2f}x | {shown[0]} | {shown[1]} | "
            f"{wall or '-'} | {verdict.criterion} | {'met' if verdict.passed else 'MISSED'} |"
        )
    return [f"scale: {v.case} ({v.criterion})" for v in judged if not v.passed]
