"""Real servers for tests that need real HTTP: the app in uvicorn on a thread (Schemathesis, the
browser, logging, HEAD on a kept-alive connection), or ``bookshelf serve`` as a subprocess, as
in production (metrics across workers, the admin port, the fault-injection tests)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx
import uvicorn
from fastapi import FastAPI

START_TIMEOUT_SECONDS = 15.0


@contextlib.contextmanager
def running_server(app: FastAPI, *, port: int = 0, **config: Any) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 (or ``port``, when the app must know its own
    address beforehand) from a background thread; yield its base URL. The server runs the
    app's lifespan and is stopped (and checked stopped) on exit. ``config`` overrides
    ``uvicorn.Config`` options (by default uvicorn logs warnings only)."""
    options: dict[str, Any] = {"lifespan": "on", "log_level": "warning", **config}
    server = uvicorn.Server(uvicorn.Config(app=app, **options))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    port = listener.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the uvicorn server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_SECONDS)
        listener.close()
        if thread.is_alive():
            raise RuntimeError("the uvicorn server did not stop")


class KeptAliveConnection:
    """One HTTP/1.1 connection to a server, kept for every request sent on it (h11 keeps the
    protocol: a HEAD response has no body, whatever its Content-Length). A request fails the
    test if the server closes the connection or says it will (``Connection: close``)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.netloc
        self.socket = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.protocol = h11.Connection(h11.CLIENT)

    def __enter__(self) -> KeptAliveConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.socket.close()

    def request(
        self, method: str, target: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; its status, headers (lowercase names) and body."""
        fields = [("Host", self.host), *(headers or {}).items()]
        self.socket.sendall(
            self.protocol.send(h11.Request(method=method, target=target, headers=fields))
            + self.protocol.send(h11.EndOfMessage())
        )
        response: h11.Response | None = None
        body = b""
        while True:
            event = self.protocol.next_event()
            if event is h11.NEED_DATA:
                data = self.socket.recv(65536)
                assert data, f"the server closed the connection during {method} {target}"
                self.protocol.receive_data(data)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"{method} {target}: unexpected {event!r}")
        assert response is not None
        assert self.protocol.their_state is h11.DONE, (
            f"{method} {target}: the server will close the connection ({self.protocol.states})"
        )
        self.protocol.start_next_cycle()
        named = {name.decode().lower(): value.decode() for name, value in response.headers}
        return response.status_code, named, body


# --- ``bookshelf serve`` subprocesses ---------------------------------------------------------

BOOKSHELF = Path(sys.executable).with_name("bookshelf")
JWT_SECRET = "bookshelf-serve-test-secret-" + "9f3c1a7e5b2d4068" * 2
# Real Argon2id at its lowest cost, as in tests/conftest.py.
FAST_HASHING = {"password_hash_time_cost": "1", "password_hash_memory_kib": "8192"}
# Generous: each worker imports the whole app, slow on a loaded 2-core machine.
SERVE_START_TIMEOUT_SECONDS = 90.0
SERVE_STOP_TIMEOUT_SECONDS = 30.0
IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
# The "module.ExceptionName: message" lines of a logged traceback.
EXCEPTION_LINE = re.compile(
    r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*$", re.MULTILINE
)
LOGGED_PROBLEMS = {"warning", "error", "critical"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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


class BookshelfServer:
    """A ``bookshelf serve`` subprocess; stdout and stderr go to ``log_path``."""

    def __init__(
        self,
        database_url: str,
        log_dir: Path,
        *,
        workers: int,
        extra_env: dict[str, str] | None = None,
        **settings: str,
    ) -> None:
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
        # ``extra_env``: variables other than settings (TMPDIR, say) for the process.
        env = clean_environment(**{**defaults, **settings}) | (extra_env or {})
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

    def wait_live(self, timeout: float = SERVE_START_TIMEOUT_SECONDS) -> None:
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

    def stop(self, timeout: float = SERVE_STOP_TIMEOUT_SECONDS) -> int | None:
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
def running_bookshelf(
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
