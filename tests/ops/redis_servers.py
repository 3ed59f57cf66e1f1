"""Redis servers of a test's own, on free ports of 127.0.0.1, for what the shared one (6379) must
never be put through: a stall (``DEBUG SLEEP``, which Redis refuses unless started with
``--enable-debug-command``) or cluster mode. Each is stopped on exit, and every wait is bounded."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port

START_SECONDS = 15.0
CLUSTER_READY_SECONDS = 30.0
# The cluster's password: characters a URL must percent-encode, so its parsing is tested too.
CLUSTER_PASSWORD = "p@ss w:rd/1"


def _unavailable(reason: str) -> None:
    """Skip, except under CI=true, where the Redis tests must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: Redis tests must run)")
    pytest.skip(reason)


def _redis_cli(port: int, *command: str, password: str | None = None) -> str:
    auth = ("-a", password, "--no-auth-warning") if password else ()
    completed = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *auth, *command],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return completed.stdout


def _wait_until(condition: object, what: str, seconds: float) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {seconds:g} s")
        time.sleep(0.05)


@contextlib.contextmanager
def _servers(
    directory: Path, options: list[list[str]], password: str | None = None
) -> Iterator[list[int]]:
    """One ``redis-server`` per list of extra options, each on a free port; their ports."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        _unavailable("redis-server and redis-cli are not installed")
    processes: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        for extra in options:
            port = free_port()
            log = (directory / f"redis-{port}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
                        *("--save", "", "--appendonly", "no"),
                        *(
                            ("--requirepass", password, "--masterauth", password)
                            if password
                            else ()
                        ),
                        *extra,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
            ports.append(port)
        for port in ports:
            _wait_until(
                lambda port=port: _redis_cli(port, "ping", password=password).strip() == "PONG",
                f"redis-server on {port} did not answer",
                START_SECONDS,
            )
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextlib.contextmanager
def debuggable_redis(directory: Path) -> Iterator[int]:
    """A standalone Redis that accepts ``DEBUG`` from 127.0.0.1; its port."""
    with _servers(directory, [["--enable-debug-command", "local"]]) as (port,):
        yield port


@contextlib.contextmanager
def stalled(port: int, seconds: float) -> Iterator[None]:
    """Redis on ``port`` answers nothing for ``seconds`` (``DEBUG SLEEP``: it stops serving
    every client). On exit, waits for the stall to end."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds + 10) as connection:
        connection.sendall(b"DEBUG SLEEP %.3f\r\n" % seconds)
        time.sleep(0.1)  # Redis reads it at once; this is only for a loaded machine
        yield
        assert connection.recv(64).startswith(b"+OK")


@contextlib.contextmanager
def redis_cluster(directory: Path, nodes: int = 3) -> Iterator[list[int]]:
    """A Redis Cluster of ``nodes`` primaries (no replicas), every slot covered, which asks for
    ``CLUSTER_PASSWORD``; their ports."""
    options = []
    for node in range(nodes):
        config = directory / f"nodes-{node}.conf"
        options.append(
            [
                *("--cluster-enabled", "yes", "--cluster-config-file", str(config)),
                *("--cluster-port", str(free_port()), "--cluster-node-timeout", "5000"),
            ]
        )
    with _servers(directory, options, CLUSTER_PASSWORD) as ports:
        created = subprocess.run(
            [
                *("redis-cli", "-a", CLUSTER_PASSWORD, "--no-auth-warning"),
                *("--cluster", "create"),
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=CLUSTER_READY_SECONDS,
            check=False,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        for port in ports:
            _wait_until(
                lambda port=port: (
                    "cluster_state:ok"
                    in _redis_cli(port, "cluster", "info", password=CLUSTER_PASSWORD)
                ),
                f"the cluster node on {port} did not report cluster_state:ok",
                CLUSTER_READY_SECONDS,
            )
        yield ports


def keys_by_node(ports: list[int], pattern: str) -> dict[int, list[str]]:
    """The keys matching ``pattern`` that each cluster node holds (SCAN sees its node only)."""
    return {
        port: sorted(
            _redis_cli(port, "--scan", "--pattern", pattern, password=CLUSTER_PASSWORD).split()
        )
        for port in ports
    }
