"""Reads on a real streaming replica (PostgreSQL only: the servers are started here, so these
run under SQLite's test run too, and fail rather than skip under CI=true without PostgreSQL's
binaries). Which server served a read is read from that server's statistics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from bookshelf_client import AuthenticatedClient
from bookshelf_client.api.books import create_book as create_book_call
from bookshelf_client.api.books import get_book
from bookshelf_client.models import Book, BookCreate
from fastapi import FastAPI

from bookshelf.config import Settings
from bookshelf.db.positions import parse_position
from bookshelf.db.replicas import Replica
from bookshelf.users.schemas import Role
from tests.conftest import make_settings
from tests.db.replication import (
    Replication,
    book_reads,
    pause_replay,
    replication,
    resume_replay,
    statements,
    wait_replayed,
)
from tests.factories import app_account
from tests.faults.pgbouncer import running_pgbouncer
from tests.ops.support import http, started

READ_AFTER = "Bookshelf-Read-After"


@pytest.fixture(scope="module")
def servers() -> Iterator[Replication]:
    with replication() as started_servers:
        yield started_servers


def replica_settings(servers: Replication, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_replica_urls": servers.replica.url(),
        "replica_check_seconds": 0.2,
        # Paused replay makes the replica fall behind: only the lag test lets that count.
        "replica_max_lag_seconds": 600,
        "replica_wait_ms": 300,
        "replica_sticky_seconds": 1.5,
        **overrides,
    }
    return make_settings(servers.primary.url(), **values)


def the_replica(app: FastAPI) -> Replica:
    [replica] = app.state.read_router.replicas.replicas
    assert isinstance(replica, Replica)
    return replica


async def rotation_becomes(app: FastAPI, wanted: bool) -> None:
    """Until the background checks put the replica in (or out of) rotation: polled, as the
    checks signal nothing."""
    for _ in range(200):
        if the_replica(app).in_rotation is wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"in_rotation did not become {wanted} in 10 s")


async def reads_served(client: httpx.AsyncClient, server: str) -> float:
    """The app's count of reads routed to ``server`` (its metrics endpoint)."""
    metrics = (await client.get("/metrics")).text
    sample = f'bookshelf_replica_reads_total{{server="{server}"}} '
    return float(metrics.split(sample, 1)[1].split()[0])


async def create_book(writer: httpx.AsyncClient, **headers: str) -> tuple[str, str]:
    """A new book's id, and the position its response says to read after."""
    word = "replicated" + uuid.uuid4().hex[:8]
    response = await writer.post(
        "/api/v1/books", json={"title": f"A {word} book", "authors": ["R. Eplica"]}, headers=headers
    )
    assert response.status_code == 201, response.text
    position = response.headers[READ_AFTER]
    assert parse_position(position) is not None, position
    return str(response.json()["id"]), position


async def test_anonymous_reads_are_served_by_the_replica(servers: Replication) -> None:
    # One check at start-up and no more: the checks' own statements would count on the primary.
    settings = replica_settings(servers, replica_check_seconds=300)
    async with started(settings) as app, http(app) as anonymous:
        admin = await app_account(app, Role.ADMIN)
        async with http(app, headers=admin.headers) as writer:
            book_id, _ = await create_book(writer)
        await wait_replayed(servers.primary, servers.replica)
        replica_before = await statements(servers.replica)
        primary_before = await statements(servers.primary)
        served_before = await reads_served(anonymous, the_replica(app).name)
        paths = [f"/api/v1/books/{book_id}"] * 10 + [
            "/api/v1/books",
            "/api/v1/books?q=replicated",
            f"/api/v1/books/{book_id}/reviews",
            f"/books/{book_id}",
            "/",
        ]
        for path in paths:
            response = await anonymous.get(path)
            assert response.status_code == 200, (path, response.text)
            assert READ_AFTER not in response.headers
        replica_after = await statements(servers.replica)
        primary_after = await statements(servers.primary)
        assert await reads_served(anonymous, the_replica(app).name) - served_before == len(paths)
    assert replica_after - replica_before >= len(paths)
    assert primary_after - primary_before == 0


