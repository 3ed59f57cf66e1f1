"""Rate limits an attacker cannot sidestep: many accounts from one address, a fresh IPv6
address per request, password guesses through the profile endpoint, and a shared store that
stops answering. Limits are per hour so no test straddles a window boundary."""

from __future__ import annotations

import socket

import pytest
from pydantic import SecretStr

from bookshelf.config import Settings
from bookshelf.ops.ratelimit import address_key
from bookshelf.users.schemas import Role
from tests.factories import (
    ME,
    PASSPHRASE,
    TOKEN,
    app_account,
    assert_problem,
    bearer,
    login,
    register,
)
from tests.ops.support import http, scrape, started
from tests.ops.test_rate_limits import BAD_LOGIN, BOOKS, assert_rate_limited, limited, remaining


async def test_many_accounts_from_one_address_share_its_budget(settings: Settings) -> None:
    async with started(limited(settings)) as app, http(app, address="192.0.2.50") as client:
        accounts = [(await app_account(app, Role.READER)).headers for _ in range(3)]
        runs = [await client.get(BOOKS, headers=accounts[n % 3]) for n in range(6)]
    assert [r.status_code for r in runs] == [200] * 5 + [429]
    assert_rate_limited(runs[5], limit=5, path=BOOKS)


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "address:192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "address:2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "address:2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "address:2001:db8:1:3::/64"),
        ("::ffff:192.0.2.9", "address:192.0.2.9"),
        ("not-an-ip", "address:not-an-ip"),
        (None, "address:unknown"),
    ],
)
def test_addresses_are_grouped_into_buckets(host: str | None, key: str) -> None:
    assert address_key(host) == key


async def test_ipv6_clients_are_limited_per_64(settings: Settings) -> None:
    async with started(limited(settings)) as app:
        runs = []
        for n in range(6):
            async with http(app, address=f"2001:db8:77:1::{n + 1:x}") as client:
                runs.append(await client.get(BOOKS))
        async with http(app, address="2001:db8:77:2::1") as neighbour_network:
            neighbour = await neighbour_network.get(BOOKS)
    assert [r.status_code for r in runs] == [200] * 5 + [429]
    assert neighbour.status_code == 200
    assert remaining(neighbour) == 4


def _guess(password: str) -> dict[str, str]:
    return {"password": "a brand new long passphrase", "current_password": password}


async def test_password_change_guesses_use_the_strict_budget_per_account(
    settings: Settings,
) -> None:
    async with started(limited(settings, rate_limit_default="100/hour")) as app:
        async with http(app, address="192.0.2.60") as client:
            await register(client, email="guessed@example.org")
            tokens = (await login(client, "guessed@example.org", PASSPHRASE)).json()
        headers = bearer(tokens["access_token"])
        guesses = []
        # From a new address each time: the account's own bucket still fills.
        for n in range(4):
            async with http(app, address=f"192.0.2.{70 + n}") as client:
                guesses.append(await client.patch(ME, json=_guess(f"guess {n}"), headers=headers))
        async with http(app, address="192.0.2.80") as client:
            # Even the right password is not checked once the budget is spent.
            right = await client.patch(ME, json=_guess(PASSPHRASE), headers=headers)
            rename = await client.patch(ME, json={"display_name": "Still fine"}, headers=headers)
    assert [r.status_code for r in guesses[:3]] == [422] * 3
    assert_problem(guesses[0], 422, "wrong-current-password")
    problem = assert_problem(guesses[3], 429, "rate-limited")
    assert "password checks" in problem["detail"]
    assert int(guesses[3].headers["retry-after"]) >= 1
    assert right.status_code == 429
    # Other profile changes are not password checks.
    assert rename.status_code == 200


async def test_password_change_guesses_share_the_address_budget_with_sign_in(
    settings: Settings,
) -> None:
    async with started(limited(settings, rate_limit_default="100/hour")) as app:
        first = (await app_account(app, Role.READER)).headers
        second = (await app_account(app, Role.READER)).headers
        async with http(app, address="192.0.2.90") as client:
            sign_in = await client.post(TOKEN, data=BAD_LOGIN)
            as_first = await client.patch(ME, json=_guess("guess one"), headers=first)
            as_second = await client.patch(ME, json=_guess("guess two"), headers=second)
            refused = await client.patch(ME, json=_guess("guess three"), headers=second)
    assert [sign_in.status_code, as_first.status_code, as_second.status_code] == [400, 422, 422]
    assert_problem(refused, 429, "rate-limited")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_redis_keeps_sign_in_limited_in_process(settings: Settings) -> None:
    down = limited(settings, redis_url=SecretStr(f"redis://127.0.0.1:{_closed_port()}/0"))
    async with started(down) as app, http(app, address="192.0.2.100") as client:
        reads = [await client.get(BOOKS) for _ in range(8)]
        logins = [await client.post(TOKEN, data=BAD_LOGIN) for _ in range(4)]
        exposition = await scrape(client)
    # Ordinary requests fail open (no counters to show) ...
    assert [r.status_code for r in reads] == [200] * 8
    assert all("ratelimit-limit" not in r.headers for r in reads)
    # ... but password guessing stays bounded, by this process's own counters.
    assert [r.status_code for r in logins] == [400, 400, 400, 429]
    assert_rate_limited(logins[3], limit=3, path=TOKEN)
    assert 'limit="auth",outcome="counted_in_process"' in exposition
    assert 'limit="default",outcome="allowed"' in exposition
