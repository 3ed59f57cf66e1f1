"""Without an SMTP server mails are written to the log. Development shows their links, so a
newcomer can verify an account without a mail server (the README's tour, step
2); anywhere else the log line carries no token, and production uses the log only when
told, by a setting that says it is unsafe."""

from __future__ import annotations

import json
import re
import secrets

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from bookshelf.config import Settings
from bookshelf.db.database import unit_of_work
from bookshelf.mail.models import mail_outbox
from bookshelf.mail.worker import MailWorker
from bookshelf.ops.logging import MAIL_LOG, MASK
from tests.conftest import make_settings
from tests.factories import register
from tests.mail.conftest import PUBLIC_URL
from tests.ops.support import http, logging_as_served, started

VERIFY = "/api/v1/auth/verify-email"
LINK = re.compile(re.escape(PUBLIC_URL) + r"/verify-email\?token=([^\s\\\"]+)")


def production(database_url: str) -> Settings:
    """As an operator would run it without a mail server: every production rule holds."""
    return make_settings(
        database_url,
        environment="production",
        jwt_secret=secrets.token_urlsafe(48),
        allowed_hosts="testserver",
        public_url=PUBLIC_URL,
        mail_to_log_unsafe=True,
        rate_limit_disabled_acknowledged=True,
    )


async def the_link_token(app: FastAPI) -> str:
    """The token of the link in the one queued mail, read from the outbox before delivery."""
    async with unit_of_work(app.state.database, write=False) as connection:
        body = await connection.scalar(select(mail_outbox.c.body))
    match = LINK.search(body)
    assert match is not None, body
    return match.group(1)


@pytest.mark.parametrize("environment", ["production", "test"])
async def test_outside_development_the_logged_mail_carries_no_token(
    database_url: str, capsys: pytest.CaptureFixture[str], environment: str
) -> None:
    settings = (
        production(database_url)
        if environment == "production"
        else make_settings(database_url, public_url=PUBLIC_URL, json_logs=True)
    )
    with logging_as_served(settings):
        async with started(settings) as app, http(app) as client:
            assert (await register(client, email="ada@example.org")).status_code == 202
            token = await the_link_token(app)
            capsys.readouterr()
            assert await MailWorker.from_settings(app.state.database, settings).deliver_one()
    logged = capsys.readouterr().err

    [event] = [
        json.loads(line) for line in logged.splitlines() if "mail written to the log" in line
    ]
    assert token not in logged
    assert LINK.findall(logged) == [MASK]
    assert "ada@example.org" in event["event"]
    assert f"{PUBLIC_URL}/verify-email?token={MASK}" in event["event"]
    assert event["logger"] == MAIL_LOG


async def test_development_logs_the_link_and_it_verifies_the_account(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url, environment="development", public_url=PUBLIC_URL)
    with logging_as_served(settings):
        async with started(settings) as app, http(app) as client:
            assert (await register(client, email="grace@example.org")).status_code == 202
            capsys.readouterr()
            assert await MailWorker.from_settings(app.state.database, settings).deliver_one()
            logged = capsys.readouterr().err
            found = LINK.search(logged)
            assert found is not None, logged
            verified = await client.post(VERIFY, json={"token": found.group(1)})

    assert verified.status_code == 204, verified.text
