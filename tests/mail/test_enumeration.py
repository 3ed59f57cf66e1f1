"""Nobody learns from register, resend or reset whether an address has an account: the same
status and body, and (within noise) the same time, for a known and an unknown address."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import AccountFactory
from tests.factories import PASSPHRASE, REGISTER, login, register

RESEND = "/api/v1/auth/verify-email/resend"
RESET = "/api/v1/auth/password-reset"
ROUNDS = 12

Call = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


async def _register(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(REGISTER, json={"email": email, "password": PASSPHRASE + "!"})


async def _resend(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(RESEND, json={"email": email})


async def _reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(RESET, json={"email": email})


def _comparable(response: httpx.Response) -> tuple[int, Any, str]:
    return response.status_code, response.json(), response.headers["content-type"]


async def _timed(call: Call, client: httpx.AsyncClient, email: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await call(client, email)
    return time.perf_counter() - started, response


@pytest.mark.parametrize("call", [_register, _resend, _reset], ids=["register", "resend", "reset"])
async def test_known_and_unknown_addresses_get_the_same_answer_in_the_same_time(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, call: Call
) -> None:
    known: list[float] = []
    unknown: list[float] = []
    answers = set()
    # An unverified account too, so resend has something to send to.
    await register(anonymous_client, email="unverified@example.org")
    account = await make_account()
    for n in range(ROUNDS):
        # Alternating, so drift in the machine's load hits both alike.
        for email, times in (
            (account.email if n % 2 else "unverified@example.org", known),
            (f"nobody-{n}@example.org", unknown),
        ):
            elapsed, response = await _timed(call, anonymous_client, email)
            times.append(elapsed)
            answers.add(repr(_comparable(response)))

    assert len(answers) == 1, answers
    known_median, unknown_median = statistics.median(known), statistics.median(unknown)
    # The same work on both paths (a hash for registration, a few statements otherwise):
    # a difference beyond noise would be a branch that skips or adds real work.
    allowed = max(0.015, 0.5 * max(known_median, unknown_median))
    assert abs(known_median - unknown_median) <= allowed, (known_median, unknown_median)


async def test_register_hashes_the_password_for_a_taken_address_too(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, app: Any
) -> None:
    """The cost that would tell the cases apart is the hash: both paths pay it."""
    account = await make_account()
    hasher = app.state.auth.hasher
    calls = 0
    real_hash = hasher.hash

    async def counting(password: str, **options: Any) -> str:
        nonlocal calls
        calls += 1
        return str(await real_hash(password, **options))

    hasher.hash = counting
    try:
        await _register(anonymous_client, account.email)
        await _register(anonymous_client, "brand-new@example.org")
    finally:
        hasher.hash = real_hash
    assert calls == 2


async def test_an_unverified_account_signs_in_exactly_as_a_wrong_password_fails(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    """Registering an address with a password of one's own, then signing in with it, must not
    tell whether the address already had an account: with verification required, a new
    (unverified) account's correct password is refused like the wrong password of an
    existing one — same status and body, the same time within noise."""
    account = await make_account()
    mine = PASSPHRASE + "!"
    taken, free = [], []
    answers = set()
    for n in range(ROUNDS):
        fresh = f"fresh-{n}@example.org"
        for email, times in ((account.email, taken), (fresh, free)):
            registered = await anonymous_client.post(
                REGISTER, json={"email": email, "password": mine}
            )
            assert registered.status_code == 202, registered.text
            elapsed, response = await _timed(
                lambda client, address: login(client, address, mine), anonymous_client, email
            )
            times.append(elapsed)
            status, body, content_type = _comparable(response)
            body.pop("request_id", None)  # each request's own
            answers.add(repr((status, body, content_type)))

    [answer] = answers
    assert answer.startswith("(400, {'type': 'urn:bookshelf:problem:invalid-grant'"), answer
    taken_median, free_median = statistics.median(taken), statistics.median(free)
    allowed = max(0.015, 0.5 * max(taken_median, free_median))
    assert abs(taken_median - free_median) <= allowed, (taken_median, free_median)
    # The owner's own password still works: nothing of the account was changed.
    assert (await login(anonymous_client, account.email, account.password)).status_code == 200
