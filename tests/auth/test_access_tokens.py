"""Access tokens a protected endpoint must refuse, and signing-key rotation."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth.exceptions import InvalidToken
from bookshelf.auth.tokens import CHECKED_TOKENS_KEPT, TokenSigner, key_id
from bookshelf.config import Settings
from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from tests.conftest import Account, AccountFactory, make_settings
from tests.factories import ME, assert_unauthenticated, bearer, sign_in
from tests.ops.support import http, started

OLD_SECRET = "the-old-signing-secret-0123456789abcdef"
NEW_SECRET = "the-new-signing-secret-fedcba9876543210"


def b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def claims_for(account: Account, settings: Settings) -> dict[str, Any]:
    """The claims of the account's real token, re-signable with changes."""
    return jwt.decode(
        account.access_token,
        settings.jwt_secrets[0],
        algorithms=["HS256"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )


def mint(
    claims: dict[str, Any],
    secret: str,
    *,
    kid: str | None = None,
    algorithm: str = "HS256",
) -> str:
    headers = {"kid": kid if kid is not None else key_id(secret)}
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)


async def get_me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(ME, headers=bearer(token))


async def test_a_token_minted_like_the_service_does_is_accepted(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, settings: Settings
) -> None:
    """The control for every refusal below: only the one thing each test changes is wrong."""
    account = await make_account()
    token = mint(claims_for(account, settings), settings.jwt_secrets[0])

    response = await get_me(anonymous_client, token)

    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(account.id)


async def test_missing_token_returns_401_with_a_bare_bearer_challenge(
    anonymous_client: httpx.AsyncClient,
) -> None:
    response = await anonymous_client.get(ME)

    assert_unauthenticated(response, invalid_token=False)
    assert response.headers["www-authenticate"] == 'Bearer realm="bookshelf"'


@pytest.mark.parametrize("authorization", ["Basic YWRhOnNlY3JldA==", "abc"])
async def test_authorization_that_is_not_a_bearer_token_counts_as_missing(
    anonymous_client: httpx.AsyncClient, authorization: str
) -> None:
    response = await anonymous_client.get(ME, headers={"Authorization": authorization})

    assert_unauthenticated(response, invalid_token=False)


Tamper = Callable[[dict[str, Any], Settings], str]


def _expired(claims: dict[str, Any], settings: Settings) -> str:
    now = int(time.time())
    return mint({**claims, "iat": now - 3600, "exp": now - 60}, settings.jwt_secrets[0])


def _wrong_signature(claims: dict[str, Any], settings: Settings) -> str:
    return mint(claims, "some-other-secret", kid=key_id(settings.jwt_secrets[0]))


def _alg_none(claims: dict[str, Any], settings: Settings) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": key_id(settings.jwt_secrets[0])}
    return f"{b64url(header)}.{b64url(claims)}."


def _hs512(claims: dict[str, Any], settings: Settings) -> str:
    return mint(claims, settings.jwt_secrets[0], algorithm="HS512")


def _changed(**changes: Any) -> Tamper:
    return lambda claims, settings: mint({**claims, **changes}, settings.jwt_secrets[0])


def _without(name: str) -> Tamper:
    def tamper(claims: dict[str, Any], settings: Settings) -> str:
        return mint({k: v for k, v in claims.items() if k != name}, settings.jwt_secrets[0])

    return tamper


def _unknown_kid(claims: dict[str, Any], settings: Settings) -> str:
    return mint(claims, settings.jwt_secrets[0], kid="0123456789abcdef")


def _no_kid(claims: dict[str, Any], settings: Settings) -> str:
    return jwt.encode(claims, settings.jwt_secrets[0], algorithm="HS256")


TAMPERED: dict[str, Tamper] = {
    "expired": _expired,
    "wrong-signature": _wrong_signature,
    "alg-none": _alg_none,
    "other-algorithm": _hs512,
    "wrong-audience": _changed(aud="someone-else"),
    "wrong-issuer": _changed(iss="someone-else"),
    "sub-not-a-uuid": _changed(sub="admin"),
    "sid-not-a-uuid": _changed(sid="session"),
    "unknown-session": _changed(sid="00000000-0000-4000-8000-000000000000"),
    "missing-jti": _without("jti"),
    "missing-sid": _without("sid"),
    "missing-sub": _without("sub"),
    "missing-exp": _without("exp"),
    "missing-aud": _without("aud"),
    "unknown-kid": _unknown_kid,
    "no-kid": _no_kid,
}


