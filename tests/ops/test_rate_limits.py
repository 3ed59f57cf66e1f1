"""Rate limits: per address when anonymous, per user when signed in, a stricter per-address
limit on the auth endpoints, nothing outside the API, X-Forwarded-For believed only from
trusted proxies, and counters shared through Redis.

Limits are per hour, so a test never straddles a window boundary (a per-minute window would,
once in a while)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bookshelf.config import ConfigurationError, Settings, load_settings
from bookshelf.users.schemas import Role
from tests.factories import app_account, assert_problem
from tests.ops.conftest import SharedRedis
from tests.ops.support import http, started

BOOKS = "/api/v1/books"
TOKEN = "/api/v1/auth/token"
# A new email each run: its account's budget of sign-in attempts (BOOKSHELF_RATE_LIMIT_SIGN_IN_
# ACCOUNT) lives in the shared Redis for an hour, and these tests count per-address budgets.
BAD_LOGIN = {"username": f"nobody-{uuid.uuid4().hex[:12]}@example.org", "password": "wrong"}


def limited(settings: Settings, **overrides: Any) -> Settings:
    values = {
        "rate_limit_enabled": True,
        "rate_limit_default": "5/hour",
        "rate_limit_auth": "3/hour",
        "json_logs": True,
        **overrides,
    }
    return settings.model_copy(update=values)


def remaining(response: httpx.Response) -> int:
    return int(response.headers["ratelimit-remaining"])


def assert_rate_limited(response: httpx.Response, *, limit: int, path: str) -> None:
    problem = assert_problem(response, 429, "rate-limited", instance=path)
    retry_after = int(response.headers["retry-after"])
    reset = int(response.headers["ratelimit-reset"])
    assert 1 <= retry_after <= 3600
    assert retry_after == max(1, reset)
    assert response.headers["ratelimit-limit"] == str(limit)
    assert remaining(response) == 0
    assert str(limit) in problem["detail"]
    assert "x-request-id" in response.headers


async def test_anonymous_requests_are_limited_per_address(settings: Settings) -> None:
    async with started(limited(settings)) as app:
        async with http(app, address="192.0.2.10") as client:
            allowed = [await client.get(BOOKS) for _ in range(5)]
            refused = await client.get(BOOKS)
        async with http(app, address="192.0.2.11") as neighbour:
            other = await neighbour.get(BOOKS)
    assert [r.status_code for r in allowed] == [200] * 5
    assert [r.headers["ratelimit-limit"] for r in allowed] == ["5"] * 5
    assert [remaining(r) for r in allowed] == [4, 3, 2, 1, 0]
    assert all(0 <= int(r.headers["ratelimit-reset"]) <= 3600 for r in allowed)
    assert_rate_limited(refused, limit=5, path=BOOKS)
    assert other.status_code == 200
    assert remaining(other) == 4


async def test_signed_in_users_are_counted_per_user(settings: Settings) -> None:
    async with started(limited(settings)) as app:
        first = (await app_account(app, Role.READER)).headers
        second = (await app_account(app, Role.READER)).headers
        async with (
            http(app, address="192.0.2.40") as here,
            http(app, address="192.0.2.41") as there,
        ):
            # One user from two addresses: one user bucket.
            first_runs = [await here.get("/api/v1/users/me", headers=first) for _ in range(3)]
            first_runs += [await there.get("/api/v1/users/me", headers=first) for _ in range(3)]
        async with http(app, address="192.0.2.42") as elsewhere:
            second_runs = [
                await elsewhere.get("/api/v1/users/me", headers=second) for _ in range(5)
            ]
    assert [r.status_code for r in first_runs] == [200] * 5 + [429]
    assert_rate_limited(first_runs[5], limit=5, path="/api/v1/users/me")
    assert [r.status_code for r in second_runs] == [200] * 5
    assert [remaining(r) for r in second_runs] == [4, 3, 2, 1, 0]


async def test_invalid_tokens_count_against_the_address(settings: Settings) -> None:
    """Made-up tokens must not buy a fresh bucket each."""
    async with started(limited(settings)) as app, http(app) as client:
        forged = [
            await client.get(BOOKS, headers={"Authorization": f"Bearer forged.token.{n}"})
            for n in range(5)
        ]
        refused = await client.get(BOOKS)
    assert [r.status_code for r in forged] == [200] * 5
    assert [remaining(r) for r in forged] == [4, 3, 2, 1, 0]
    assert_rate_limited(refused, limit=5, path=BOOKS)


async def test_auth_endpoints_have_their_own_stricter_limit(settings: Settings) -> None:
    async with started(limited(settings)) as app, http(app) as client:
        logins = [await client.post(TOKEN, data=BAD_LOGIN) for _ in range(4)]
        registration = await client.post(
            "/api/v1/auth/register", json={"email": "x@example.org", "password": "p" * 20}
        )
        refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x"})
        books = await client.get(BOOKS)
        async with http(app, address="192.0.2.20") as neighbour:
            neighbour_login = await neighbour.post(TOKEN, data=BAD_LOGIN)
    assert [r.status_code for r in logins[:3]] == [400] * 3, logins[0].text
    assert [remaining(r) for r in logins[:3]] == [2, 1, 0]
    assert [r.headers["ratelimit-limit"] for r in logins[:3]] == ["3"] * 3
    assert_rate_limited(logins[3], limit=3, path=TOKEN)
    # Registration and refresh share the sign-in bucket.
    assert_rate_limited(registration, limit=3, path="/api/v1/auth/register")
    assert_rate_limited(refresh, limit=3, path="/api/v1/auth/refresh")
    # The default bucket was not touched.
    assert books.status_code == 200
    assert remaining(books) == 4
    assert neighbour_login.status_code == 400
    assert remaining(neighbour_login) == 2


async def test_exhausted_default_limit_leaves_sign_in_open(settings: Settings) -> None:
    async with started(limited(settings)) as app, http(app) as client:
        statuses = [(await client.get(BOOKS)).status_code for _ in range(6)]
        login = await client.post(TOKEN, data=BAD_LOGIN)
    assert statuses == [200] * 5 + [429]
    assert login.status_code == 400
    assert login.headers["ratelimit-limit"] == "3"
    assert remaining(login) == 2


async def test_operators_docs_and_assets_are_never_limited(settings: Settings) -> None:
    """Probes, metrics, the docs and the web pages' static files; the pages themselves are
    limited (tests/web/test_limits.py)."""
    paths = ["/health/live", "/health/ready", "/metrics", "/docs", "/redoc", "/openapi.json"]
    async with started(limited(settings, rate_limit_default="1/hour")) as app, http(app) as client:
        paths.append(app.state.site.assets.url("bookshelf.css"))
        outside = [await client.get(path) for path in paths * 5]
        first_api_request = await client.get(BOOKS)
    assert [(r.url.path, r.status_code) for r in outside] == [(p, 200) for p in paths * 5]
    assert [r for r in outside if "ratelimit-limit" in r.headers] == []
    assert first_api_request.status_code == 200
    assert remaining(first_api_request) == 0


async def test_forwarded_for_is_ignored_without_trusted_proxies(settings: Settings) -> None:
    async with started(limited(settings, trusted_proxies="")) as app, http(app) as client:
        spoofed = [
            await client.get(BOOKS, headers={"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(1, 7)
        ]
    assert [r.status_code for r in spoofed] == [200] * 5 + [429]
    assert [remaining(r) for r in spoofed[:5]] == [4, 3, 2, 1, 0]


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(settings: Settings) -> None:
    async with started(limited(settings, trusted_proxies="127.0.0.1")) as app:
        async with http(app) as proxy:

            async def via_proxy(forwarded_for: str) -> httpx.Response:
                return await proxy.get(BOOKS, headers={"X-Forwarded-For": forwarded_for})

            first = [await via_proxy("203.0.113.1") for _ in range(6)]
            second = await via_proxy("203.0.113.2")
            # A client may prepend anything; the address the proxy appended is the one used.
            prepended = [await via_proxy(f"198.51.100.{n}, 203.0.113.3") for n in range(6)]
        async with http(app, address="192.0.2.30") as untrusted_peer:
            direct = [
                await untrusted_peer.get(BOOKS, headers={"X-Forwarded-For": f"203.0.113.{n}"})
                for n in range(100, 106)
            ]
    assert [r.status_code for r in first] == [200] * 5 + [429]
    assert second.status_code == 200
    assert remaining(second) == 4
    assert [r.status_code for r in prepended] == [200] * 5 + [429]
    assert [r.status_code for r in direct] == [200] * 5 + [429]


async def test_redis_counters_are_shared_by_every_instance(
    settings: Settings, shared_redis: SharedRedis
) -> None:
    shared = limited(settings, redis_url=SecretStr(shared_redis.url))
    address = shared_redis.address()
    async with started(shared) as one, started(shared) as two:
        assert one.state.rate_limits is not two.state.rate_limits
        async with http(one, address=address) as first, http(two, address=address) as second:
            on_one = [await first.get(BOOKS) for _ in range(3)]
            on_two = [await second.get(BOOKS) for _ in range(3)]
            logins = [await first.post(TOKEN, data=BAD_LOGIN) for _ in range(2)]
            logins += [await second.post(TOKEN, data=BAD_LOGIN) for _ in range(2)]
    assert [r.status_code for r in on_one] == [200] * 3
    assert [remaining(r) for r in on_one] == [4, 3, 2]
    assert [r.status_code for r in on_two] == [200, 200, 429]
    assert [remaining(r) for r in on_two] == [1, 0, 0]
    assert [r.status_code for r in logins] == [400, 400, 400, 429]
    assert await shared_redis.keys_for(address) != []


@pytest.mark.parametrize("value", ["lots", "10 per fortnight", ""])
@pytest.mark.usefixtures("clean_environment")
def test_unparseable_limits_are_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # As an operator meets it: one line naming the variable (every bad limit is named).
    monkeypatch.setenv("BOOKSHELF_RATE_LIMIT_DEFAULT", value)
    monkeypatch.setenv("BOOKSHELF_RATE_LIMIT_AUTH", "often")
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    message = str(refused.value)
    assert "BOOKSHELF_RATE_LIMIT_DEFAULT: not a rate limit such as" in message
    assert "BOOKSHELF_RATE_LIMIT_AUTH: not a rate limit such as" in message
    assert "\n" not in message
