"""The benchmark suite keeps working: a tiny run of its one command prints the table.

Speed is not asserted here (the bench is the judge of that, on a quiet machine); only that the
command runs end to end: its own database, the servers (the floor, Bookshelf, and Bookshelf with
the fast path off), wrk, and a ratio for the case.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import create_postgres_database, drop_postgres_database, postgres_admin_url

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]


def test_the_bench_command_prints_ratios_to_the_floor() -> None:
    # Skips (or fails under CI=true) like every PostgreSQL test when the server is down.
    probe = f"bookshelf_bench_probe_{uuid.uuid4().hex[:8]}"
    create_postgres_database(probe)
    drop_postgres_database(probe)
    database = f"bookshelf_bench_smoke_{uuid.uuid4().hex[:8]}"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--parts",
            "table",
            "--case",
            "GET /books/{id}",
            "--books",
            "300",
            "--duration",
            "1",
            "--warmup",
            "1",
            "--connections",
            "4",
            "--database",
            database,
            "--admin-url",
            postgres_admin_url(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    rows = re.findall(r"^\| GET /books/\{id\} \| (\w+) \| ([\d,]+) \|.*$", completed.stdout, re.M)
    assert [app for app, _ in rows] == ["floor", "bookshelf", "stock"], completed.stdout
    assert all(int(rate.replace(",", "")) > 0 for _, rate in rows)
    for app in ("bookshelf", "stock"):
        assert re.search(rf"\| {app} \|.*\| \d+\.\d\dx \|", completed.stdout), completed.stdout
    assert "RSS bookshelf_after_load" in completed.stdout
