"""Password hashing is bounded: a fixed number of Argon2 hashes at once per process, a short
wait for a slot and then a fast 503, no database connection held while hashing, and hashes
made with older cost settings upgraded at sign-in.

A "gate" holds hashes in their worker thread until the test opens it, so what happens *while*
a hash runs is observed directly, without timing guesses. The hashing itself stays real.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from sqlalchemy import select

from bookshelf.auth.exceptions import HashingBusy
from bookshelf.auth.passwords import PasswordHasher
from bookshelf.config import Settings
from bookshelf.db.database import Database, unit_of_work
from bookshelf.users.models import users
from tests.conftest import Account, AccountFactory
from tests.factories import ME, PASSPHRASE, assert_problem, login, register
from tests.ops.support import busy_refusals, http, started


class Gate:
    """Wraps a hasher's pwdlib backend: every hash blocks in its thread until ``open``."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self._real: PasswordHash = hasher._hash
        self._opened = threading.Event()
        self._lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        # The passwords hashed, in the order their hashes started.
        self.started: list[str] = []
        hasher._hash = self  # type: ignore[assignment]

    def _hold(self, work: Callable[[], Any]) -> Any:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            self._opened.wait(timeout=30)
            return work()
        finally:
            with self._lock:
                self.inside -= 1

    def hash(self, password: str) -> str:
        with self._lock:
            self.started.append(password)
        return str(self._hold(lambda: self._real.hash(password)))

    def verify_and_update(self, password: str, password_hash: str) -> Any:
        return self._hold(lambda: self._real.verify_and_update(password, password_hash))

    def open(self) -> None:
        self._opened.set()

    def close(self) -> None:
        self._opened.clear()

    async def wait_inside(self, count: int) -> None:
        async with asyncio.timeout(10):
            while self.inside < count:  # noqa: ASYNC110 - a thread's counter, not an event
                await asyncio.sleep(0.002)


def fast_hasher(**overrides: Any) -> PasswordHasher:
    values: dict[str, Any] = {"time_cost": 1, "memory_kib": 8 * 1024, **overrides}
    return PasswordHasher(**values)


async def test_no_more_hashes_run_at_once_than_there_are_slots() -> None:
    hasher = fast_hasher(concurrency=2, max_wait_seconds=10)
    gate = Gate(hasher)
    tasks = [asyncio.create_task(hasher.hash(f"password {n}")) for n in range(6)]
    await gate.wait_inside(2)
    await asyncio.sleep(0.05)  # give any third hash the chance to start, were it allowed
    assert gate.inside == 2
    gate.open()
    hashes = await asyncio.gather(*tasks)
    assert gate.most_inside == 2
    assert len(set(hashes)) == 6
    assert all(h.startswith("$argon2id$") for h in hashes)


async def test_a_hash_that_cannot_get_a_slot_in_time_is_refused_fast() -> None:
    hasher = fast_hasher(concurrency=1, max_wait_seconds=0.05)
    gate = Gate(hasher)
    holder = asyncio.create_task(hasher.hash("holds the only slot"))
    await gate.wait_inside(1)
    loop = asyncio.get_running_loop()
    started_at = loop.time()
    refusals = busy_refusals("password_hash")
    with pytest.raises(HashingBusy) as refused:
        await hasher.verify("anything", None)
    assert loop.time() - started_at < 1.0
    assert busy_refusals("password_hash") == refusals + 1
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": "1"}
    gate.open()
    assert (await holder).startswith("$argon2id$")


async def test_a_cancelled_request_frees_its_slot_only_when_its_hash_ends() -> None:
    hasher = fast_hasher(concurrency=1, max_wait_seconds=0.05)
    gate = Gate(hasher)
    abandoned = asyncio.create_task(hasher.hash("the client went away"))
    await gate.wait_inside(1)
    abandoned.cancel()
    await asyncio.sleep(0.02)
    # The thread still holds its memory, so the slot is still taken.
    with pytest.raises(HashingBusy):
        await hasher.hash("next")
    gate.open()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert (await hasher.hash("next")).startswith("$argon2id$")


async def test_the_decoy_check_for_an_unknown_account_takes_a_slot_too() -> None:
    hasher = fast_hasher(concurrency=1, max_wait_seconds=10)
    gate = Gate(hasher)
    unknown = asyncio.create_task(hasher.verify("guess", None))
    await gate.wait_inside(1)
    gate.open()
    assert await unknown is False


async def test_one_client_address_holds_at_most_one_slot() -> None:
    hasher = fast_hasher(concurrency=3, max_wait_seconds=10)
    gate = Gate(hasher)
    tasks = [
        *(asyncio.create_task(hasher.hash(f"a {n}", client="address:a")) for n in range(3)),
        asyncio.create_task(hasher.hash("b", client="address:b")),
    ]
    await gate.wait_inside(2)
    await asyncio.sleep(0.05)  # a free third slot, which client a may not take
    assert gate.inside == 2
    gate.open()
    assert len(set(await asyncio.gather(*tasks))) == 4
    assert gate.most_inside == 2


async def test_a_clients_second_hash_is_refused_fast_while_its_first_runs() -> None:
    """Even with a slot free: a client waits for its own turn, within the bounded wait."""
    hasher = fast_hasher(concurrency=2, max_wait_seconds=0.05)
    gate = Gate(hasher)
    first = asyncio.create_task(hasher.hash("first", client="address:a"))
    await gate.wait_inside(1)
    refusals = busy_refusals("password_hash")
    with pytest.raises(HashingBusy):
        await hasher.verify("second", None, client="address:a")
    assert busy_refusals("password_hash") == refusals + 1
    other = asyncio.create_task(hasher.hash("another client", client="address:b"))
    await gate.wait_inside(2)
    gate.open()
    await asyncio.gather(first, other)
    # Nothing of client a is left behind: its next hash starts at once.
    assert (await hasher.hash("later", client="address:a")).startswith("$argon2id$")


