"""Nobody can mail-bomb an address: the endpoints that cause mail have the strict per-address
budget, and each target address a budget of its own, whoever asks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from bookshelf.config import Settings
from bookshelf.db.database import Database
from bookshelf.mail.models import mail_outbox
from tests.factories import ME, app_account, assert_problem, count_rows
from tests.ops.support import http, random_address, started

RESET = "/api/v1/auth/password-reset"
RESEND = "/api/v1/auth/verify-email/resend"


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    limited = settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_auth": "3/minute",
            "rate_limit_mail_target": "2/hour",
        }
    )
    async with started(limited) as app:
        yield app


@pytest.mark.parametrize("path", [RESET, RESEND])
async def test_one_client_address_gets_the_strict_budget(limited_app: FastAPI, path: str) -> None:
    async with http(limited_app, address=random_address()) as client:
        answers = [await client.post(path, json={"email": f"n{n}@example.org"}) for n in range(4)]
    assert [a.status_code for a in answers[:3]] == [202] * 3
    problem = assert_problem(answers[3], 429, "rate-limited")
    assert "Retry-After" in answers[3].headers, problem


async def test_one_target_gets_its_budget_of_mails_from_any_number_of_clients(
    limited_app: FastAPI,
) -> None:
    engine: Database = limited_app.state.database
    account = await app_account(limited_app)
    answers = []
    for _ in range(5):  # each from a new client address: the address budgets never fill
        async with http(limited_app, address=random_address()) as client:
            answers.append(await client.post(RESET, json={"email": account.email}))

    assert [a.status_code for a in answers] == [202] * 5
    assert len({a.text for a in answers}) == 1  # spending the budget changes no answer
    assert await count_rows(engine, mail_outbox) == 2


async def test_email_changes_spend_the_target_addresses_budget(limited_app: FastAPI) -> None:
    """Accounts moving their address to one target, over and over: the target gets its
    budget of confirmation mails and no more, as from registrations and resets."""
    database: Database = limited_app.state.database
    target = "target@example.org"
    answers = []
    for _ in range(3):
        account = await app_account(limited_app)
        for _ in range(2):  # within the account's strict budget for password checks
            async with http(limited_app, address=random_address()) as client:
                answers.append(
                    await client.patch(
                        ME,
                        json={"email": target, "current_password": account.password},
                        headers=account.headers,
                    )
                )

    assert [a.status_code for a in answers] == [202] * 6
    assert len({a.text for a in answers}) == 1  # spending the budget changes no answer
    assert await count_rows(database, mail_outbox, mail_outbox.c.recipient == target) == 2
    # Each account's own address is still told every time (its way to cancel).
    assert await count_rows(database, mail_outbox, mail_outbox.c.kind == "email-change-notice") == 6
