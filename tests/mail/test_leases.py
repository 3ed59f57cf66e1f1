"""A claim holds its message only while its lease lasts: once the lease has expired another
worker may claim the message, and from then on the first worker's outcome (sent or failed)
changes nothing, and is logged and counted. One send ends within its total budget, which the
settings keep below the lease."""

from __future__ import annotations

import logging
from typing import Literal

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.config import Settings
from bookshelf.db.database import Database, unit_of_work
from bookshelf.mail import service as mail_service
from bookshelf.mail.exceptions import DeliveryFailed
from bookshelf.mail.service import OutgoingMail
from bookshelf.mail.worker import MailWorker, WorkerSettings
from tests.mail.support import counter, enqueue, make_due, outbox, smtp_server

Outcome = Literal["sent", "retry", "dead"]
STATUS_AFTER = {"sent": "sent", "retry": "pending", "dead": "dead"}


async def claim(database: Database, *, lease_seconds: int) -> OutgoingMail:
    async with unit_of_work(database, write=True) as connection:
        mail = await mail_service.claim_next(connection, lease_seconds=lease_seconds)
    assert mail is not None
    return mail


async def record(database: Database, mail: OutgoingMail, outcome: Outcome) -> object:
    async with unit_of_work(database, write=True) as connection:
        if outcome == "sent":
            return await mail_service.mark_sent(connection, mail)
        return await mail_service.mark_failed(
            connection,
            mail,
            error="SMTP 451: try again later",
            permanent=outcome == "dead",
            max_attempts=8,
            retry_base_seconds=30,
        )


@pytest.mark.parametrize("outcome", ["sent", "retry", "dead"])
async def test_an_expired_claim_cannot_overwrite_the_claim_that_replaced_it(
    app: FastAPI, engine: AsyncEngine, outcome: Outcome
) -> None:
    await enqueue(engine, 1)
    database = app.state.database
    first = await claim(database, lease_seconds=0)  # a lease that has run out at once
    second = await claim(database, lease_seconds=30)

    stale = await record(database, first, outcome)
    [held] = await outbox(engine)
    recorded = await record(database, second, outcome)
    [done] = await outbox(engine)

    assert second.id == first.id
    assert second.lease_id != first.lease_id
    assert stale in {False, "lease-lost"}
    assert (held.status, held.lease_id, held.attempts) == ("sending", second.lease_id, 2)
    assert (held.body, held.sent_at, held.last_error) == ("Body 0", None, None)
    assert recorded in {True, outcome}
    assert (done.status, done.lease_id) == (STATUS_AFTER[outcome], None)


async def test_a_claim_whose_lease_expired_unclaimed_still_records_its_outcome(
    app: FastAPI, engine: AsyncEngine
) -> None:
    """Nobody else took the message: the row is still this claim's, and sent it is."""
    await enqueue(engine, 1)
    late = await claim(app.state.database, lease_seconds=0)

    assert await record(app.state.database, late, "sent") is True
    [row] = await outbox(engine)
    assert (row.status, row.body) == ("sent", None)


class ReclaimedWhileSending:
    """A send that outlives the worker's lease: meanwhile a second worker claims the message.
    Then the send succeeds, or fails."""

    def __init__(self, database: Database, *, fails: bool) -> None:
        self.database = database
        self.fails = fails
        self.second: OutgoingMail | None = None

    async def send(self, mail: OutgoingMail) -> None:
        self.second = await claim(self.database, lease_seconds=30)
        if self.fails:
            raise DeliveryFailed("SMTP 451: try again later")


@pytest.mark.parametrize("fails", [False, True], ids=["delivered", "failed"])
async def test_a_worker_whose_send_outlived_its_lease_records_nothing_and_says_so(
    app: FastAPI, engine: AsyncEngine, caplog: pytest.LogCaptureFixture, fails: bool
) -> None:
    await enqueue(engine, 1)
    transport = ReclaimedWhileSending(app.state.database, fails=fails)
    worker = MailWorker(
        app.state.database,
        transport,
        WorkerSettings(
            lease_seconds=0, max_attempts=8, retry_base_seconds=30, poll_interval_seconds=1
        ),
    )
    lost = counter("bookshelf_mail_lease_lost_total")

    with caplog.at_level(logging.WARNING, logger="bookshelf.mail"):
        assert await worker.deliver_one() is True

    [row] = await outbox(engine)
    assert transport.second is not None
    assert (row.status, row.lease_id, row.body) == ("sending", transport.second.lease_id, "Body 0")
    assert counter("bookshelf_mail_lease_lost_total") - lost == 1
    assert any("was not recorded" in record.getMessage() for record in caplog.records)


async def test_one_send_ends_within_its_budget_though_each_command_is_answered_in_time(
    app: FastAPI, settings: Settings, engine: AsyncEngine
) -> None:
    """MAIL and RCPT each take 0.8 s, well inside the 3 s command timeout; together they
    overrun the send's 1.2 s budget, and the attempt is abandoned (retried later). With a
    budget that covers them, the same server accepts the message."""
    await enqueue(engine, 1)
    sending = settings.model_copy(
        update={
            "smtp_timeout_seconds": 3.0,
            "smtp_send_timeout_seconds": 1.2,
            "mail_retry_base_seconds": 3600,
        }
    )
    with smtp_server() as smtp:
        smtp.recorder.command_delay_seconds = 0.8
        configured = sending.model_copy(update={"smtp_url": SecretStr(smtp.url)})
        assert await MailWorker.from_settings(app.state.database, configured).deliver_one()
        [abandoned] = await outbox(engine)
        received_then = len(smtp.recorder.messages)

        roomy = configured.model_copy(update={"smtp_send_timeout_seconds": 10.0})
        await make_due(engine)
        assert await MailWorker.from_settings(app.state.database, roomy).deliver_one()
        received = len(smtp.recorder.messages)

    assert (abandoned.status, abandoned.attempts) == ("pending", 1)
    assert "BOOKSHELF_SMTP_SEND_TIMEOUT_SECONDS (1.2 s)" in abandoned.last_error
    assert received_then == 0
    assert received == 1
    [sent] = await outbox(engine)
    assert (sent.status, sent.attempts) == ("sent", 2)
