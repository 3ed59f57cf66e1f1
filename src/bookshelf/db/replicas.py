"""Streaming replicas: one pool each, and which of them are in rotation.

A background task per process (``ReplicaSet.run_checks``) asks each replica every
``BOOKSHELF_REPLICA_CHECK_SECONDS`` how far it has replayed; a replica that is unreachable, not
a replica (a promoted one), or behind by more than ``BOOKSHELF_REPLICA_MAX_LAG_SECONDS`` is out
of rotation until a check finds it healthy again. Requests never run a check: they pick the next
replica in rotation (``next_in_rotation``), and a request that finds a replica's connection lost
takes it out at once (``take_out``) rather than waiting for the next check.

Lag is 0 when the replica has replayed the primary's WAL position read just before it (an idle
primary writes nothing, and ``now() - pg_last_xact_replay_timestamp()`` would grow for ever);
otherwise it is the age of the last transaction the replica replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import Counter, Gauge
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bookshelf.config import Settings
from bookshelf.db.exceptions import DatabaseError
from bookshelf.db.positions import parse_position
from bookshelf.db.postgres import PostgresDatabase

logger = logging.getLogger("bookshelf.db")

LAG_SECONDS = Gauge(
    "bookshelf_replica_lag_seconds",
    "Replay lag of each replica at its last check (-1: unreachable or not a replica).",
    ["replica"],
    multiprocess_mode="max",
)
IN_ROTATION = Gauge(
    "bookshelf_replica_in_rotation",
    "1 while the replica serves reads, 0 while it is out of rotation.",
    ["replica"],
    multiprocess_mode="min",
)
READS = Counter(
    "bookshelf_replica_reads",
    "Read requests routed to each server (server=primary: no replica could serve them).",
    ["server"],
)
PRIMARY_READS = READS.labels("primary")

_CHECK_TIMEOUT_SECONDS = 2.0
_PRIMARY_POSITION = "SELECT pg_current_wal_lsn()::text"
_REPLICA_STATE = (
    "SELECT pg_last_wal_replay_lsn()::text,"
    " extract(epoch FROM now() - coalesce(pg_last_xact_replay_timestamp(),"
    " pg_postmaster_start_time()))::float8"
)


def replica_name(url: str) -> str:
    """How logs and metrics name a replica: host, port and database, never the password."""
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


class Replica:
    """One replica's pool and what the last check found."""

    def __init__(self, name: str, database: PostgresDatabase) -> None:
        self.name = name
        self.database = database
        self.in_rotation = False
        # The highest WAL position it is known to have replayed (checks and waits raise it).
        self.replayed = 0
        self.lag_seconds: float | None = None
        self.reads = READS.labels(name)
        self._lag_gauge = LAG_SECONDS.labels(name)
        self._rotation_gauge = IN_ROTATION.labels(name)
        self._rotation_gauge.set(0)

    def record(self, *, in_rotation: bool, lag_seconds: float | None) -> None:
        if in_rotation != self.in_rotation:
            logger.info(
                "replica %s %s (lag %s s)",
                self.name,
                "back in rotation" if in_rotation else "out of rotation",
                "unknown" if lag_seconds is None else f"{lag_seconds:.3f}",
            )
        self.in_rotation = in_rotation
        self.lag_seconds = lag_seconds
        self._lag_gauge.set(-1 if lag_seconds is None else lag_seconds)
        self._rotation_gauge.set(1 if in_rotation else 0)


class ReplicaSet:
    """The process's replicas, round robin over those in rotation."""

    def __init__(self, replicas: list[Replica], *, max_lag_seconds: float) -> None:
        self.replicas = replicas
        self.max_lag_seconds = max_lag_seconds
        self._rotation: list[Replica] = []
        self._turn = 0

    @classmethod
    async def open(cls, settings: Settings) -> ReplicaSet:
        """A pool per replica (each sized as the primary's), connecting lazily."""
        replicas = []
        for url in settings.replica_url_list:
            replica_settings = settings.model_copy(update={"database_url": SecretStr(url)})
            database = await PostgresDatabase.open(replica_settings)
            replicas.append(Replica(replica_name(url), database))
        return cls(replicas, max_lag_seconds=settings.replica_max_lag_seconds)

    def next_in_rotation(self) -> Replica | None:
        rotation = self._rotation
        if not rotation:
            return None
        self._turn = turn = (self._turn + 1) % len(rotation)
        return rotation[turn]

    def take_out(self, replica: Replica) -> None:
        """Out of rotation now (a request found it unusable); the next check may put it back."""
        replica.record(in_rotation=False, lag_seconds=None)
        self._rotation = [member for member in self.replicas if member.in_rotation]

    async def check_once(self, primary: PostgresDatabase) -> None:
        """Check every replica once, then rebuild the rotation."""
        primary_position = await _primary_position(primary)
        for replica in self.replicas:
            lag = await self._lag(replica, primary_position)
            replica.record(
                in_rotation=lag is not None and lag <= self.max_lag_seconds, lag_seconds=lag
            )
        self._rotation = [replica for replica in self.replicas if replica.in_rotation]

    async def _lag(self, replica: Replica, primary_position: int | None) -> float | None:
        """Seconds behind the primary; None when unreachable or not a replica."""
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS):
                connection = await replica.database.connect(write=False)
                try:
                    row = await connection.fetch_row(_REPLICA_STATE)
                finally:
                    await replica.database.release(connection)
        except (DatabaseError, TimeoutError) as error:
            logger.debug("replica %s unreachable: %s", replica.name, error)
            # Its pooled connections are likely dead too: replaced on the next checkout.
            await replica.database.pool.expire()
            return None
        replayed = parse_position(row[0])
        if replayed is None:
            logger.warning("replica %s is not replaying WAL (promoted?)", replica.name)
            return None
        replica.replayed = max(replica.replayed, replayed)
        if primary_position is not None and replayed >= primary_position:
            return 0.0
        return max(0.0, float(row[1]))

    async def run_checks(self, primary: PostgresDatabase, interval_seconds: float) -> None:
        """Check every ``interval_seconds`` until cancelled (a task of the app's lifespan)."""
        while True:
            try:
                await self.check_once(primary)
            except Exception:  # a check must never end the loop
                logger.exception("replica check failed")
            await asyncio.sleep(interval_seconds)

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.database.close()


async def _primary_position(primary: PostgresDatabase) -> int | None:
    with contextlib.suppress(DatabaseError, TimeoutError):
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS):
            connection = await primary.connect(write=False)
            try:
                return parse_position(await connection.fetch_value(_PRIMARY_POSITION))
            finally:
                await primary.release(connection)
    return None
