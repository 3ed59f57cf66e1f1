"""Fault-injection harness: a throw-away PostgreSQL cluster, real ``bookshelf serve`` processes
and an optional PgBouncer, all on 127.0.0.1, each stopped in teardown even when a test fails.

The shared PostgreSQL (5432) is never touched: faults are injected into a private cluster made
with ``initdb`` in a temporary directory. PostgreSQL and PgBouncer refuse to run as root, so when
the tests run as root their commands run as the ``postgres`` OS user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

BOOKSHELF = Path(sys.executable).with_name("bookshelf")
JWT_SECRET = "fault-injection-secret-" + "9f3c1a7e5b2d4068" * 2
ADMIN_EMAIL = "admin@faults.example.org"
ADMIN_PASSWORD = "fault injection admin passphrase 4c9e"
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_PREFIX = "urn:bookshelf:problem:"
# Real Argon2id at its lowest cost, as in tests/conftest.py.
FAST_HASHING = {"password_hash_time_cost": "1", "password_hash_memory_kib": "8192"}
# Generous: each worker imports the whole app, slow on a loaded 2-core machine.
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0
# What a response body must never show a client: a trace, SQL, driver or ORM names.
LEAK = re.compile(
    r"Traceback|File \"|asyncpg|sqlalchemy|psycopg|\bSELECT\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b"
    r"|\bFROM books\b|postgresql://",
    re.IGNORECASE,
)
IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
# The "module.ExceptionName: message" lines of a logged traceback.
EXCEPTION_LINE = re.compile(
    r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*$", re.MULTILINE
)
LOGGED_PROBLEMS = {"warning", "error", "critical"}


def fold(lines: list[str]) -> str:
    """Distinct lines with ids masked, each with its count."""
    counts: dict[str, int] = {}
    for line in lines:
        key = IDS.sub("…", line)
        counts[key] = counts.get(key, 0) + 1
    return "\n".join(f"{count}x {line}" for line, count in counts.items())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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


def clean_environment(**settings: str) -> dict[str, str]:
    """The current environment without BOOKSHELF_*, metrics and coverage variables (servers run
    as in production), plus ``settings`` (``database_url`` becomes BOOKSHELF_DATABASE_URL)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BOOKSHELF_", "COV_CORE_", "COVERAGE_PROCESS_"))
        and name != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update({f"BOOKSHELF_{name.upper()}": value for name, value in settings.items()})
    return env


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


class BookshelfServer:
    """A ``bookshelf serve`` subprocess; stdout and stderr go to ``log_path``."""

    def __init__(self, database_url: str, log_dir: Path, *, workers: int, **settings: str) -> None:
        self.port = free_port()
        self.workers = workers
        self.base_url = f"http://127.0.0.1:{self.port}"
        # With an admin port the probes (and metrics) are served there, not on the public port.
        admin_port = settings.get("admin_port")
        self.admin_url = f"http://127.0.0.1:{admin_port}" if admin_port else self.base_url
        self.log_path = log_dir / f"bookshelf-{self.port}.log"
        defaults = {
            "database_url": database_url,
            "environment": "test",
            "jwt_secret": JWT_SECRET,
            "rate_limit_enabled": "false",
            "json_logs": "true",
            **FAST_HASHING,
        }
        env = clean_environment(**{**defaults, **settings})
        command = [str(BOOKSHELF), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--workers", str(workers)],
                env=env,
                cwd=log_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so workers can be killed too
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def mark(self) -> int:
        """Where the log ends now: pass to ``log``/``log_problems`` to see only what follows."""
        return self.log_path.stat().st_size

    def log(self, since: int = 0) -> str:
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def log_problems(self, since: int = 0, limit: int = 12) -> str:
        """Distinct warnings and errors the server logged (errors first), each with its
        exception's last line and a count; ids are masked so repeats fold together."""
        seen: dict[str, int] = {}
        for line in self.log(since).splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                event = {"level": "error", "event": line} if line.strip() else {}
            if not isinstance(event, dict) or event.get("level") not in LOGGED_PROBLEMS:
                continue
            raised = EXCEPTION_LINE.findall(str(event.get("exception") or ""))
            key = f"{event.get('level')}: {str(event.get('event')).strip()}" + (
                f" <- {raised[-1]}" if raised else ""
            )
            key = IDS.sub("…", key)
            seen[key] = seen.get(key, 0) + 1
        ordered = sorted(seen.items(), key=lambda item: not item[0].startswith(("error", "crit")))
        lines = [f"{count}x {key}" for key, count in ordered]
        return "\n".join(lines[:limit]) or "(no warnings or errors logged)"

    def wait_live(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            # Live, and every worker started (one answering is not enough with --workers > 1).
            with contextlib.suppress(httpx.HTTPError):
                live = httpx.get(f"{self.admin_url}/health/live", timeout=1).status_code == 200
                if live and self.log().count("Application startup complete") >= self.workers:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"bookshelf serve did not become live (exit code {self.process.returncode}):\n"
            + self.log_tail()
        )

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM, then SIGKILL to the whole process group after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)


@contextlib.contextmanager
def running_servers(
    count: int,
    database_url: str,
    log_dir: Path,
    *,
    workers: int = 1,
    meanwhile: Callable[[], object] | None = None,
    **settings: str,
) -> Iterator[list[BookshelfServer]]:
    """``count`` servers on one database, started together (``meanwhile`` runs while they
    boot); all stopped on exit."""
    servers: list[BookshelfServer] = []
    try:
        for _ in range(count):
            servers.append(BookshelfServer(database_url, log_dir, workers=workers, **settings))
        if meanwhile is not None:
            meanwhile()
        for server in servers:
            server.wait_live()
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextlib.contextmanager
def running_server(
    database_url: str,
    log_dir: Path,
    *,
    workers: int = 1,
    meanwhile: Callable[[], object] | None = None,
    **settings: str,
) -> Iterator[BookshelfServer]:
    with running_servers(
        1, database_url, log_dir, workers=workers, meanwhile=meanwhile, **settings
    ) as servers:
        yield servers[0]


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
