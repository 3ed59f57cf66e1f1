"""Fault-injection harness: a throw-away PostgreSQL cluster, real ``bookshelf serve`` processes
and an optional PgBouncer, all on 127.0.0.1, each stopped in teardown even when a test fails.

The shared PostgreSQL (5432) is never touched: faults are injected into a private cluster made
with ``initdb`` in a temporary directory. PostgreSQL and PgBouncer refuse to run as root, so when
the tests run as root their commands run as the ``postgres`` OS user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.servers import BOOKSHELF, FAST_HASHING, IDS, clean_environment, free_port

ADMIN_EMAIL = "admin@faults.example.org"
ADMIN_PASSWORD = "fault injection admin passphrase 4c9e"
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_PREFIX = "urn:bookshelf:problem:"
# What a response body must never show a client: a trace, SQL, driver or ORM names.
LEAK = re.compile(
    r"Traceback|File \"|asyncpg|sqlalchemy|psycopg|\bSELECT\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b"
    r"|\bFROM books\b|postgresql://",
    re.IGNORECASE,
)


def fold(lines: list[str]) -> str:
    """Distinct lines with ids masked, each with its count."""
    counts: dict[str, int] = {}
    for line in lines:
        key = IDS.sub("…", line)
        counts[key] = counts.get(key, 0) + 1
    return "\n".join(f"{count}x {line}" for line, count in counts.items())


def unavailable(reason: str) -> None:
    """Skip, except under CI=true, where the fault tests must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: the fault tests must run)")
    pytest.skip(reason)


def _as_service_user(command: list[str]) -> list[str]:
    """PostgreSQL and PgBouncer refuse root: run them as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def service_directory(prefix: str) -> Path:
    """A fresh directory the service user owns (not under pytest's root-only tmp tree)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(path, user="postgres", group="postgres")
    return path


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name) or ["0"])


def postgres_bindir() -> Path | None:
    found = [
        path
        for path in Path("/usr/lib/postgresql").glob("*/bin")
        if (path / "initdb").exists() and (path / "pg_ctl").exists()
    ]
    if found:
        return max(found, key=_version_key)
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl and Path(pg_ctl).with_name("initdb").exists() else None


def _run(command: list[str], *, timeout: float = 60.0, **kwargs: Any) -> str:
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {completed.returncode}:\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
    return completed.stdout


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temporary directory, on a free port."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = free_port()

    def _ctl(self, *arguments: str, timeout: float = 60.0) -> str:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), *arguments]
        return _run(_as_service_user(command), timeout=timeout)

    def init(self) -> None:
        command = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres"]
        _run(_as_service_user([*command, "--auth=trust", "-E", "UTF8", "--no-locale", "-N"]))

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", str(self.log), "-o", options, "-w", "-t", "30", "start", timeout=45)

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "-t", "30", "stop", timeout=45)

    def is_running(self) -> bool:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        return (
            subprocess.run(_as_service_user(command), capture_output=True, check=False).returncode
            == 0
        )

    def url(self, database: str = "bookshelf", port: int | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{port or self.port}/{database}"

    async def execute(self, query: str, database: str = "postgres") -> None:
        connection = await asyncpg.connect(self.url(database), timeout=10)
        try:
            await connection.execute(query)
        finally:
            await connection.close()

    def create_database(self, name: str) -> str:
        """A new database, migrated to head with ``bookshelf migrate``; returns its URL."""
        asyncio.run(self.execute(f'CREATE DATABASE "{name}"'))
        url = self.url(name)
        _run(
            [str(BOOKSHELF), "migrate"],
            env=clean_environment(database_url=url),
            cwd=self.root,
            timeout=120,
        )
        return url


@pytest.fixture(scope="module")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """One private cluster per test module (database ``bookshelf``, migrated), always stopped."""
    bindir = postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        raise AssertionError("unreachable")
    cluster = ThrowawayPostgres(bindir, service_directory("bookshelf-faults-pg-"))
    try:
        cluster.init()
        cluster.start()
        cluster.create_database("bookshelf")
        yield cluster
    finally:
        if cluster.is_running():
            try:
                cluster.stop("fast")
            except (RuntimeError, subprocess.TimeoutExpired):
                cluster.stop("immediate")
        shutil.rmtree(cluster.root, ignore_errors=True)


def create_admin(database_url: str, email: str = ADMIN_EMAIL) -> None:
    _run(
        [str(BOOKSHELF), "create-admin", "--email", email],
        input=ADMIN_PASSWORD + "\n",
        env=clean_environment(database_url=database_url, environment="test", **FAST_HASHING),
        timeout=60,
    )


def sign_in(
    base_url: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token", data={"username": email, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_book(label: str) -> dict[str, Any]:
    return {"title": f"Fault test {label} {uuid.uuid4().hex[:6]}", "authors": ["A. Tester"]}


def problem_type(response: httpx.Response) -> str | None:
    """The problem ``type`` of a problem+json response, else None."""
    if not response.headers.get("content-type", "").startswith(PROBLEM_MEDIA_TYPE):
        return None
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("type"), str):
            return str(body["type"])
    return None


def leaks(text: str) -> str | None:
    """The first trace or SQL fragment found in a response body, else None."""
    found = LEAK.search(text)
    return found.group(0) if found else None
