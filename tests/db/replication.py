"""A throw-away primary and a streaming replica of it, on free ports in temporary directories.

The primary is a ``tests.faults`` cluster (initdb, pg_ctl; ``wal_level=replica`` is PostgreSQL's
default, and initdb's pg_hba trusts replication connections from 127.0.0.1); the replica is a
``pg_basebackup -R`` copy of it, streaming from it. Both are stopped and removed at the end.
What each server served is read from its own statistics (``pg_stat_statements``), never assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg

from tests.faults.conftest import ThrowawayPostgres, postgres_bindir, service_directory, unavailable


@dataclass
class Replication:
    primary: ThrowawayPostgres
    replica: ThrowawayPostgres


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _stop(cluster: ThrowawayPostgres) -> None:
    if cluster.is_running():
        try:
            cluster.stop("fast")
        except (RuntimeError, subprocess.TimeoutExpired):
            cluster.stop("immediate")


@contextlib.contextmanager
def replication() -> Iterator[Replication]:
    """A migrated ``bookshelf`` database on a primary, and a replica streaming it."""
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "pg_basebackup").exists():
        unavailable("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are not installed")
        raise AssertionError("unreachable")
    primary = ThrowawayPostgres(bindir, service_directory("bookshelf-primary-"))
    replica = ThrowawayPostgres(bindir, service_directory("bookshelf-replica-"))
    try:
        primary.init()
        # Counts of each statement run, per server, updated as each statement ends (a backend's
        # pg_stat_database counts wait until it disconnects). The replica copies the setting.
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write("shared_preload_libraries = 'pg_stat_statements'\n")
        primary.start()
        primary.create_database("bookshelf")
        asyncio.run(primary.execute("CREATE EXTENSION pg_stat_statements", "bookshelf"))
        command = [
            str(bindir / "pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(replica.data), "-R", "-X", "stream", "--checkpoint=fast"),
        ]
        subprocess.run(_as_postgres(command), check=True, capture_output=True, timeout=120)
        replica.start()
        yield Replication(primary, replica)
    finally:
        for cluster in (replica, primary):
            _stop(cluster)
            shutil.rmtree(cluster.root, ignore_errors=True)


async def query(url: str, sql: str) -> object:
    """One value, on a connection of its own (to the ``postgres`` database unless ``url`` says)."""
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


async def book_reads(cluster: ThrowawayPostgres) -> int:
    """Statements that read the ``books`` table run on ``cluster`` so far (pg_stat_statements:
    every read of a book, list, search, page or export reads it)."""
    value = await query(
        cluster.url(),
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements"
        " WHERE query ILIKE 'SELECT%FROM books%' AND dbid ="
        " (SELECT oid FROM pg_database WHERE datname = 'bookshelf')",
    )
    assert isinstance(value, int)
    return value


async def statements(cluster: ThrowawayPostgres) -> int:
    """Every statement run in the ``bookshelf`` database of ``cluster`` so far (but these)."""
    value = await query(
        cluster.url(),
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements"
        " WHERE query NOT ILIKE '%pg_stat_statements%' AND dbid ="
        " (SELECT oid FROM pg_database WHERE datname = 'bookshelf')",
    )
    assert isinstance(value, int)
    return value


async def wait_replayed(primary: ThrowawayPostgres, replica: ThrowawayPostgres) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    position = await query(primary.url("postgres"), "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        caught_up = await query(
            replica.url("postgres"), f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn"
        )
        if caught_up:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the replica did not catch up in 30 s")


async def pause_replay(replica: ThrowawayPostgres) -> None:
    await query(replica.url("postgres"), "SELECT pg_wal_replay_pause()")


async def resume_replay(replica: ThrowawayPostgres) -> None:
    await query(replica.url("postgres"), "SELECT pg_wal_replay_resume()")
