"""The worker's liveness follows its delivery loop: ``/health/live`` stays 200 while the loop
turns (idle or delivering) and turns 503 once a hung send has kept it silent for longer than
one lease plus one poll interval; ``/metrics`` is still served beside it."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.mail.liveness import serve_probes
from bookshelf.mail.service import OutgoingMail
from bookshelf.mail.worker import MailWorker, WorkerSettings
from tests.mail.support import enqueue
from tests.servers import free_port

LEASE_SECONDS = 1
POLL_SECONDS = 0.05


class HangingTransport:
    """A send that never returns until released: a hang no timeout covers."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, mail: OutgoingMail) -> None:
        self.started.set()
        await self.release.wait()


async def live_status(client: httpx.AsyncClient) -> int:
    return (await client.get("/health/live")).status_code


async def test_a_hung_delivery_loop_fails_liveness_while_metrics_still_answer(
    app: FastAPI, engine: AsyncEngine
) -> None:
    transport = HangingTransport()
    config = WorkerSettings(
        lease_seconds=LEASE_SECONDS,
        max_attempts=3,
        retry_base_seconds=1,
        poll_interval_seconds=POLL_SECONDS,
    )
    worker = MailWorker(app.state.database, transport, config)
    port = free_port()
    server = serve_probes(worker.heartbeat, "127.0.0.1", port)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(worker.run(stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            # Idle for twice the stall limit: the polling loop keeps beating.
            deadline = time.monotonic() + 2 * config.stall_after_seconds
            while time.monotonic() < deadline:
                assert await live_status(client) == 200
                await asyncio.sleep(0.1)
            await enqueue(engine, 1)
            await asyncio.wait_for(transport.started.wait(), timeout=10)
            hung_at = time.monotonic()
            while await live_status(client) == 200:
                assert time.monotonic() - hung_at < config.stall_after_seconds + 5
                await asyncio.sleep(0.1)
            assert time.monotonic() - hung_at >= config.stall_after_seconds - 0.2
            stalled = await client.get("/health/live")
            assert stalled.status_code == 503
            assert stalled.json()["status"] == "stalled"
            assert stalled.json()["delivery_loop_silent_seconds"] > config.stall_after_seconds
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert "bookshelf_mail_sent_total" in metrics.text
            assert (await client.get("/elsewhere")).status_code == 404
            # Released, the loop beats again and liveness recovers.
            transport.release.set()
            recovered_by = time.monotonic() + 10
            while await live_status(client) != 200:
                assert time.monotonic() < recovered_by
                await asyncio.sleep(0.1)
    finally:
        transport.release.set()
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(loop_task, timeout=10)
        server.shutdown()
        server.server_close()
