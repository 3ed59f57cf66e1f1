"""Which server a read request runs on, and read-your-writes (docs/replicas.md).

Only requests that cannot write are routed (``db.connections.get_connection``: GET, HEAD,
OPTIONS); every write, and so every read inside a write's transaction, runs on the primary.
A read goes to the next replica in rotation (``db.replicas``), except:

- a read presenting a WAL position (the ``Bookshelf-Read-After`` header, or the cookie of the
  same name the web app gets) runs on the replica once it has replayed that position, waiting at
  most ``BOOKSHELF_REPLICA_WAIT_MS``, else on the primary;
- a signed-in client (its ``Authorization`` header or session cookie) that wrote through this
  process within ``BOOKSHELF_REPLICA_STICKY_SECONDS``, or whose token was issued within that
  window (a sign-in or refresh just wrote its session), reads from the primary. The memory of
  writers is per process: behind a load balancer with several instances, the position (which the
  typed client sends back by itself, and the browser's cookie carries) is what holds across them;
- with no replica in rotation, or when the chosen one cannot give a usable connection, the
  primary serves the read (and that replica leaves the rotation until its next good check).

After a committed write, ``ReadAfterMiddleware`` adds the position to the response: the header,
and, for a browser (a request with cookies, or a response setting one), the cookie.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic_core import from_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookshelf.config import Settings
from bookshelf.db.database import Connection, Database
from bookshelf.db.exceptions import DatabaseError
from bookshelf.db.positions import COMMIT_POSITION, parse_position
from bookshelf.db.postgres import PostgresConnection, PostgresDatabase
from bookshelf.db.replicas import PRIMARY_READS, Replica, ReplicaSet

logger = logging.getLogger("bookshelf.db")

HEADER_NAME = "Bookshelf-Read-After"
_HEADER = HEADER_NAME.lower().encode("ascii")
_COOKIE = "bookshelf_read_after"
_REPLAYED = "SELECT pg_last_wal_replay_lsn()::text"
_JWT_PARTS = 3
_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# How often a read waiting for its position asks the replica again.
_POLL_SECONDS = 0.005
# Past this many remembered writers, those outside the window are forgotten.
_SWEEP_AT = 10_000


class RecentWriters:
    """Who wrote through this process recently, keyed by their credential (token or cookie)."""

    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._wrote: dict[bytes, float] = {}

    def wrote(self, key: bytes) -> None:
        now = time.monotonic()
        if len(self._wrote) >= _SWEEP_AT:
            self._wrote = {
                writer: at for writer, at in self._wrote.items() if now - at < self.window_seconds
            }
        self._wrote[key] = now

    def recently(self, key: bytes) -> bool:
        wrote_at = self._wrote.get(key)
        return wrote_at is not None and time.monotonic() - wrote_at < self.window_seconds


class ReadRouter:
    """The process's read routing: made with the app, given its databases by the lifespan."""

    def __init__(
        self,
        *,
        session_cookie: str,
        secure_cookies: bool,
        wait_seconds: float,
        sticky_seconds: float,
        cookie_seconds: int,
    ) -> None:
        self.session_cookie = session_cookie.encode("latin-1")
        self.cookie_name = ("__Host-" if secure_cookies else "") + _COOKIE
        self._cookie_key = self.cookie_name.encode("latin-1")
        self._cookie_attributes = f"; Max-Age={cookie_seconds}; Path=/; HttpOnly; SameSite=Lax" + (
            "; Secure" if secure_cookies else ""
        )
        self.wait_seconds = wait_seconds
        self.writers = RecentWriters(sticky_seconds)
        self.primary: PostgresDatabase | None = None
        self.replicas: ReplicaSet | None = None

    def attach(self, primary: PostgresDatabase, replicas: ReplicaSet) -> None:
        self.primary, self.replicas = primary, replicas

    async def connect_for_read(self, scope: Scope) -> tuple[Database, Connection]:
        """A read-only connection on the server that should serve this request."""
        primary, replicas = self.primary, self.replicas
        if primary is None or replicas is None:
            raise RuntimeError("the replicas are started by the app's lifespan")
        replica = replicas.next_in_rotation()
        if replica is not None:
            wanted, writer = self._hints(scope["headers"])
            if writer is None or not (self.writers.recently(writer) or self._fresh(writer)):
                connection = await self._replica_connection(replica, wanted)
                if connection is not None:
                    replica.reads.inc()
                    return replica.database, connection
        PRIMARY_READS.inc()
        return primary, await primary.connect(write=False)

    def _hints(self, headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bytes | None]:
        """The position the request must see (if any) and its credential (if signed in)."""
        wanted: int | None = None
        writer: bytes | None = None
        for name, value in headers:
            if name == _HEADER:
                wanted = _later(wanted, parse_position(value.decode("latin-1")))
            elif name == b"authorization":
                writer = value
            elif name == b"cookie":
                for pair in value.split(b";"):
                    key, _, cookie = pair.strip().partition(b"=")
                    if key == self.session_cookie:
                        writer = writer or cookie
                    elif key == self._cookie_key:
                        wanted = _later(wanted, parse_position(cookie.decode("latin-1")))
        return wanted, writer

    def _fresh(self, credential: bytes) -> bool:
        """A token issued within the sticky window: its session was just written (a sign-in,
        a refresh), perhaps not yet replayed, so its reads go to the primary."""
        issued = _issued_at(credential)
        return issued is not None and time.time() - issued < self.writers.window_seconds

    async def _replica_connection(
        self, replica: Replica, wanted: int | None
    ) -> PostgresConnection | None:
        """A connection on ``replica`` that has replayed ``wanted``, or None (use the primary)."""
        replicas = self.replicas
        if replicas is None:
            raise RuntimeError("the replicas are started by the app's lifespan")
        database = replica.database
        try:
            connection = await database.connect(write=False)
        except DatabaseError:
            replicas.take_out(replica)
            return None
        if connection.raw.is_closed():
            # The replica went away since this connection was pooled: the check will say when
            # it is back; meanwhile no request meets its dead connections.
            await database.release(connection)
            await database.pool.expire()
            replicas.take_out(replica)
            return None
        if wanted is None or replica.replayed >= wanted:
            return connection
        try:
            if await self._caught_up(replica, connection, wanted):
                return connection
        except DatabaseError:
            replicas.take_out(replica)
        await database.release(connection)
        return None

    async def _caught_up(
        self, replica: Replica, connection: PostgresConnection, wanted: int
    ) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while True:
            replayed = parse_position(await connection.fetch_value(_REPLAYED))
            if replayed is None:  # not replaying: promoted, or not a replica at all
                return False
            replica.replayed = max(replica.replayed, replayed)
            if replayed >= wanted:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(_POLL_SECONDS, remaining))

    def after_write(self, scope: Scope, position: str, response_headers: list[Any]) -> None:
        """Remember the writer; tell the client (and a browser's cookie) the position."""
        browser = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                self.writers.wrote(value)
            elif name == b"cookie":
                browser = True
                for pair in value.split(b";"):
                    key, _, cookie = pair.strip().partition(b"=")
                    if key == self.session_cookie:
                        self.writers.wrote(cookie)
        if not position:
            return
        encoded = position.encode("ascii")
        browser = browser or any(name.lower() == b"set-cookie" for name, _ in response_headers)
        response_headers.append((_HEADER, encoded))
        if browser:
            cookie = f"{self.cookie_name}={position}{self._cookie_attributes}"
            response_headers.append((b"set-cookie", cookie.encode("ascii")))


