"""With BOOKSHELF_INPROCESS_WORKER (the SQLite default) the serving process delivers the
outbox itself: a registration's mail arrives with nobody running ``bookshelf worker``. And
the outbox's series are on /metrics."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from bookshelf.config import Settings
from tests.factories import register
from tests.mail.support import SmtpServer, token_in, wait_until
from tests.ops.support import http, sample, started

VERIFY = "/api/v1/auth/verify-email"


async def test_the_serving_process_delivers_its_outbox(
    settings: Settings, smtp: SmtpServer
) -> None:
    serving = settings.model_copy(
        update={
            "inprocess_worker": True,
            "smtp_url": SecretStr(smtp.url),
            "mail_poll_interval_seconds": 0.05,
        }
    )
    async with started(serving) as app, http(app) as client:
        assert (await register(client, email="auto@example.org")).status_code == 202
        await asyncio.to_thread(wait_until, lambda: smtp.recorder.to("auto@example.org"), 20)
        [mail] = smtp.recorder.to("auto@example.org")
        verified = await client.post(VERIFY, json={"token": token_in(mail, "verify-email")})
        await asyncio.sleep(0.3)  # an idle poll refreshes the outbox gauges
        exposition = (await client.get("/metrics")).text

    assert verified.status_code == 204, verified.text
    assert sample(exposition, "bookshelf_mail_sent_total") >= 1
    assert sample(exposition, "bookshelf_mail_outbox_unsent") == 0
    for series in ("bookshelf_mail_retried_total", "bookshelf_mail_dead_total"):
        assert series in exposition
    assert "bookshelf_mail_oldest_unsent_age_seconds" in exposition


def test_the_worker_runs_in_process_by_default_on_sqlite_only() -> None:
    assert Settings(database_url="sqlite:///x.db").runs_inprocess_worker is True  # type: ignore[arg-type]
    assert Settings(database_url="postgresql://u@h/db").runs_inprocess_worker is False  # type: ignore[arg-type]
