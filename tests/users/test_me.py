"""GET and PATCH /api/v1/users/me: one's own account, display name and password."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from tests.conftest import Account, AccountFactory
from tests.factories import (
    ME,
    REFRESH,
    USER_KEYS,
    assert_problem,
    assert_unauthenticated,
    bearer,
    login,
)

NEW_PASSWORD = "a brand new passphrase"


async def stored(engine: AsyncEngine, account: Account) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(select(users).where(users.c.id == account.id))).one()


async def patch_me(
    client: httpx.AsyncClient, account: Account, body: dict[str, Any]
) -> httpx.Response:
    return await client.patch(ME, json=body, headers=account.headers)


async def change_password(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    body = {"password": NEW_PASSWORD, "current_password": account.password}
    return await patch_me(client, account, body)


async def test_me_returns_the_signed_in_account(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account(Role.EDITOR, display_name="Edna")

    response = await anonymous_client.get(ME, headers=account.headers)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_KEYS
    assert body["id"] == str(account.id)
    assert body["email"] == account.email
    assert body["display_name"] == "Edna"
    assert body["role"] == "editor"
    assert body["is_active"] is True


async def test_patch_changes_the_display_name(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account(display_name="Before")
    created = (await anonymous_client.get(ME, headers=account.headers)).json()

    response = await patch_me(anonymous_client, account, {"display_name": "  After  "})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["display_name"] == "After"
    assert {k: v for k, v in body.items() if k not in {"display_name", "updated_at"}} == {
        k: v for k, v in created.items() if k not in {"display_name", "updated_at"}
    }
    assert datetime.fromisoformat(body["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )
    assert (await stored(engine, account)).display_name == "After"
    assert (await anonymous_client.get(ME, headers=account.headers)).json() == body


async def test_null_display_name_clears_it_and_an_empty_patch_changes_nothing(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account(display_name="Named")
    before = (await anonymous_client.get(ME, headers=account.headers)).json()

    unchanged = await patch_me(anonymous_client, account, {})
    cleared = await patch_me(anonymous_client, account, {"display_name": None})

    assert unchanged.status_code == 200
    assert unchanged.json() == before
    assert cleared.status_code == 200
    assert cleared.json()["display_name"] is None


async def test_display_name_up_to_the_documented_length_is_accepted(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, app: FastAPI
) -> None:
    schema = app.openapi()["components"]["schemas"]["ProfileUpdate"]["properties"]
    limit = next(o["maxLength"] for o in schema["display_name"]["anyOf"] if "maxLength" in o)
    account = await make_account()

    longest = await patch_me(anonymous_client, account, {"display_name": "n" * limit})
    too_long = await patch_me(anonymous_client, account, {"display_name": "n" * (limit + 1)})

    assert longest.status_code == 200, longest.text
    assert longest.json()["display_name"] == "n" * limit
    assert_problem(too_long, 422, "validation-error")


@pytest.mark.parametrize(
    "body",
    [
        {"role": "admin"},
        {"is_active": False},
        {"email": "someone-else@example.org"},
        {"display_name": "Fine", "role": "admin"},
    ],
)
async def test_fields_one_may_not_change_return_422_and_change_nothing(
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    engine: AsyncEngine,
    body: dict[str, Any],
) -> None:
    account = await make_account(display_name="Same")

    response = await patch_me(anonymous_client, account, body)

    assert_problem(response, 422, "validation-error", instance=ME)
    row = await stored(engine, account)
    assert (row.role, row.is_active, row.email, row.display_name) == (
        "reader",
        True,
        account.email,
        "Same",
    )


async def test_patch_without_a_token_returns_401(anonymous_client: httpx.AsyncClient) -> None:
    response = await anonymous_client.patch(ME, json={"display_name": "Nobody"})

    assert_unauthenticated(response, invalid_token=False)


# --- password change -------------------------------------------------------------------------


async def test_new_password_without_the_current_one_returns_422(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account()
    hash_before = (await stored(engine, account)).password_hash

    response = await patch_me(anonymous_client, account, {"password": NEW_PASSWORD})

    problem = assert_problem(response, 422, "validation-error", instance=ME)
    assert "current_password" in problem["errors"][0]["msg"]
    assert (await stored(engine, account)).password_hash == hash_before


async def test_wrong_current_password_returns_422_and_keeps_the_old_password(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()

    response = await patch_me(
        anonymous_client,
        account,
        {"password": NEW_PASSWORD, "current_password": "this is not my password"},
    )

    assert_problem(response, 422, "wrong-current-password", instance=ME)
    assert (await login(anonymous_client, account.email, account.password)).status_code == 200
    assert (await login(anonymous_client, account.email, NEW_PASSWORD)).status_code == 400
    assert (await anonymous_client.get(ME, headers=account.headers)).status_code == 200


async def test_a_wrong_current_password_is_refused_whatever_else_changes(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    """Sent with only a new display name, a wrong current_password is still checked: a
    client that sends it means "only if this is still my password"."""
    account = await make_account(display_name="Before")

    wrong = await patch_me(
        anonymous_client,
        account,
        {"display_name": "After", "current_password": "this is not my password"},
    )
    unchanged = (await stored(engine, account)).display_name
    right = await patch_me(
        anonymous_client,
        account,
        {"display_name": "Right", "current_password": account.password},
    )

    assert_problem(wrong, 422, "wrong-current-password", instance=ME)
    assert unchanged == "Before"
    assert right.status_code == 200, right.text
    assert right.json()["display_name"] == "Right"
    assert (await stored(engine, account)).display_name == "Right"


async def test_changed_password_signs_in_and_the_old_one_does_not(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    account = await make_account()

    response = await change_password(anonymous_client, account)

    assert response.status_code == 200, response.text
    assert "password" not in response.text
    assert (await login(anonymous_client, account.email, NEW_PASSWORD)).status_code == 200
    assert_problem(
        await login(anonymous_client, account.email, account.password), 400, "invalid-grant"
    )
    assert (await stored(engine, account)).password_hash.startswith("$argon2id$")


async def test_password_change_signs_out_the_other_sessions_only(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    account = await make_account()
    other = (await login(anonymous_client, account.email, account.password)).json()

    assert (await change_password(anonymous_client, account)).status_code == 200

    assert_unauthenticated(
        await anonymous_client.get(ME, headers=bearer(other["access_token"])), invalid_token=True
    )
    stale = await anonymous_client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    assert_problem(stale, 400, "invalid-grant")
    assert (await anonymous_client.get(ME, headers=account.headers)).status_code == 200
    current = await anonymous_client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert current.status_code == 200, current.text


@pytest.mark.parametrize("password", ["short pass", "password1234"])
async def test_weak_new_password_returns_422_and_keeps_the_old_one(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, password: str
) -> None:
    account = await make_account()

    response = await patch_me(
        anonymous_client, account, {"password": password, "current_password": account.password}
    )

    assert_problem(response, 422, "validation-error", instance=ME)
    assert (await login(anonymous_client, account.email, account.password)).status_code == 200


async def test_new_password_equal_to_the_email_returns_422(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    """The registration rule "not your email address" holds for a changed password too."""
    account = await make_account()

    response = await patch_me(
        anonymous_client,
        account,
        {"password": account.email, "current_password": account.password},
    )

    assert_problem(response, 422, "validation-error", instance=ME)
    assert (await login(anonymous_client, account.email, account.email)).status_code == 400