def _issued_at(credential: bytes) -> int | None:
    """The ``iat`` claim of a bearer token or session cookie, read without checking the
    signature: it only chooses the server (a forged one only sends a read to the primary); the
    token is verified, wherever the read runs, by the auth dependencies."""
    parts = credential.rpartition(b" ")[2].split(b".")
    if len(parts) != _JWT_PARTS:
        return None
    payload = parts[1]
    try:
        claims = from_json(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    except ValueError:
        return None
    issued = claims.get("iat") if isinstance(claims, dict) else None
    return issued if isinstance(issued, int) else None


def _later(current: int | None, position: int | None) -> int | None:
    if position is None:
        return current
    return position if current is None else max(current, position)


class ReadAfterMiddleware:
    """Gives each request a holder for its commit's position (``db.positions``) and puts the
    position on the response (``ReadRouter.after_write``). Installed only with replicas."""

    def __init__(self, app: ASGIApp, router: ReadRouter) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Requests that cannot write (db.connections) commit nothing to report.
        if scope["type"] != "http" or scope["method"] in _READ_ONLY_METHODS:
            await self.app(scope, receive, send)
            return
        holder: list[str | None] = [None]
        token = COMMIT_POSITION.set(holder)

        async def send_with_position(message: Message) -> None:
            position = holder[0]
            if message["type"] == "http.response.start" and position is not None:
                headers = list(message.get("headers", ()))
                self.router.after_write(scope, position, headers)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_position)
        finally:
            COMMIT_POSITION.reset(token)


def read_router(
    settings: Settings, *, session_cookie: str, secure_cookies: bool
) -> ReadRouter | None:
    """The app's router, or None when every read goes to the one database."""
    if settings.is_sqlite or not settings.replica_url_list:
        return None
    return ReadRouter(
        session_cookie=session_cookie,
        secure_cookies=secure_cookies,
        wait_seconds=settings.replica_wait_ms / 1000,
        sticky_seconds=settings.replica_sticky_seconds,
        # Past this, a replica in rotation has long replayed the position.
        cookie_seconds=int(settings.replica_max_lag_seconds + settings.replica_sticky_seconds) + 60,
    )


async def start_replicas(
    router: ReadRouter | None, primary: Database, settings: Settings
) -> Callable[[], Awaitable[None]] | None:
    """Open the replicas' pools, check them once, and keep checking them in the background;
    returns what stops it all (None without replicas)."""
    if router is None:
        if settings.is_sqlite and settings.replica_url_list:
            logger.warning("BOOKSHELF_DATABASE_REPLICA_URLS is ignored: SQLite has no replicas")
        return None
    assert isinstance(primary, PostgresDatabase)  # noqa: S101 (read_router: PostgreSQL only)
    replicas = await ReplicaSet.open(settings)
    router.attach(primary, replicas)
    await replicas.check_once(primary)
    checking = asyncio.create_task(replicas.run_checks(primary, settings.replica_check_seconds))

    async def stop() -> None:
        checking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checking
        await replicas.close()

    return stop
