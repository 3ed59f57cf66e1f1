"""The ``import-memory`` part: what one ``POST /books/import`` costs a worker in memory.

Each case is sent once to a worker that has served nothing but a sign-in, so its growth is the
import's: the kernel's high-water mark of resident memory (``VmHWM`` in ``/proc/<pid>/status``)
after the import, less the resident memory (``VmRSS``) before it. The mark is reset after the
sign-in (``/proc/<pid>/clear_refs``), whose password hash peaks at 64 MiB of its own. Every
body is within the import's body cap (``BOOKSHELF_IMPORT_MAX_BODY_BYTES``, 16 MiB by default).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

from bench import bulk, dataset
from bench.servers import Server
from bench.signin import peak_rss_mib, rss_mib

BODY_BYTES = 16 * 1024 * 1024 - 1024  # just under the default body cap
LINES = 10_000  # the default line cap


def _lines_to(size: int, line: bytes) -> bytes:
    return line * (size // len(line))


def short_lines() -> bytes:
    """The body cap filled with the shortest non-blank lines (~5.6 million of them)."""
    return _lines_to(BODY_BYTES, b"{}\n")


def full_books() -> bytes:
    """The line cap of books with every field set, filling the body cap (~1.7 KB each)."""
    books: list[dict[str, Any]] = bulk.new_books(LINES, first=10_000_000, seed=7)
    for number, book in enumerate(books):
        book["subtitle"] = f"A subtitle for book number {number} of the import"
        book["publisher"] = "Bench Publishing House"
        book["authors"].append(f"Third Author {number}")
        book["subjects"] += ["bench", "import"]
        book["description"] = (book["description"] + " ") * 6
    body = b"".join(json.dumps(book).encode() + b"\n" for book in books)
    assert len(body) <= BODY_BYTES, len(body)
    return body


def _unknown_fields(size: int) -> bytes:
    """A line of at most ``size`` bytes (newline included) of a book's two required fields and
    as many unknown ones as fit: each unknown field is one validation error of the line."""
    head, fields, used = b'{"title":"t","authors":["a"]', [], 32
    while used + 12 <= size:
        field = b',"x%d":0' % len(fields)
        fields.append(field)
        used += len(field)
    return head + b"".join(fields) + b"}\n"


def unknown_fields() -> bytes:
    """The line cap of lines of unknown fields, filling the body cap."""
    return _unknown_fields(BODY_BYTES // LINES) * LINES


def one_long_line() -> bytes:
    """One line of unknown fields as long as the body cap allows."""
    return _unknown_fields(BODY_BYTES)


CASES: dict[str, Callable[[], bytes]] = {
    "short lines at the body cap": short_lines,
    "10,000 full books at the body cap": full_books,
    "10,000 lines of unknown fields at the body cap": unknown_fields,
    "one line of unknown fields at the body cap": one_long_line,
}


def _reset_peak(pid: int) -> None:
    """Reset the process's ``VmHWM`` to its current resident memory (proc(5), clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _case(server: Server, body: bytes) -> dict[str, object]:
    token = dataset.sign_in(server.base_url)
    for pid in server.workers():
        _reset_peak(pid)
    before = {pid: rss_mib(pid) for pid in server.workers()}
    started = time.perf_counter()
    response = httpx.post(
        f"{server.base_url}{bulk.BOOKS}/import",
        content=body,
        headers={"Authorization": f"Bearer {token}", **bulk.NDJSON},
        timeout=600,
    )
    seconds = time.perf_counter() - started
    # The worker that served the import is the one that grew (with --workers > 1).
    growth, pid = max((peak_rss_mib(pid) - rss, pid) for pid, rss in before.items())
    return {
        "body_mib": len(body) / 2**20,
        "status": response.status_code,
        "seconds": seconds,
        "answer_mib": len(response.content) / 2**20,
        "rss_mib_before": before[pid],
        "peak_rss_mib": before[pid] + growth,
        "growth_mib": growth,
    }


def measure(start: Callable[[str], AbstractContextManager[Server]]) -> dict[str, object]:
    """Each case on a server of its own, from ``start(label)``."""
    results: dict[str, object] = {}
    for name, make_body in CASES.items():
        body = make_body()
        with start(f"bookshelf-import-{len(results)}") as server:
            result = _case(server, body)
        del body
        results[name] = result
        print(
            f"  {name}: {result['body_mib']:.1f} MiB -> {result['status']} in "
            f"{result['seconds']:.1f} s; worker RSS {result['rss_mib_before']:.0f} MiB, peak "
            f"{result['peak_rss_mib']:.0f} MiB (+{result['growth_mib']:.0f})",
            flush=True,
        )
    return results
