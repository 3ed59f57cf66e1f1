"""Guessing one account's password from many addresses: attempts on an account from addresses
it has never signed in from share one budget (BOOKSHELF_RATE_LIMIT_SIGN_IN_ACCOUNT), counted
per submitted email whether or not it has an account, and the owner is never locked out of an
address they have signed in from. On both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth.models import sign_in_addresses
from bookshelf.config import Settings
from tests.factories import Account, app_account, assert_problem, login
from tests.ops.support import http, random_address, started

BUDGET = 3


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    limited = settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_auth": "1000/minute",  # the per-address budget never decides here
            "rate_limit_sign_in_account": f"{BUDGET}/hour",
        }
    )
    async with started(limited) as app:
        yield app


async def attempt(app: FastAPI, email: str, password: str, address: str) -> httpx.Response:
    async with http(app, address=address) as client:
        return await login(client, email, password)


def answer(response: httpx.Response) -> tuple[int, str, str, bool]:
    """What a client can tell apart (the Retry-After value moves with the clock)."""
    body = response.json()
    detail = body.get("detail", "").split("; retry in")[0]
    return (
        response.status_code,
        body.get("type", "tokens"),
        detail,
        "retry-after" in response.headers,
    )


async def test_guesses_from_many_addresses_spend_the_accounts_budget(
    limited_app: FastAPI,
) -> None:
    """Each guess from a new address: the budget refuses the fourth, even with the right
    password, and an email with no account is answered exactly alike."""
    account: Account = await app_account(limited_app)
    answers = {}
    for email, right in ((account.email, account.password), ("nobody@example.org", "whatever")):
        guesses = [
            await attempt(limited_app, email, f"guess number {n}", random_address())
            for n in range(BUDGET)
        ]
        past = await attempt(limited_app, email, right, random_address())
        answers[email] = [answer(response) for response in [*guesses, past]]
        assert [r.status_code for r in guesses] == [400] * BUDGET
        problem = assert_problem(past, 429, "rate-limited")
        assert int(past.headers["retry-after"]) >= 1, problem

    assert answers[account.email] == answers["nobody@example.org"]


async def test_the_owner_still_signs_in_from_an_address_used_before(
    limited_app: FastAPI, engine: AsyncEngine
) -> None:
    account: Account = await app_account(limited_app)
    home = random_address()
    assert (await attempt(limited_app, account.email, account.password, home)).status_code == 200
    for n in range(BUDGET + 2):
        await attempt(limited_app, account.email, f"guess number {n}", random_address())
    refused = await attempt(limited_app, account.email, account.password, random_address())

    at_home = await attempt(limited_app, account.email, account.password, home)
    wrong_at_home = await attempt(limited_app, account.email, "a wrong one, at home", home)
    again_at_home = await attempt(limited_app, account.email, account.password, home)

    assert_problem(refused, 429, "rate-limited")
    assert at_home.status_code == 200, at_home.text
    # Still checked (and answered as wrong), never refused by the account's budget.
    assert_problem(wrong_at_home, 400, "invalid-grant")
    assert again_at_home.status_code == 200, again_at_home.text
    async with engine.connect() as connection:
        stored = list((await connection.execute(select(sign_in_addresses))).mappings())
    # One address remembered (as a hash, never the address itself), however often used.
    assert [row["user_id"] for row in stored] == [account.id]
    assert home not in str(stored)
