"""POST /auth/token, /auth/refresh and /auth/logout: issuing, rotating and revoking tokens."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth.models import auth_sessions, refresh_tokens
from bookshelf.auth.tokens import key_id
from bookshelf.config import Settings
from bookshelf.users.models import users
from tests.conftest import Account, AccountFactory
from tests.factories import (
    LOGOUT,
    ME,
    REFRESH,
    TOKEN,
    assert_problem,
    assert_unauthenticated,
    bearer,
    login,
)

TOKEN_KEYS = {"access_token", "token_type", "expires_in", "refresh_token"}


def claims_of(settings: Settings, token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token,
        settings.jwt_secrets[0],
        algorithms=["HS256"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    return decoded


def without_request_details(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return {key: value for key, value in body.items() if key not in {"instance", "request_id"}}


async def set_active(engine: AsyncEngine, account: Account, active: bool) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(users).where(users.c.id == account.id).values(is_active=active)
        )


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": token})


# --- the password grant ----------------------------------------------------------------------


async def test_token_returns_a_bearer_pair_that_must_not_be_cached(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, settings: Settings
) -> None:
    account = await make_account()

    response = await login(anonymous_client, account.email, account.password)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds == 900
    me = await anonymous_client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == str(account.id)


async def test_access_token_carries_the_expected_claims_and_kid(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, settings: Settings
) -> None:
    account = await make_account()
    before = int(time.time())

    token = (await login(anonymous_client, account.email, account.password)).json()["access_token"]

    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "JWT", "kid": key_id(settings.jwt_secrets[0])}
    claims = claims_of(settings, token)
    assert set(claims) == {"iss", "aud", "sub", "jti", "sid", "iat", "exp"}
    assert claims["iss"] == "bookshelf"
    assert claims["aud"] == "bookshelf-api"
    assert claims["sub"] == str(account.id)
    uuid.UUID(claims["sid"])
    assert before - 1 <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 900


async def test_two_sign_ins_are_two_sessions(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, settings: Settings
) -> None:
    account = await make_account()

    first = (await login(anonymous_client, account.email, account.password)).json()
    second = (await login(anonymous_client, account.email, account.password)).json()

    one, two = (
        claims_of(settings, first["access_token"]),
        claims_of(settings, second["access_token"]),
    )
    assert one["jti"] != two["jti"]
    assert one["sid"] != two["sid"]
    assert first["refresh_token"] != second["refresh_token"]


async def test_email_is_matched_case_insensitively(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()

    response = await login(anonymous_client, account.email.upper(), account.password)

    assert response.status_code == 200, response.text


async def test_wrong_password_and_unknown_email_are_indistinguishable(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()

    wrong_password = await login(anonymous_client, account.email, account.password + "!")
    unknown_email = await login(anonymous_client, "nobody@example.org", account.password)
    not_an_email = await login(anonymous_client, "nobody", account.password)

    assert_problem(wrong_password, 400, "invalid-grant", instance=TOKEN)
    for other in (unknown_email, not_an_email):
        assert other.status_code == 400
        assert without_request_details(other) == without_request_details(wrong_password)
        assert other.headers.get("www-authenticate") == wrong_password.headers.get(
            "www-authenticate"
        )


async def test_deactivated_account_gets_the_same_answer(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account()
    wrong_password = await login(anonymous_client, account.email, "not the password at all")
    await set_active(engine, account, False)

    response = await login(anonymous_client, account.email, account.password)

    assert_problem(response, 400, "invalid-grant")
    assert without_request_details(response) == without_request_details(wrong_password)


@pytest.mark.parametrize(
    "form",
    [
        {"username": "a@example.org"},
        {"password": "whatever it is"},
        {"username": "a@example.org", "password": "whatever it is", "grant_type": "refresh"},
    ],
)
async def test_incomplete_form_or_other_grant_type_returns_422(
    anonymous_client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    response = await anonymous_client.post(TOKEN, data=form)

    assert_problem(response, 422, "validation-error", instance=TOKEN)


async def test_json_body_instead_of_a_form_returns_422(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    credentials = {
        "username": account.email,
        "password": account.password,
        "grant_type": "password",
    }

    response = await anonymous_client.post(TOKEN, json=credentials)

    assert_problem(response, 422, "validation-error", instance=TOKEN)
    assert "access_token" not in response.text


# --- refresh ---------------------------------------------------------------------------------


async def test_refresh_returns_a_new_pair_in_the_same_session(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, settings: Settings
) -> None:
    account = await make_account()

    response = await refresh(anonymous_client, account.refresh_token)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    pair = response.json()
    assert set(pair) == TOKEN_KEYS
    assert pair["refresh_token"] != account.refresh_token
    assert pair["access_token"] != account.access_token
    old, new = claims_of(settings, account.access_token), claims_of(settings, pair["access_token"])
    assert (new["sid"], new["sub"]) == (old["sid"], old["sub"])
    assert new["jti"] != old["jti"]
    assert (await anonymous_client.get(ME, headers=bearer(pair["access_token"]))).status_code == 200
    again = await refresh(anonymous_client, pair["refresh_token"])
    assert again.status_code == 200, again.text


async def test_only_a_hash_of_the_refresh_token_is_stored(
    make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account()

    async with engine.connect() as connection:
        stored = (await connection.execute(select(refresh_tokens.c.token_hash))).scalars().all()

    assert stored == [hashlib.sha256(account.refresh_token.encode()).hexdigest()]


async def test_reusing_a_refresh_token_signs_out_the_whole_session(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    other_session = (await login(anonymous_client, account.email, account.password)).json()
    pair = (await refresh(anonymous_client, account.refresh_token)).json()

    reused = await refresh(anonymous_client, account.refresh_token)

    assert_problem(reused, 400, "invalid-grant", instance=REFRESH)
    assert_problem(await refresh(anonymous_client, pair["refresh_token"]), 400, "invalid-grant")
    for token in (pair["access_token"], account.access_token):
        assert_unauthenticated(
            await anonymous_client.get(ME, headers=bearer(token)), invalid_token=True
        )
    # Another sign-in of the same user is another session, and is untouched.
    assert (
        await anonymous_client.get(ME, headers=bearer(other_session["access_token"]))
    ).status_code == 200


async def test_unknown_refresh_token_returns_400(anonymous_client: httpx.AsyncClient) -> None:
    response = await refresh(anonymous_client, "not-a-token-we-issued")

    assert_problem(response, 400, "invalid-grant", instance=REFRESH)


async def test_expired_refresh_token_returns_400(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account()
    async with engine.begin() as connection:
        await connection.execute(
            update(refresh_tokens).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    response = await refresh(anonymous_client, account.refresh_token)

    assert_problem(response, 400, "invalid-grant", instance=REFRESH)


async def test_a_session_past_its_lifetime_cannot_be_refreshed(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    """Each sign-in session has an expires_at (created_at + the refresh TTL); rotating its
    refresh token must not keep it alive past that."""
    account = await make_account()
    async with engine.begin() as connection:
        await connection.execute(
            update(auth_sessions).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    response = await refresh(anonymous_client, account.refresh_token)

    assert_problem(response, 400, "invalid-grant", instance=REFRESH)


async def test_refresh_of_a_deactivated_account_returns_400(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account()
    await set_active(engine, account, False)

    assert_problem(await refresh(anonymous_client, account.refresh_token), 400, "invalid-grant")


async def test_concurrent_refreshes_with_one_token_succeed_once(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()

    responses = await asyncio.gather(
        *(refresh(anonymous_client, account.refresh_token) for _ in range(2))
    )

    assert sorted(response.status_code for response in responses) == [200, 400]
    loser = next(response for response in responses if response.status_code == 400)
    assert_problem(loser, 400, "invalid-grant")


@pytest.mark.parametrize(
    "body", [{}, {"refresh_token": ""}, {"refresh_token": "x", "user_id": "someone"}]
)
async def test_malformed_refresh_request_returns_422(
    anonymous_client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await anonymous_client.post(REFRESH, json=body)

    assert_problem(response, 422, "validation-error", instance=REFRESH)


# --- logout ----------------------------------------------------------------------------------


async def test_logout_revokes_the_access_and_refresh_tokens_of_its_session(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    other_session = (await login(anonymous_client, account.email, account.password)).json()

    response = await anonymous_client.post(LOGOUT, headers=account.headers)

    assert response.status_code == 204
    assert response.content == b""
    after = await anonymous_client.get(ME, headers=account.headers)
    assert_unauthenticated(after, invalid_token=True)
    assert_problem(await refresh(anonymous_client, account.refresh_token), 400, "invalid-grant")
    assert_unauthenticated(
        await anonymous_client.post(LOGOUT, headers=account.headers), invalid_token=True
    )
    still_in = await anonymous_client.get(ME, headers=bearer(other_session["access_token"]))
    assert still_in.status_code == 200


async def test_logout_without_a_token_returns_401(anonymous_client: httpx.AsyncClient) -> None:
    response = await anonymous_client.post(LOGOUT)

    assert_unauthenticated(response, invalid_token=False)
