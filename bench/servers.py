"""The servers under load: started as subprocesses on 127.0.0.1, measured through /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str

    def workers(self) -> list[int]:
        """The processes that serve requests: the children when there are any (uvicorn's
        multi-worker supervisor), else the server process itself."""
        return _children(self.process.pid) or [self.process.pid]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its workers so far."""
        total = 0
        for pid in {self.process.pid, *self.workers()}:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / _TICKS_PER_SECOND

    def rss_mib(self) -> list[float]:
        """Resident memory of each worker, in MiB."""
        sizes = []
        for pid in self.workers():
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            sizes.append(pages * _PAGE_BYTES / 2**20)
        return sizes


def _wait_until_up(server: Server, path: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            sys.exit(f"bench: {server.name} exited at start; its log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    server.process.kill()
    sys.exit(f"bench: {server.name} did not start within {timeout} s; log: {log}")


@contextmanager
def running(
    name: str,
    command: list[str],
    *,
    env: dict[str, str],
    port: int,
    ready_path: str,
    log: Path,
) -> Iterator[Server]:
    """Start a server, wait until ``ready_path`` answers 200, stop it (SIGTERM) afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
        server = Server(name, process, f"http://127.0.0.1:{port}")
        try:
            _wait_until_up(server, ready_path, log)
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