async def test_a_client_behind_a_greedy_one_gets_the_next_slot() -> None:
    """Client a sends five at once, then client b one: b's goes second, not sixth."""
    hasher = fast_hasher(concurrency=1, max_wait_seconds=10)
    gate = Gate(hasher)
    greedy = [asyncio.create_task(hasher.hash(f"a{n}", client="address:a")) for n in range(5)]
    await gate.wait_inside(1)
    polite = asyncio.create_task(hasher.hash("b", client="address:b"))
    await asyncio.sleep(0.02)
    gate.open()
    await asyncio.gather(*greedy, polite)
    assert gate.started[:2] == ["a0", "b"]
    assert gate.started[2:] == ["a1", "a2", "a3", "a4"]


async def test_a_cancelled_clients_turn_ends_only_when_its_hash_does() -> None:
    hasher = fast_hasher(concurrency=2, max_wait_seconds=0.05)
    gate = Gate(hasher)
    abandoned = asyncio.create_task(hasher.hash("the client went away", client="address:a"))
    await gate.wait_inside(1)
    abandoned.cancel()
    await asyncio.sleep(0.02)
    with pytest.raises(HashingBusy):
        await hasher.hash("next", client="address:a")
    gate.open()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert (await hasher.hash("next", client="address:a")).startswith("$argon2id$")


async def _occupy_the_slot(app: FastAPI, gate: Gate) -> asyncio.Task[str]:
    holder = asyncio.create_task(app.state.auth.hasher.hash("holds the slot"))
    await gate.wait_inside(1)
    return holder


@pytest.mark.parametrize("endpoint", ["token", "register", "password-change"])
async def test_every_hashing_endpoint_answers_503_when_all_slots_stay_busy(
    settings: Settings, endpoint: str
) -> None:
    one_slot = settings.model_copy(
        update={"password_hash_concurrency": 1, "password_hash_wait_seconds": 0.05}
    )
    async with started(one_slot) as app, http(app) as client:
        assert (await register(client, email="busy@example.org")).status_code == 202
        tokens = (await login(client, "busy@example.org", PASSPHRASE)).json()
        gate = Gate(app.state.auth.hasher)
        holder = await _occupy_the_slot(app, gate)
        if endpoint == "token":
            refused = await login(client, "busy@example.org", PASSPHRASE)
        elif endpoint == "register":
            refused = await register(client, email="second@example.org")
        else:
            refused = await client.patch(
                ME,
                json={"password": "a brand new passphrase", "current_password": PASSPHRASE},
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )
        gate.open()
        await holder
        after = await login(client, "busy@example.org", PASSPHRASE)
    assert_problem(refused, 503, "busy")
    assert refused.headers["retry-after"] == "1"
    assert after.status_code == 200


async def _while_hashing(
    app: FastAPI, gate: Gate, request: Awaitable[httpx.Response]
) -> tuple[int, httpx.Response]:
    """Run ``request`` until its hash is under way; how many pooled connections are checked
    out at that moment, and the response once the hash is let through."""
    database: Database = app.state.database
    task = asyncio.ensure_future(request)
    await gate.wait_inside(1)
    checked_out = database.pool_status()[0]
    gate.open()
    return checked_out, await task


async def test_sign_in_holds_no_connection_while_hashing(
    app: FastAPI, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account: Account = await make_account()
    gate = Gate(app.state.auth.hasher)
    held, response = await _while_hashing(
        app, gate, login(anonymous_client, account.email, account.password)
    )
    assert held == 0
    assert response.status_code == 200


async def test_registration_holds_no_connection_while_hashing(
    app: FastAPI, anonymous_client: httpx.AsyncClient
) -> None:
    gate = Gate(app.state.auth.hasher)
    held, response = await _while_hashing(
        app, gate, register(anonymous_client, email="pooled@example.org")
    )
    assert held == 0
    assert response.status_code == 202


async def test_password_change_holds_no_connection_while_hashing(
    app: FastAPI, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    gate = Gate(app.state.auth.hasher)
    change = {"password": "a brand new long passphrase", "current_password": account.password}
    held, response = await _while_hashing(
        app, gate, anonymous_client.patch(ME, json=change, headers=account.headers)
    )
    assert held == 0
    assert response.status_code == 200, response.text


async def _stored_hash(database: Database, email: str) -> str:
    async with unit_of_work(database, write=False) as connection:
        return str(
            await connection.scalar(select(users.c.password_hash).where(users.c.email == email))
        )


async def test_sign_in_upgrades_a_hash_made_with_older_cost_settings(settings: Settings) -> None:
    async with started(settings) as app, http(app) as client:
        assert (await register(client, email="old-cost@example.org")).status_code == 202
        old = await _stored_hash(app.state.database, "old-cost@example.org")
    stronger = settings.model_copy(update={"password_hash_time_cost": 2})
    async with started(stronger) as app, http(app) as client:
        first = await login(client, "old-cost@example.org", PASSPHRASE)
        upgraded = await _stored_hash(app.state.database, "old-cost@example.org")
        again = await login(client, "old-cost@example.org", PASSPHRASE)
        unchanged = await _stored_hash(app.state.database, "old-cost@example.org")
        wrong = await login(client, "old-cost@example.org", PASSPHRASE + "!")
    assert ",t=1," in old
    assert first.status_code == 200
    assert ",t=2," in upgraded
    assert again.status_code == 200
    assert unchanged == upgraded
    assert wrong.status_code == 400
