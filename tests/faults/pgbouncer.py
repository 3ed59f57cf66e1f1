"""PgBouncer in transaction mode in front of a throw-away cluster, for the two-instance race.

Optional: the test using it is skipped, even under CI=true, when ``pgbouncer`` is not installed
(Debian: ``apt-get install -y pgbouncer``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import ThrowawayPostgres, service_directory
from tests.servers import free_port


class PgBouncer:
    """PgBouncer in transaction mode in front of a throw-away cluster (database ``bookshelf``)."""

    def __init__(
        self,
        binary: str,
        upstream: ThrowawayPostgres,
        more_databases: dict[str, ThrowawayPostgres] | None = None,
    ) -> None:
        self.binary = binary
        self.root = service_directory("bookshelf-faults-pgbouncer-")
        self.port = free_port()
        self.log = self.root / "pgbouncer.log"
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"bookshelf = host=127.0.0.1 port={upstream.port} dbname=bookshelf user=postgres\n"
            # Other servers' bookshelf databases under other names (a replica's, tests/db).
            + "".join(
                f"{name} = host=127.0.0.1 port={server.port} dbname=bookshelf user=postgres\n"
                for name, server in (more_databases or {}).items()
            )
            + "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'userlist.txt'}\n"
            "pool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = 5\n"
            f"logfile = {self.log}\npidfile = {self.root / 'pgbouncer.pid'}\n"
        )
        if os.geteuid() == 0:
            for path in self.root.iterdir():
                shutil.chown(path, user="postgres", group="postgres")
        # Not through runuser, which delays forwarding SIGTERM: switch user in the child.
        as_service_user: dict[str, Any] = (
            {"user": "postgres", "group": "postgres", "extra_groups": []}
            if os.geteuid() == 0
            else {}
        )
        self.process = subprocess.Popen(
            [binary, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **as_service_user,
        )

    def url(self, database: str = "bookshelf") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            time.sleep(0.1)
        raise RuntimeError(f"PgBouncer did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_pgbouncer(
    upstream: ThrowawayPostgres, more_databases: dict[str, ThrowawayPostgres] | None = None
) -> Iterator[PgBouncer]:
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        # Skipped even under CI=true: PgBouncer is optional (apt-get install -y pgbouncer).
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer); skipped even in CI")
    bouncer = PgBouncer(binary, upstream, more_databases)
    try:
        bouncer.wait_ready()
        yield bouncer
    finally:
        bouncer.stop()
