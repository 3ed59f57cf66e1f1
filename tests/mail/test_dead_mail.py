"""Dead mail: its body is kept until it is retried or purged by age, ``bookshelf mail list``
shows the undelivered messages without their bodies, and ``bookshelf mail retry`` sends a dead
one again. On both databases, with a real SMTP server (and a port where none listens)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.db.types import utc_now
from bookshelf.mail.backlog import OutboxMessage
from bookshelf.mail.models import mail_outbox
from bookshelf.retention import DEAD_MAIL_KEPT, purge_expired
from tests.cli_support import assert_ok, assert_refused, bookshelf, table
from tests.factories import register
from tests.mail.support import SmtpServer, drain, enqueue, outbox, token_in, worker_for
from tests.ops.support import http
from tests.servers import free_port

pytestmark = pytest.mark.usefixtures("clean_environment")

VERIFY = "/api/v1/auth/verify-email"


async def kill_every_due_message(app: FastAPI) -> int:
    """One attempt each, to a port where no SMTP server listens: every due message dies."""
    return await drain(worker_for(app, f"smtp://127.0.0.1:{free_port()}", max_attempts=1))


async def set_status(engine: AsyncEngine, message_id: uuid.UUID, **values: object) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(mail_outbox).where(mail_outbox.c.id == message_id).values(**values)
        )


async def test_a_dead_verification_mail_is_listed_without_its_link_retried_and_works(
    app: FastAPI, database_url: str, engine: AsyncEngine, smtp: SmtpServer
) -> None:
    email = f"late-{uuid.uuid4().hex[:8]}@example.org"
    async with http(app) as client:
        assert (await register(client, email=email)).status_code == 202
    assert await kill_every_due_message(app) == 1
    [dead] = await outbox(engine)
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert dead.dead_at is not None
    assert "/verify-email?token=" in dead.body  # kept for a retry
    token = dead.body.split("token=")[1].split()[0]

    shown = await bookshelf(database_url, "mail", "list", "--dead")
    as_json = await bookshelf(database_url, "mail", "list", "--dead", "--json")

    rows = table(assert_ok(shown))
    assert rows[0] == [
        "id", "status", "kind", "recipient", "attempts", "created", "died", "last error"
    ]  # fmt: skip
    assert rows[1][:5] == [str(dead.id), "dead", dead.kind, email, "1"]
    page = json.loads(assert_ok(as_json))
    assert [item["id"] for item in page["items"]] == [str(dead.id)]
    assert set(page["items"][0]) == set(OutboxMessage.model_fields)
    for output in (shown.stdout, as_json.stdout):
        assert token not in output
        assert "token" not in output

    retried = await bookshelf(database_url, "mail", "retry", str(dead.id), "--json")

    assert json.loads(assert_ok(retried))["status"] == "pending"
    [pending] = await outbox(engine)
    assert (pending.status, pending.attempts, pending.dead_at) == ("pending", 0, None)
    assert pending.body == dead.body
    assert await drain(worker_for(app, smtp.url)) == 1
    [delivered] = smtp.recorder.to(email)
    assert token_in(delivered, "verify-email") == token
    async with http(app) as client:
        assert (await client.post(VERIFY, json={"token": token})).status_code == 204
    [sent] = await outbox(engine)
    assert (sent.status, sent.body) == ("sent", None)


async def test_list_shows_undelivered_messages_oldest_first_and_dead_only_with_dead(
    app: FastAPI, database_url: str, engine: AsyncEngine
) -> None:
    await enqueue(engine, 4)
    ids = [row.id for row in await outbox(engine)]
    await set_status(engine, ids[0], status="sent", sent_at=utc_now(), body=None)
    await set_status(engine, ids[1], status="dead", dead_at=utc_now())

    everything = json.loads(assert_ok(await bookshelf(database_url, "mail", "list", "--json")))
    dead_only = json.loads(
        assert_ok(await bookshelf(database_url, "mail", "list", "--dead", "--json"))
    )
    first = json.loads(
        assert_ok(await bookshelf(database_url, "mail", "list", "--limit", "2", "--json"))
    )
    cursor = first["next_cursor"]
    rest = json.loads(
        assert_ok(
            await bookshelf(
                database_url, "mail", "list", "--limit", "2", "--cursor", cursor, "--json"
            )
        )
    )

    expected = [str(message_id) for message_id in ids[1:]]
    assert [item["id"] for item in everything["items"]] == expected
    assert [item["status"] for item in everything["items"]] == ["dead", "pending", "pending"]
    assert [item["id"] for item in dead_only["items"]] == [str(ids[1])]
    assert [item["id"] for item in first["items"] + rest["items"]] == expected
    assert rest["next_cursor"] is None


async def test_the_table_escapes_control_characters_from_a_mail_server(
    app: FastAPI, database_url: str, engine: AsyncEngine
) -> None:
    """A hostile server's reply is shown, never acted on by the operator's terminal."""
    await enqueue(engine, 1)
    [message] = await outbox(engine)
    reply = "550 \x1b[2J\x1b]0;owned\x07 no\u202eway"
    await set_status(engine, message.id, status="dead", dead_at=utc_now(), last_error=reply)

    shown = assert_ok(await bookshelf(database_url, "mail", "list", "--dead"))
    as_json = assert_ok(await bookshelf(database_url, "mail", "list", "--dead", "--json"))

    assert table(shown)[1][7] == "550 \\x1b[2J\\x1b]0;owned\\x07 no\\u202eway"
    assert json.loads(as_json)["items"][0]["last_error"] == reply
    for output in (shown, as_json):
        assert not any(char in output for char in "\x1b\x07\u202e")


@pytest.mark.parametrize("status", ["pending", "sending", "sent"])
async def test_retry_refuses_a_message_that_is_not_dead(
    app: FastAPI, database_url: str, engine: AsyncEngine, status: str
) -> None:
    await enqueue(engine, 1)
    [message] = await outbox(engine)
    await set_status(engine, message.id, status=status)

    result = await bookshelf(database_url, "mail", "retry", str(message.id))

    assert_refused(
        result,
        f"Message {message.id} is {status}, not dead: only a dead message is sent again on "
        "demand (the worker retries the others by itself).",
    )
    [unchanged] = await outbox(engine)
    assert unchanged.status == status


@pytest.mark.parametrize("given", ["unknown", "malformed"])
async def test_retry_refuses_an_unknown_id(database_url: str, given: str) -> None:
    message_id = str(uuid.uuid4()) if given == "unknown" else "12345"

    result = await bookshelf(database_url, "mail", "retry", message_id)

    assert_refused(result, f"No message in the outbox has the id {message_id!r}.")


async def test_retry_refuses_a_message_that_died_without_its_body(
    app: FastAPI, database_url: str, engine: AsyncEngine
) -> None:
    """Dead before dead messages kept their body (migration 0007): nothing to send."""
    await enqueue(engine, 1)
    [message] = await outbox(engine)
    await set_status(engine, message.id, status="dead", dead_at=utc_now(), body=None)

    result = await bookshelf(database_url, "mail", "retry", str(message.id))

    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"bookshelf: Message {message.id} died before dead messages kept")
    assert (await outbox(engine))[0].status == "dead"


async def test_dead_mail_is_purged_a_while_after_it_died_and_a_retried_one_is_not(
    app: FastAPI, engine: AsyncEngine
) -> None:
    await enqueue(engine, 3)
    ids = [row.id for row in await outbox(engine)]
    long_ago = utc_now() - DEAD_MAIL_KEPT - timedelta(minutes=1)
    await set_status(engine, ids[0], status="dead", dead_at=long_ago)
    await set_status(engine, ids[1], status="dead", dead_at=utc_now() - timedelta(days=1))
    await set_status(engine, ids[2], created_at=long_ago)  # pending: old, but not dead

    report = await purge_expired(app.state.database)

    assert report.deleted["mail_outbox"] == 1
    left = {row.id: (row.status, row.body) for row in await outbox(engine)}
    assert left == {ids[1]: ("dead", "Body 1"), ids[2]: ("pending", "Body 2")}
