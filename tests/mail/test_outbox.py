"""The outbox's guarantees: written with the change or not at all, retried with backoff until
the SMTP server is back and then delivered once, dead after the limit (never dropped), never
sent twice by concurrent workers, and sent again when its worker died (at least once)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.config import Settings
from bookshelf.db.connections import open_database
from bookshelf.db.types import utc_now
from bookshelf.mail import service as mail_service
from bookshelf.mail.models import mail_outbox
from bookshelf.mail.service import backoff
from bookshelf.mail.transports import SmtpTransport
from bookshelf.mail.worker import MailWorker, WorkerSettings
from bookshelf.retention import purge_expired
from bookshelf.users.models import users
from tests.factories import count_rows, register
from tests.mail.support import (
    SENDER,
    counter,
    drain,
    enqueue,
    make_due,
    outbox,
    smtp_server,
    worker_for,
)
from tests.servers import free_port


async def test_a_request_that_fails_after_writing_its_mail_sends_nothing(
    app: FastAPI,
    anonymous_client: httpx.AsyncClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_enqueue = mail_service.enqueue

    async def enqueue_then_fail(*args: Any, **kwargs: Any) -> Any:
        await real_enqueue(*args, **kwargs)
        raise RuntimeError("the request fails after writing its mail")

    monkeypatch.setattr(mail_service, "enqueue", enqueue_then_fail)
    with smtp_server() as smtp:
        response = await register(anonymous_client, email="doomed@example.org")
        monkeypatch.undo()
        delivered = await drain(worker_for(app, smtp.url))

        assert response.status_code == 500
        assert delivered == 0
        assert smtp.recorder.messages == []
    assert await count_rows(engine, mail_outbox) == 0
    assert await count_rows(engine, users) == 0  # the account went with it


async def test_smtp_down_is_retried_with_backoff_then_delivered_exactly_once(
    app: FastAPI, anonymous_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    port = free_port()  # nothing listens there yet
    worker = worker_for(app, f"smtp://127.0.0.1:{port}", retry_base_seconds=60)
    retried = counter("bookshelf_mail_retried_total")
    await register(anonymous_client, email="patient@example.org")

    before = utc_now()
    assert await drain(worker) == 1
    [first] = await outbox(engine)
    await make_due(engine)
    assert await drain(worker) == 1
    [second] = await outbox(engine)

    assert (first.status, first.attempts) == ("pending", 1)
    assert first.next_attempt_at - before >= timedelta(seconds=60)
    assert (second.status, second.attempts) == ("pending", 2)
    assert second.next_attempt_at - before >= timedelta(seconds=120)  # doubled
    assert "ConnectionRefused" in second.last_error or "connect" in second.last_error.lower()
    assert await drain(worker) == 0  # not due yet: nothing is tried
    assert counter("bookshelf_mail_retried_total") - retried == 2

    with smtp_server(port) as smtp:
        await make_due(engine)
        assert await drain(worker) == 1
        await make_due(engine)
        assert await drain(worker) == 0
        assert len(smtp.recorder.to("patient@example.org")) == 1
    [sent] = await outbox(engine)
    assert (sent.status, sent.attempts, sent.body) == ("sent", 3, None)  # the token is gone


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n, 30).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(40, 30) == timedelta(hours=1)


async def test_after_the_last_attempt_a_message_is_dead_logged_and_counted(
    app: FastAPI, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await enqueue(engine, 1)
    worker = worker_for(app, f"smtp://127.0.0.1:{free_port()}", max_attempts=2)
    dead = counter("bookshelf_mail_dead_total")

    with caplog.at_level(logging.WARNING, logger="bookshelf.mail"):
        for _ in range(3):
            await make_due(engine)
            await drain(worker)
        await worker.refresh_metrics()

    [row] = await outbox(engine)
    assert (row.status, row.attempts) == ("dead", 2)
    assert counter("bookshelf_mail_dead_total") - dead == 1
    assert counter("bookshelf_mail_outbox_dead") == 1
    assert any("is dead" in record.getMessage() for record in caplog.records)


async def test_a_refused_recipient_is_dead_at_once(app: FastAPI, engine: AsyncEngine) -> None:
    await enqueue(engine, 1)
    with smtp_server() as smtp:
        smtp.recorder.refuse.add("reader-0@example.org")
        assert await drain(worker_for(app, smtp.url)) == 1
    [row] = await outbox(engine)
    assert (row.status, row.attempts) == ("dead", 1)
    assert "550" in row.last_error


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("attempt", range(3))
async def test_concurrent_workers_never_send_a_message_twice(
    settings: Settings, engine: AsyncEngine, attempt: int
) -> None:
    """Four workers, each with its own connection pool (as separate processes would have),
    drain 40 messages at once: each message arrives exactly once."""
    await enqueue(engine, 40)
    databases = [await open_database(settings) for _ in range(4)]
    try:
        with smtp_server() as smtp:
            workers = [
                MailWorker(
                    own_database,
                    SmtpTransport(
                        smtp.url, sender=SENDER, timeout_seconds=5, send_timeout_seconds=20
                    ),
                    WorkerSettings(
                        lease_seconds=30,
                        max_attempts=3,
                        retry_base_seconds=1,
                        poll_interval_seconds=0.05,
                    ),
                )
                for own_database in databases
            ]
            handled = await asyncio.gather(*(drain(worker) for worker in workers))
            ids = [message["Message-ID"] for message in smtp.recorder.messages]
    finally:
        for own_database in databases:
            await own_database.close()

    assert sum(handled) == 40
    assert len(ids) == 40
    assert len(set(ids)) == 40
    assert sum(1 for count in handled if count) >= 2  # the work was really shared
    rows = await outbox(engine)
    assert {row.status for row in rows} == {"sent"}


async def test_delivered_mail_is_purged_after_a_week_and_dead_mail_is_kept(
    app: FastAPI, engine: AsyncEngine
) -> None:
    await enqueue(engine, 4)
    old = utc_now() - timedelta(days=8)
    async with engine.begin() as connection:
        ids = list((await connection.execute(select(mail_outbox.c.id))).scalars())
        await connection.execute(
            update(mail_outbox).where(mail_outbox.c.id == ids[0]).values(status="sent", sent_at=old)
        )
        await connection.execute(
            update(mail_outbox)
            .where(mail_outbox.c.id == ids[1])
            .values(status="sent", sent_at=utc_now())
        )
        await connection.execute(
            update(mail_outbox).where(mail_outbox.c.id == ids[2]).values(status="dead", sent_at=old)
        )

    report = await purge_expired(app.state.database)

    assert report.deleted["mail_outbox"] == 1
    left = {row.id: row.status for row in await outbox(engine)}
    assert left == {ids[1]: "sent", ids[2]: "dead", ids[3]: "pending"}
