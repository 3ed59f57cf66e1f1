"""The ``bulk`` part: 10,000 books in one ``POST /books/import`` against the same books sent
as single ``POST /books`` (one at a time, and 32 in flight), then the whole catalog through
``GET /books/export``. Bookshelf runs with production settings, its body cap raised for the
import (10,000 books are ~4 MB of NDJSON)."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from typing import Any

import httpx

from bench.servers import Server
from bookshelf.books.isbn import isbn13_check_digit

BOOKS = "/api/v1/books"
NDJSON = {"Content-Type": "application/x-ndjson"}
# Production defaults: the import route has its own 16 MiB body cap.
SERVER_OVERRIDES: dict[str, str] = {}
WORDS = [
    "garden",
    "lisbon",
    "river",
    "night",
    "glass",
    "winter",
    "letters",
    "harbour",
    "orchard",
    "silence",
]


def _isbn13(number: int) -> str:
    core = f"978{number:09d}"  # the seed's ISBNs all start with 979
    return core + isbn13_check_digit(core)


def new_books(count: int, *, first: int, seed: int) -> list[dict[str, Any]]:
    """Valid new books with ISBNs no seeded book has."""
    rng = random.Random(seed)
    return [
        {
            "title": " ".join(rng.sample(WORDS, 3)).title(),
            "authors": [f"Author {rng.randrange(5000)}", f"Author {rng.randrange(5000)}"],
            "isbn": _isbn13(first + n),
            "language": rng.choice(["en", "fr", "de", "pt"]),
            "published_date": f"{rng.randrange(1900, 2024)}-{rng.randrange(1, 13):02d}",
            "subjects": rng.sample(["essays", "poetry", "history", "travel", "fiction"], 2),
            "page_count": rng.randrange(50, 900),
            "description": " ".join(rng.choices(WORDS, k=30)),
        }
        for n in range(count)
    ]


def _ndjson(books: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(book) + "\n" for book in books).encode()


async def _single_posts(
    base_url: str, token: str, books: list[dict[str, Any]], concurrency: int
) -> float:
    """Seconds to create ``books`` with one POST each, ``concurrency`` in flight."""
    headers = {"Authorization": f"Bearer {token}"}
    queue = list(reversed(books))
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits) as client:

        async def worker() -> None:
            while queue:
                book = queue.pop()
                created = {201}
                try:
                    response = await client.post(BOOKS, json=book, timeout=60)
                except httpx.TransportError:
                    # A kept-alive connection the server closed as it was reused: once more
                    # (409 then means the first attempt did create the book).
                    created.add(409)
                    response = await client.post(BOOKS, json=book, timeout=60)
                if response.status_code not in created:
                    raise RuntimeError(f"POST /books: {response.status_code} {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def measure(server: Server, token: str, *, books: int = 10_000) -> dict[str, object]:
    base_url = server.base_url
    headers = {"Authorization": f"Bearer {token}", **NDJSON}
    body = _ndjson(new_books(books, first=0, seed=1))
    rss_before = server.rss_mib()
    started = time.perf_counter()
    response = httpx.post(f"{base_url}{BOOKS}/import", content=body, headers=headers, timeout=600)
    import_seconds = time.perf_counter() - started
    report = response.json()
    if response.status_code != 200 or report["created"] != books:
        raise RuntimeError(f"import: {response.status_code} {str(report)[:500]}")
    rss_after = server.rss_mib()

    singles = 1000
    sequential = asyncio.run(
        _single_posts(base_url, token, new_books(singles, first=books, seed=2), 1)
    )
    concurrent = asyncio.run(
        _single_posts(base_url, token, new_books(singles, first=books + singles, seed=3), 32)
    )

    # The export's memory must not grow with the catalog: the worker's RSS is sampled while
    # it streams every book.
    rss_before_export = max(server.rss_mib())
    samples: list[float] = []
    streaming = threading.Event()
    streaming.set()

    def sample() -> None:
        while streaming.is_set():
            samples.append(max(server.rss_mib()))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    exported = 0
    size = 0
    sampler.start()
    try:
        with httpx.stream("GET", f"{base_url}{BOOKS}/export", timeout=600) as stream:
            for line in stream.iter_lines():
                exported += 1
                size += len(line) + 1
    finally:
        streaming.clear()
        sampler.join()
    export_seconds = time.perf_counter() - started
    rss_peak_export = max(samples, default=rss_before_export)

    result: dict[str, object] = {
        "import_books": books,
        "import_body_mib": len(body) / 2**20,
        "import_seconds": import_seconds,
        "import_per_second": books / import_seconds,
        "import_response_mib": len(response.content) / 2**20,
        "rss_mib_before_import": rss_before,
        "rss_mib_after_import": rss_after,
        "single_posts": singles,
        "single_sequential_per_second": singles / sequential,
        "single_32_in_flight_per_second": singles / concurrent,
        "export_books": exported,
        "export_mib": size / 2**20,
        "export_seconds": export_seconds,
        "export_per_second": exported / export_seconds,
        "rss_mib_before_export": rss_before_export,
        "rss_mib_peak_during_export": rss_peak_export,
    }
    print(
        f"  import {books:,} books in one request: {import_seconds:.2f} s "
        f"({books / import_seconds:,.0f} books/s, body {len(body) / 2**20:.1f} MiB)\n"
        f"  single POST /books: {singles / sequential:,.0f}/s one at a time, "
        f"{singles / concurrent:,.0f}/s with 32 in flight\n"
        f"  export {exported:,} books: {export_seconds:.2f} s "
        f"({exported / export_seconds:,.0f} books/s, {size / 2**20:.1f} MiB)\n"
        f"  worker RSS {rss_before} MiB before the import, {rss_after} MiB after\n"
        f"  worker RSS {rss_before_export:.1f} MiB before the export, "
        f"{rss_peak_export:.1f} MiB at most while it streamed",
        flush=True,
    )
    return result
