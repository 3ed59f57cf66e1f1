"""``bookshelf worker`` as its own process: SIGTERM finishes the message in hand; a worker
killed mid-send leaves a lease that expires, and the message is sent again (at least once,
never lost). Bounded in time: every wait has a deadline."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.mail import service as mail_service
from bookshelf.mail.models import mail_outbox
from tests.mail.support import SmtpServer, drain, smtp_server, wait_until, worker_for
from tests.servers import BOOKSHELF, clean_environment

LEASE_SECONDS = 5


@contextmanager
def worker_process(
    database_url: str, smtp: SmtpServer, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = clean_environment(
        database_url=database_url,
        environment="test",
        smtp_url=smtp.url,
        smtp_timeout_seconds="4",
        smtp_send_timeout_seconds="4",
        mail_lease_seconds=str(LEASE_SECONDS),
        mail_poll_interval_seconds="0.1",
        json_logs="true",
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(BOOKSHELF), "worker"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def one_message(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await mail_service.enqueue(
            connection, kind="test", recipient="ada@example.org", subject="Hello", body="Body"
        )


async def the_row(engine: AsyncEngine) -> object:
    async with engine.connect() as connection:
        return (await connection.execute(select(mail_outbox))).one()


async def test_sigterm_finishes_the_message_in_hand(
    app: FastAPI, database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    await one_message(engine)
    with smtp_server() as smtp:
        smtp.recorder.stall_seconds = 1.5
        with worker_process(database_url, smtp, tmp_path / "worker.log") as process:
            wait_until(smtp.recorder.data_started.is_set, timeout=60)
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=20)
        assert code == 0, (tmp_path / "worker.log").read_text()
        assert len(smtp.recorder.to("ada@example.org")) == 1
    row = await the_row(engine)
    assert row.status == "sent"  # type: ignore[attr-defined]
    assert "mail worker ready" in (tmp_path / "worker.log").read_text()


async def test_a_worker_killed_mid_send_is_replaced_after_its_lease(
    app: FastAPI, database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    await one_message(engine)
    with smtp_server() as stalling:
        stalling.recorder.stall_seconds = 30
        with worker_process(database_url, stalling, tmp_path / "worker.log") as process:
            wait_until(stalling.recorder.data_started.is_set, timeout=60)
            process.kill()  # between sending and recording: the worst moment
            process.wait(timeout=10)
    claimed = await the_row(engine)

    with smtp_server() as smtp:
        worker = worker_for(app, smtp.url)
        too_early = await drain(worker)
        await asyncio.sleep(LEASE_SECONDS + 0.5)
        after_lease = await drain(worker)
        delivered = smtp.recorder.to("ada@example.org")

    assert claimed.status == "sending"  # type: ignore[attr-defined]
    assert too_early == 0  # the lease still holds
    assert after_lease == 1
    assert len(delivered) == 1
    row = await the_row(engine)
    assert (row.status, row.attempts) == ("sent", 2)  # type: ignore[attr-defined]