# The HS512 token is signed with the (short) test secret; PyJWT warns about that.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_untrustworthy_tokens_return_401_invalid_token(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, settings: Settings
) -> None:
    """Each token differs from a valid one in one way only (see the control test above)."""
    account = await make_account()
    claims = claims_for(account, settings)

    for case, tamper in TAMPERED.items():
        response = await get_me(anonymous_client, tamper(claims, settings))

        assert response.status_code == 401, (case, response.text)
        assert_unauthenticated(response, invalid_token=True)
        expired = "has expired" in response.headers["www-authenticate"]
        assert expired is (case == "expired"), (case, response.headers["www-authenticate"])
    assert (await get_me(anonymous_client, account.access_token)).status_code == 200


async def test_malformed_token_returns_401_invalid_token(
    anonymous_client: httpx.AsyncClient,
) -> None:
    for token in ("abc", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30."):
        assert_unauthenticated(await get_me(anonymous_client, token), invalid_token=True)


async def test_the_session_of_another_user_does_not_do(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, settings: Settings
) -> None:
    mine, theirs = await make_account(), await make_account()
    claims = {**claims_for(mine, settings), "sid": claims_for(theirs, settings)["sid"]}

    response = await get_me(anonymous_client, mint(claims, settings.jwt_secrets[0]))

    assert_unauthenticated(response, invalid_token=True)


async def test_token_of_a_deleted_user_returns_401(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account()
    async with engine.begin() as connection:
        await connection.execute(delete(users).where(users.c.id == account.id))

    assert_unauthenticated(await get_me(anonymous_client, account.access_token), invalid_token=True)


# --- key rotation ----------------------------------------------------------------------------


async def test_a_rotated_key_still_verifies_old_tokens_and_signs_new_ones(
    database_url: str,
) -> None:
    rotated = make_settings(database_url, jwt_secret=NEW_SECRET, jwt_previous_secrets=OLD_SECRET)
    async with (
        started(make_settings(database_url, jwt_secret=OLD_SECRET)) as before,
        started(rotated) as after,
        started(make_settings(database_url, jwt_secret=NEW_SECRET)) as only_new,
        http(before) as old_http,
        http(after) as new_http,
        http(only_new) as strict_http,
    ):
        old_token = await sign_in(before, Role.READER)
        new_token = await sign_in(after, Role.READER)

        assert (await old_http.get(ME, headers=old_token)).status_code == 200
        assert (await new_http.get(ME, headers=old_token)).status_code == 200
        assert (await new_http.get(ME, headers=new_token)).status_code == 200
        new_header = jwt.get_unverified_header(new_token["Authorization"].split()[1])
        assert new_header["kid"] == key_id(NEW_SECRET)
        # Once the old secret is dropped, its tokens stop working; the old app never
        # knew the new key.
        assert_unauthenticated(await strict_http.get(ME, headers=old_token), invalid_token=True)
        assert_unauthenticated(await old_http.get(ME, headers=new_token), invalid_token=True)


def _signer() -> TokenSigner:
    return TokenSigner(["a" * 40], issuer="bookshelf", audience="bookshelf-api")


def _token(signer: TokenSigner, *, ttl: timedelta = timedelta(minutes=5)) -> str:
    now = datetime.now(UTC)
    return signer.issue(user_id=uuid.uuid4(), session_id=uuid.uuid4(), now=now, ttl=ttl)


def test_a_token_is_checked_in_full_once_then_only_for_its_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = _signer()
    token = _token(signer, ttl=timedelta(seconds=2))  # expires 1-2 s from now (whole seconds)
    decoded: list[str] = []
    decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda t, *a, **k: decoded.append(t) or decode(t, *a, **k))

    first = signer.verify(token)
    assert signer.verify(token) == first
    assert decoded == [token]
    with pytest.raises(InvalidToken, match="malformed or its signature is wrong"):
        signer.verify(token[:-2] + ("xx" if not token.endswith("xx") else "yy"))
    assert signer.remembered_tokens == 1  # a failed check is not remembered
    time.sleep(2.1)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token)


def test_the_checked_tokens_remembered_are_bounded() -> None:
    signer = _signer()
    tokens = [_token(signer) for _ in range(CHECKED_TOKENS_KEPT + 50)]
    for token in tokens:
        signer.verify(token)

    assert signer.remembered_tokens == CHECKED_TOKENS_KEPT
    assert signer.verify(tokens[0]).user_id  # forgotten, so checked in full again: still valid


@pytest.mark.parametrize(("seconds_past_expiry", "accepted"), [(2, True), (30, False)])
async def test_an_access_token_just_past_expiry_is_accepted_within_the_leeway(
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    settings: Settings,
    seconds_past_expiry: int,
    accepted: bool,
) -> None:
    """Instances' clocks differ by a little: the default leeway (5 s) absorbs that, no more."""
    account = await make_account()
    now = int(time.time())
    claims = {**claims_for(account, settings), "iat": now - 600, "exp": now - seconds_past_expiry}
    response = await get_me(anonymous_client, mint(claims, settings.jwt_secrets[0]))
    assert settings.jwt_leeway_seconds == 5
    assert (response.status_code == 200) is accepted, response.text
