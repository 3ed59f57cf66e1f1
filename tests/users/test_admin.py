"""GET /api/v1/users and PATCH /api/v1/users/{id}: admins list accounts, change roles and
(de)activate them, with immediate effect on the account's existing tokens."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from tests.conftest import Account, AccountFactory
from tests.factories import (
    BOOKS,
    ME,
    REFRESH,
    USER_KEYS,
    USERS,
    assert_problem,
    assert_unauthenticated,
    book_payload,
    login,
)

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


async def role_in_db(engine: AsyncEngine, account: Account) -> tuple[str, bool]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(users.c.role, users.c.is_active).where(users.c.id == account.id)
            )
        ).one()
    return row.role, row.is_active


async def admin_patch(
    client: httpx.AsyncClient, account: Account, body: dict[str, Any]
) -> httpx.Response:
    return await client.patch(f"{USERS}/{account.id}", json=body)


# --- listing ---------------------------------------------------------------------------------


async def test_admins_list_every_account_by_email_one_page_at_a_time(
    client: httpx.AsyncClient, admin: Account, make_account: AccountFactory
) -> None:
    accounts = [admin] + [await make_account(role) for role in [*Role, *Role, Role.READER]]
    expected = sorted(account.email for account in accounts)
    assert len(expected) == 8

    pages: list[list[str]] = []
    response = await client.get(USERS, params={"limit": 3})
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert all(set(item) == USER_KEYS for item in page["items"])
        pages.append([item["email"] for item in page["items"]])
        if page["next_cursor"] is None:
            assert "link" not in response.headers
            break
        link = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers["link"])
        assert link is not None
        assert httpx.URL(link.group(1)).params["cursor"] == page["next_cursor"]
        response = await client.get(USERS, params={"limit": 3, "cursor": page["next_cursor"]})

    assert [len(page) for page in pages] == [3, 3, 2]
    assert [email for page in pages for email in page] == expected


async def test_listed_accounts_show_role_and_state(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    editor = await make_account(Role.EDITOR, display_name="Ed")
    assert (await admin_patch(client, editor, {"is_active": False})).status_code == 200

    items = (await client.get(USERS)).json()["items"]

    listed = next(item for item in items if item["id"] == str(editor.id))
    assert (listed["email"], listed["display_name"], listed["role"], listed["is_active"]) == (
        editor.email,
        "Ed",
        "editor",
        False,
    )


@pytest.mark.parametrize("cursor", ["not-a-cursor", "eyJ4IjoxfQ", "WzEsIi1jcmVhdGVkX2F0IixbXV0"])
async def test_bad_cursor_returns_422(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get(USERS, params={"cursor": cursor})

    assert_problem(response, 422, "invalid-cursor", instance=USERS)


async def test_a_cursor_of_the_book_list_is_not_accepted(client: httpx.AsyncClient) -> None:
    for number in range(2):
        await client.post(BOOKS, json=book_payload(title=f"Cursor {number}"))
    book_cursor = (await client.get(BOOKS, params={"limit": 1})).json()["next_cursor"]
    assert book_cursor is not None

    response = await client.get(USERS, params={"cursor": book_cursor})

    assert_problem(response, 422, "invalid-cursor")


@pytest.mark.parametrize("limit", [0, 101, "many"])
async def test_bad_limit_returns_422(client: httpx.AsyncClient, limit: object) -> None:
    assert_problem(await client.get(USERS, params={"limit": limit}), 422, "validation-error")


@pytest.mark.parametrize("role", [Role.READER, Role.EDITOR])
async def test_non_admins_may_not_list_or_change_accounts(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, role: Role
) -> None:
    account, target = await make_account(role), await make_account()

    listed = await anonymous_client.get(USERS, headers=account.headers)
    changed = await anonymous_client.patch(
        f"{USERS}/{target.id}", json={"role": "admin"}, headers=account.headers
    )
    promoted_self = await anonymous_client.patch(
        f"{USERS}/{account.id}", json={"role": "admin"}, headers=account.headers
    )

    assert_problem(listed, 403, "forbidden", instance=USERS)
    assert_problem(changed, 403, "forbidden")
    assert_problem(promoted_self, 403, "forbidden")
    assert (await anonymous_client.get(ME, headers=account.headers)).json()["role"] == role.value


async def test_anonymous_requests_return_401(anonymous_client: httpx.AsyncClient) -> None:
    assert_unauthenticated(await anonymous_client.get(USERS), invalid_token=False)
    assert_unauthenticated(
        await anonymous_client.patch(f"{USERS}/{UNKNOWN_ID}", json={"role": "admin"}),
        invalid_token=False,
    )


# --- roles -----------------------------------------------------------------------------------


async def test_promotion_to_editor_takes_effect_on_the_existing_token(
    client: httpx.AsyncClient,
    anonymous_client: httpx.AsyncClient,
    make_account: AccountFactory,
    engine: AsyncEngine,
) -> None:
    reader = await make_account()
    refused = await anonymous_client.post(BOOKS, json=book_payload(), headers=reader.headers)
    assert_problem(refused, 403, "forbidden")

    response = await admin_patch(client, reader, {"role": "editor"})

    assert response.status_code == 200, response.text
    assert set(response.json()) == USER_KEYS
    assert response.json()["role"] == "editor"
    assert await role_in_db(engine, reader) == ("editor", True)
    created = await anonymous_client.post(BOOKS, json=book_payload(), headers=reader.headers)
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == str(reader.id)


async def test_demotion_takes_effect_on_the_existing_token(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    editor = await make_account(Role.EDITOR)

    assert (await admin_patch(client, editor, {"role": "reader"})).status_code == 200

    refused = await anonymous_client.post(BOOKS, json=book_payload(), headers=editor.headers)
    assert_problem(refused, 403, "forbidden")


async def test_an_admin_may_demote_another_admin(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    other_admin = await make_account(Role.ADMIN)

    response = await admin_patch(client, other_admin, {"role": "editor"})

    assert response.status_code == 200, response.text
    assert await role_in_db(engine, other_admin) == ("editor", True)


@pytest.mark.parametrize(
    "body", [{"role": "superuser"}, {"email": "x@example.org"}, {"password": "long new password"}]
)
async def test_unknown_role_or_field_returns_422(
    client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine, body: Any
) -> None:
    reader = await make_account()

    assert_problem(await admin_patch(client, reader, body), 422, "validation-error")
    assert await role_in_db(engine, reader) == ("reader", True)


# --- deactivation ----------------------------------------------------------------------------


async def test_deactivation_locks_the_account_out_at_once_and_reactivation_lets_it_sign_in(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    reader = await make_account()

    deactivated = await admin_patch(client, reader, {"is_active": False})

    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["is_active"] is False
    assert_unauthenticated(
        await anonymous_client.get(ME, headers=reader.headers), invalid_token=True
    )
    assert_problem(
        await login(anonymous_client, reader.email, reader.password), 400, "invalid-grant"
    )
    stale = await anonymous_client.post(REFRESH, json={"refresh_token": reader.refresh_token})
    assert_problem(stale, 400, "invalid-grant")

    reactivated = await admin_patch(client, reader, {"is_active": True})

    assert reactivated.json()["is_active"] is True
    fresh = await login(anonymous_client, reader.email, reader.password)
    assert fresh.status_code == 200, fresh.text
    me = await anonymous_client.get(
        ME, headers={"Authorization": f"Bearer {fresh.json()['access_token']}"}
    )
    assert me.status_code == 200
    # Deactivation signed the account out everywhere; reactivating does not revive old tokens.
    assert_unauthenticated(
        await anonymous_client.get(ME, headers=reader.headers), invalid_token=True
    )


@pytest.mark.parametrize(
    "body",
    [
        {"role": "editor"},
        {"role": "reader"},
        {"is_active": False},
        {"role": "editor", "is_active": True},
    ],
)
async def test_an_admin_cannot_demote_or_deactivate_themselves(
    client: httpx.AsyncClient, admin: Account, engine: AsyncEngine, body: dict[str, Any]
) -> None:
    response = await admin_patch(client, admin, body)

    assert_problem(response, 409, "own-access", instance=f"{USERS}/{admin.id}")
    assert await role_in_db(engine, admin) == ("admin", True)
    assert (await client.get(ME)).status_code == 200


async def test_an_admin_may_confirm_their_own_role(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await admin_patch(client, admin, {"role": "admin", "is_active": True})

    assert response.status_code == 200, response.text
    assert (response.json()["role"], response.json()["is_active"]) == ("admin", True)


@pytest.mark.parametrize("user_id", [UNKNOWN_ID, "not-a-uuid", "1"])
async def test_unknown_or_malformed_user_id_returns_404(
    client: httpx.AsyncClient, user_id: str
) -> None:
    response = await client.patch(f"{USERS}/{user_id}", json={"role": "editor"})

    assert_problem(response, 404, "user-not-found", instance=f"{USERS}/{user_id}")