async def test_a_writer_reads_its_write_while_replay_is_paused(servers: Replication) -> None:
    async with started(replica_settings(servers)) as app, http(app) as anonymous:
        writer_headers = (await app_account(app, Role.ADMIN)).headers
        reader_headers = (await app_account(app, Role.READER)).headers
        # Tokens older than the window: only a write makes the writer's reads go to the primary.
        await asyncio.sleep(1.6)
        await wait_replayed(servers.primary, servers.replica)
        await rotation_becomes(app, True)
        await pause_replay(servers.replica)
        try:
            async with (
                http(app, headers=writer_headers) as writer,
                http(app, headers=reader_headers) as reader,
            ):
                book_id, position = await create_book(writer)
                path = f"/api/v1/books/{book_id}"
                # Within its sticky window the writer reads from the primary, with no header.
                assert (await writer.get(path)).status_code == 200
                # Everyone else reads from the paused replica, which has not seen the book.
                assert (await anonymous.get(path)).status_code == 404
                assert (await reader.get(path)).status_code == 404
                # The position makes the replica wait for it (300 ms), then the primary answer.
                began = time.monotonic()
                assert (
                    await anonymous.get(path, headers={READ_AFTER: position})
                ).status_code == 200
                assert time.monotonic() - began >= 0.3
                # The web app's cookie carries it as well.
                with_cookie = await anonymous.get(
                    path, headers={"Cookie": f"{app.state.read_router.cookie_name}={position}"}
                )
                assert with_cookie.status_code == 200
                # A position that is not one is no hint: the replica serves the read.
                assert (await anonymous.get(path, headers={READ_AFTER: "x/y"})).status_code == 404
                # Past the window, the writer's reads go to the replica again.
                await asyncio.sleep(1.6)
                assert (await writer.get(path)).status_code == 404
        finally:
            await resume_replay(servers.replica)


async def test_a_token_just_issued_reads_its_session_from_the_primary(
    servers: Replication,
) -> None:
    async with started(replica_settings(servers, replica_sticky_seconds=1.5)) as app:
        account = await app_account(app, Role.READER)
        await wait_replayed(servers.primary, servers.replica)
        await rotation_becomes(app, True)
        await pause_replay(servers.replica)
        try:
            async with http(app) as client:
                signed_in = await client.post(
                    "/api/v1/auth/token",
                    data={"username": account.email, "password": account.password},
                )
                assert signed_in.status_code == 200, signed_in.text
                token = signed_in.json()["access_token"]
                # Its session is on the primary only; the new token reads it there.
                me = await client.get(
                    "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
                )
                assert me.status_code == 200, me.text
                # The replica would not know the session (what the window guards against).
                await asyncio.sleep(1.6)
                stale = await client.get(
                    "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
                )
                assert stale.status_code == 401
        finally:
            await resume_replay(servers.replica)


async def test_a_read_with_a_position_waits_for_the_replica_to_replay_it(
    servers: Replication,
) -> None:
    settings = replica_settings(servers, replica_wait_ms=5000, replica_check_seconds=300)
    async with started(settings) as app, http(app) as anonymous:
        admin = await app_account(app, Role.ADMIN)
        await wait_replayed(servers.primary, servers.replica)
        await pause_replay(servers.replica)
        try:
            async with http(app, headers=admin.headers) as writer:
                book_id, position = await create_book(writer)
            replica_before = await statements(servers.replica)
            primary_before = await statements(servers.primary)
            read = asyncio.create_task(
                anonymous.get(f"/api/v1/books/{book_id}", headers={READ_AFTER: position})
            )
            await asyncio.sleep(0.5)
            assert not read.done()  # waiting for the replica
        finally:
            await resume_replay(servers.replica)
        response = await read
        assert response.status_code == 200
        replica_after = await statements(servers.replica)
        primary_after = await statements(servers.primary)
    assert replica_after > replica_before
    assert primary_after == primary_before


async def test_a_write_from_a_browser_sets_the_position_cookie(servers: Replication) -> None:
    async with started(replica_settings(servers)) as app:
        admin = await app_account(app, Role.ADMIN)
        async with http(app, headers=admin.headers) as writer:
            writer.cookies.set("bookshelf_csrf", "a-visit")
            book_id, position = await create_book(writer)
            # Outside development, a __Host- cookie, as the session's.
            assert app.state.read_router.cookie_name == "__Host-bookshelf_read_after"
            assert writer.cookies.get("__Host-bookshelf_read_after") == position
            read = await writer.get(f"/api/v1/books/{book_id}")
    assert read.status_code == 200
    assert READ_AFTER not in read.headers  # reads report no position


async def test_a_stopped_replica_sends_reads_to_the_primary_until_it_is_back(
    servers: Replication,
) -> None:
    async with started(replica_settings(servers)) as app, http(app) as anonymous:
        async with http(app, headers=(await app_account(app, Role.ADMIN)).headers) as writer:
            book_id, _ = await create_book(writer)
        path = f"/api/v1/books/{book_id}"
        await wait_replayed(servers.primary, servers.replica)
        await rotation_becomes(app, True)
        assert (await anonymous.get(path)).status_code == 200  # a pooled replica connection
        await asyncio.to_thread(servers.replica.stop, "fast")
        try:
            primary_before = await book_reads(servers.primary)
            for _ in range(10):
                response = await anonymous.get(path)
                assert response.status_code == 200, response.text
            assert await book_reads(servers.primary) - primary_before == 10
            await rotation_becomes(app, False)
            assert (await anonymous.get("/health/ready")).status_code == 200
            metrics = (await anonymous.get("/metrics")).text
            name = the_replica(app).name
            assert f'bookshelf_replica_in_rotation{{replica="{name}"}} 0.0' in metrics
        finally:
            await asyncio.to_thread(servers.replica.start)
        await rotation_becomes(app, True)
        replica_before = await statements(servers.replica)
        for _ in range(5):
            assert (await anonymous.get(path)).status_code == 200
        replica_after = await statements(servers.replica)
    assert replica_after - replica_before >= 5


