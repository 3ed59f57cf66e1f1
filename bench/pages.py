"""The web app's pages beside the API calls whose data they show, on the same Bookshelf server
and the same load: the catalog's home page (20 books) beside ``GET /api/v1/books``, and a book's
page (its fields and first page of reviews) beside ``GET /api/v1/books/{id}``. A page is
rendered from the same service calls plus a template, so its server CPU per request is judged
against the API call's: at most ``CPU_TARGET`` times it. Visitors are anonymous (no cookie),
as most of a catalog's readers are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import load

CPU_TARGET = 2.0
# page case: (the API case it is compared with, its paths from the sampled book ids)
CASES: dict[str, tuple[str, Callable[[list[str]], list[str]]]] = {
    "page /": ("GET /books", lambda ids: ["/"]),
    "page /books/{id}": ("GET /books/{id}", lambda ids: [f"/books/{i}" for i in ids]),
}


def measure(
    run: Callable[[str, str], Any], api_cpu_us: dict[str, float], ids: list[str]
) -> list[dict[str, object]]:
    """Each page whose API case was measured (``api_cpu_us``): ``run(script, case)`` measures
    it on Bookshelf and returns its row."""
    results: list[dict[str, object]] = []
    for case, (api_case, paths) in CASES.items():
        if api_case not in api_cpu_us:
            continue
        row = run(load.paths_script(paths(ids)), case)
        results.append(
            {
                "case": case,
                "api_case": api_case,
                "cpu_us": row.cpu_us,
                "api_cpu_us": api_cpu_us[api_case],
                "cpu_ratio": row.cpu_us / api_cpu_us[api_case],
                "per_second": row.per_second,
                "p99_ms": row.p99_ms,
                "errors": row.errors,
            }
        )
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print("| page | req/s | p99 ms | CPU µs/req | API call | its CPU µs/req | ratio | target |")
    print("|---|---:|---:|---:|---|---:|---:|---|")
    for result in results:
        ratio = result["cpu_ratio"]
        verdict = "met" if ratio <= CPU_TARGET and not result["errors"] else "MISSED"
        print(
            f"| {result['case']} | {result['per_second']:,.0f} | {result['p99_ms']:.2f} | "
            f"{result['cpu_us']:,.0f} | {result['api_case']} | {result['api_cpu_us']:,.0f} | "
            f"{ratio:.2f}x | ≤ {CPU_TARGET:.0f}x {verdict} |"
        )