async def test_a_replica_behind_by_more_than_the_limit_leaves_the_rotation(
    servers: Replication,
) -> None:
    settings = replica_settings(servers, replica_max_lag_seconds=1)
    async with started(settings) as app, http(app) as anonymous:
        admin = await app_account(app, Role.ADMIN)
        await wait_replayed(servers.primary, servers.replica)
        await rotation_becomes(app, True)
        await pause_replay(servers.replica)
        try:
            async with http(app, headers=admin.headers) as writer:
                book_id, _ = await create_book(writer)
            await rotation_becomes(app, False)
            lag = the_replica(app).lag_seconds
            assert lag is not None
            assert lag > 1
            # Out of rotation, the replica that lacks the book serves nobody.
            assert (await anonymous.get(f"/api/v1/books/{book_id}")).status_code == 200
        finally:
            await resume_replay(servers.replica)
        await rotation_becomes(app, True)
        assert the_replica(app).lag_seconds == 0


async def test_routing_through_pgbouncer_in_transaction_mode(servers: Replication) -> None:
    with running_pgbouncer(servers.primary, {"bookshelf_replica": servers.replica}) as bouncer:
        settings = make_settings(
            bouncer.url(),
            database_replica_urls=bouncer.url("bookshelf_replica"),
            database_statement_cache=False,
            database_statement_timeout_ms=0,
            replica_check_seconds=300,
            replica_max_lag_seconds=600,
            replica_wait_ms=200,
        )
        async with started(settings) as app:
            admin = await app_account(app, Role.ADMIN)
            async with http(app) as anonymous, http(app, headers=admin.headers) as writer:
                book_id, _ = await create_book(writer)
                await wait_replayed(servers.primary, servers.replica)
                replica_before = await statements(servers.replica)
                for _ in range(5):
                    assert (await anonymous.get(f"/api/v1/books/{book_id}")).status_code == 200
                replica_after = await statements(servers.replica)
                assert replica_after - replica_before >= 5
                await pause_replay(servers.replica)
                try:
                    paused_id, position = await create_book(writer)
                    path = f"/api/v1/books/{paused_id}"
                    assert (await anonymous.get(path)).status_code == 404
                    assert (
                        await anonymous.get(path, headers={READ_AFTER: position})
                    ).status_code == (200)
                    assert (await writer.get(path)).status_code == 200
                finally:
                    await resume_replay(servers.replica)


def read_your_writes_hooks() -> dict[str, list[Callable[[Any], Awaitable[None]]]]:
    """The httpx event hooks docs/replicas.md gives typed-client users: keep the latest
    position a response gave, send it on every request."""
    latest: dict[str, str] = {}

    async def send_back(request: httpx.Request) -> None:
        if "position" in latest:
            request.headers[READ_AFTER] = latest["position"]

    async def remember(response: httpx.Response) -> None:
        position = response.headers.get(READ_AFTER)
        if position:
            latest["position"] = position

    return {"request": [send_back], "response": [remember]}


async def test_the_typed_client_reads_its_write_with_the_documented_hooks(
    servers: Replication,
) -> None:
    # No sticky window: only the position can send the writer's read to the primary.
    async with started(replica_settings(servers, replica_sticky_seconds=0)) as app:
        token = (await app_account(app, Role.ADMIN)).access_token
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50123))
        hooked = AuthenticatedClient(
            base_url="http://testserver",
            token=token,
            httpx_args={"transport": transport, "event_hooks": read_your_writes_hooks()},
        )
        plain = AuthenticatedClient(
            base_url="http://testserver", token=token, httpx_args={"transport": transport}
        )
        await wait_replayed(servers.primary, servers.replica)
        await rotation_becomes(app, True)
        await pause_replay(servers.replica)
        try:
            async with hooked, plain:
                created = await create_book_call.asyncio(
                    client=hooked, body=BookCreate(title="A hooked book", authors=["T. Yped"])
                )
                assert isinstance(created, Book)
                book_id = str(created.id)
                # Without the position, the paused replica answers: it lacks the book.
                assert (await get_book.asyncio_detailed(book_id, client=plain)).status_code == 404
                read = await get_book.asyncio(book_id, client=hooked)
                assert isinstance(read, Book)
                assert read.title == "A hooked book"
        finally:
            await resume_replay(servers.replica)
