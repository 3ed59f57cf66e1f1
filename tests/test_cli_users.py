"""``bookshelf users``: listing accounts and an admin's changes from the command line, on both
databases, beside a started app whose API shows what each change did.

The changes go through the API's own service (``auth.accounts.update_user``): these tests
check the rules and effects the operator must get from it (one active admin always remains,
deactivation signs out everywhere) in the database and through the API.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth import accounts
from bookshelf.auth.models import account_tokens, auth_sessions
from bookshelf.db.database import unit_of_work
from bookshelf.users.exceptions import LastActiveAdmin
from bookshelf.users.models import users
from bookshelf.users.schemas import Role, User, UserAdminUpdate
from tests.cli_support import assert_ok, assert_refused, bookshelf, table
from tests.conftest import AccountFactory
from tests.factories import Account, book_payload, register
from tests.ops.support import http

pytestmark = pytest.mark.usefixtures("clean_environment")

API = "/api/v1"
LAST_ADMIN = (
    "This account is the only active admin: make another account an admin first (nobody "
    "could administer the service otherwise)."
)


async def account_row(engine: AsyncEngine, email: str) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(select(users).where(users.c.email == email))).one()


async def me(app: FastAPI, account: Account) -> httpx.Response:
    async with http(app, headers=account.headers) as client:
        return await client.get(f"{API}/users/me")


async def refresh(app: FastAPI, account: Account) -> httpx.Response:
    async with http(app) as client:
        return await client.post(
            f"{API}/auth/refresh", json={"refresh_token": account.refresh_token}
        )


async def sign_in(app: FastAPI, account: Account) -> httpx.Response:
    form = {"username": account.email, "password": account.password, "grant_type": "password"}
    async with http(app) as client:
        return await client.post(f"{API}/auth/token", data=form)


async def test_list_prints_every_account_by_email_in_aligned_columns(
    database_url: str, make_account: AccountFactory
) -> None:
    made = [
        await make_account(Role.ADMIN, display_name="Ada Admin"),
        await make_account(Role.EDITOR, display_name="Ed Itor"),
        await make_account(Role.READER, display_name="Rea Der"),
    ]

    rows = table(assert_ok(await bookshelf(database_url, "users", "list")))

    assert rows[0] == ["email", "role", "active", "verified", "display name", "created"]
    expected = sorted((a.email, a.role.value, "yes", "yes") for a in made)
    assert [tuple(row[:4]) for row in rows[1:]] == expected
    names = {row[0]: row[4] for row in rows[1:]}
    assert names[made[1].email] == "Ed Itor"


def listed(stdout: str) -> list[str]:
    """The emails of a ``--json`` listing, checking its shape: a page of accounts as the API
    shows them (``User``), and the next page's cursor."""
    page = json.loads(stdout)
    assert set(page) == {"items", "next_cursor"}
    for item in page["items"]:
        assert set(item) == set(User.model_fields)
        User.model_validate(item)
    return [item["email"] for item in page["items"]]


async def test_list_json_filters_by_role_and_prefix_and_pages_with_the_cursor(
    database_url: str, make_account: AccountFactory
) -> None:
    editors = sorted([(await make_account(Role.EDITOR)).email for _ in range(3)])
    await make_account(Role.READER)
    by_role = ("users", "list", "--role", "editor", "--json")

    assert listed(assert_ok(await bookshelf(database_url, *by_role))) == editors

    first = assert_ok(await bookshelf(database_url, *by_role, "--limit", "2"))
    assert listed(first) == editors[:2]
    cursor = json.loads(first)["next_cursor"]
    rest = assert_ok(await bookshelf(database_url, *by_role, "--limit", "2", "--cursor", cursor))
    assert listed(rest) == editors[2:]
    assert json.loads(rest)["next_cursor"] is None

    prefix = editors[0].split("@")[0].upper()  # typed in any case, as the admin page takes it
    searched = await bookshelf(database_url, "users", "list", "--search", prefix, "--json")
    assert listed(assert_ok(searched)) == [editors[0]]


async def test_a_table_page_tells_on_stderr_how_to_get_the_next(
    database_url: str, make_account: AccountFactory
) -> None:
    for _ in range(2):
        await make_account(Role.READER)

    result = await bookshelf(database_url, "users", "list", "--limit", "1")

    assert result.exit_code == 0, result.stderr
    assert len(table(result.stdout)) == 2
    [note] = result.stderr.splitlines()
    assert note.startswith("more: run again with --cursor ")


async def test_a_forged_cursor_is_a_one_line_error(database_url: str) -> None:
    result = await bookshelf(database_url, "users", "list", "--cursor", "not-a-cursor")

    assert_refused(
        result,
        "The cursor is not one this list issued for this sort order; start again without a cursor.",
    )


async def test_set_role_gives_the_role_the_api_then_enforces(
    app: FastAPI, database_url: str, engine: AsyncEngine, make_account: AccountFactory
) -> None:
    reader = await make_account(Role.READER)
    async with http(app, headers=reader.headers) as client:
        before = await client.post(f"{API}/books", json=book_payload())
    assert before.status_code == 403

    result = await bookshelf(database_url, "users", "set-role", reader.email.upper(), "editor")

    rows = table(assert_ok(result))
    assert rows[1][:2] == [reader.email, "editor"]
    assert (await account_row(engine, reader.email)).role == "editor"
    async with http(app, headers=reader.headers) as client:
        after = await client.post(f"{API}/books", json=book_payload())
    assert after.status_code == 201, after.text


async def test_deactivate_signs_the_account_out_everywhere_and_activate_lets_it_back(
    app: FastAPI, database_url: str, engine: AsyncEngine, make_account: AccountFactory
) -> None:
    reader = await make_account(Role.READER)
    async with http(app) as client:
        asked = await client.post(f"{API}/auth/password-reset", json={"email": reader.email})
    assert asked.status_code == 202
    assert (await me(app, reader)).status_code == 200

    deactivated = await bookshelf(database_url, "users", "deactivate", reader.email, "--json")

    shown = json.loads(assert_ok(deactivated))
    assert (shown["email"], shown["is_active"]) == (reader.email, False)
    assert (await me(app, reader)).status_code == 401  # the access token stops at once
    assert (await refresh(app, reader)).status_code == 400
    assert (await sign_in(app, reader)).status_code == 400
    async with engine.connect() as connection:
        sessions = (
            await connection.execute(
                select(auth_sessions.c.revoked_at).where(auth_sessions.c.user_id == reader.id)
            )
        ).scalars()
        links = (
            await connection.execute(
                select(account_tokens.c.used_at).where(account_tokens.c.user_id == reader.id)
            )
        ).scalars()
        assert all(revoked is not None for revoked in sessions)
        assert [used is not None for used in links] == [True]  # the mailed reset link is void

    activated = await bookshelf(database_url, "users", "activate", reader.email)

    assert table(assert_ok(activated))[1][2] == "yes"
    assert (await sign_in(app, reader)).status_code == 200
    assert (await refresh(app, reader)).status_code == 400  # the old session stays ended


async def test_verify_marks_a_registered_address_verified(
    app: FastAPI, database_url: str, engine: AsyncEngine
) -> None:
    email = f"unverified-{uuid.uuid4().hex[:8]}@example.org"
    async with http(app) as client:
        assert (await register(client, email=email)).status_code == 202
    assert (await account_row(engine, email)).email_verified is False

    result = await bookshelf(database_url, "users", "verify", email, "--json")

    assert json.loads(assert_ok(result))["email_verified"] is True
    assert (await account_row(engine, email)).email_verified is True


@pytest.mark.parametrize(
    "change", [("deactivate",), ("set-role", "editor"), ("set-role", "reader")]
)
async def test_the_last_active_admin_keeps_their_rights(
    app: FastAPI,
    database_url: str,
    engine: AsyncEngine,
    make_account: AccountFactory,
    change: tuple[str, ...],
) -> None:
    """A deactivated admin does not count: they cannot administer anything."""
    admin = await make_account(Role.ADMIN)
    other = await make_account(Role.ADMIN)
    assert_ok(await bookshelf(database_url, "users", "deactivate", other.email))
    command, *argument = change

    result = await bookshelf(database_url, "users", command, admin.email, *argument)

    assert_refused(result, LAST_ADMIN)
    row = await account_row(engine, admin.email)
    assert (row.role, row.is_active) == ("admin", True)
    assert (await me(app, admin)).status_code == 200  # not signed out either


async def test_an_admin_loses_their_rights_while_another_active_admin_remains(
    app: FastAPI, database_url: str, engine: AsyncEngine, make_account: AccountFactory
) -> None:
    admin = await make_account(Role.ADMIN)
    await make_account(Role.ADMIN)

    assert_ok(await bookshelf(database_url, "users", "set-role", admin.email, "reader"))
    assert (await account_row(engine, admin.email)).role == "reader"
    async with http(app, headers=admin.headers) as client:
        assert (await client.get(f"{API}/users")).status_code == 403


async def test_a_reader_can_be_deactivated_when_no_admin_exists(
    database_url: str, make_account: AccountFactory
) -> None:
    """The rule is about the last admin, not about there being one."""
    reader = await make_account(Role.READER)

    assert_ok(await bookshelf(database_url, "users", "deactivate", reader.email))


@pytest.mark.parametrize(
    "command", [("deactivate",), ("activate",), ("verify",), ("set-role", "", "editor")]
)
async def test_an_unknown_email_is_a_one_line_error(
    database_url: str, make_account: AccountFactory, command: tuple[str, ...]
) -> None:
    await make_account(Role.ADMIN)
    name, *rest = command
    arguments = [part or "nobody@example.org" for part in rest] or ["nobody@example.org"]

    result = await bookshelf(database_url, "users", name, *arguments)

    assert_refused(result, "no account has the email nobody@example.org")


async def test_an_invalid_email_or_role_is_a_usage_error(database_url: str) -> None:
    bad_email = await bookshelf(database_url, "users", "verify", "not-an-email")
    assert bad_email.exit_code == 2
    [line] = bad_email.stderr.splitlines()
    assert line.startswith("bookshelf: EMAIL: ")

    bad_role = await bookshelf(database_url, "users", "set-role", "a@example.org", "owner")
    assert bad_role.exit_code == 2
    assert "owner" in bad_role.stderr
    assert "Traceback" not in bad_role.output


@pytest.mark.parametrize(
    "change",
    [UserAdminUpdate(role=Role.READER), UserAdminUpdate(is_active=False)],
    ids=["demote", "deactivate"],
)
async def test_two_operators_taking_the_two_admins_rights_at_once_leave_one(
    app: FastAPI, engine: AsyncEngine, make_account: AccountFactory, change: UserAdminUpdate
) -> None:
    """Two ``bookshelf users`` commands at the same moment, one per admin, through the
    service they run (two command lines in one process would share its stdout): one wins,
    the other is refused under the lock, each round."""
    database = app.state.database

    async def operator_changes(account: Account) -> str:
        try:
            async with unit_of_work(database, write=True) as connection:
                await accounts.update_user(connection, None, account.id, change)
        except LastActiveAdmin:
            return "refused"
        return "changed"

    for _ in range(5):
        async with engine.begin() as connection:
            await connection.execute(
                update(users).where(users.c.role == "admin").values(role="reader")
            )
        first, second = await make_account(Role.ADMIN), await make_account(Role.ADMIN)

        outcomes = await asyncio.gather(operator_changes(first), operator_changes(second))

        assert sorted(outcomes) == ["changed", "refused"]
        async with engine.connect() as connection:
            active = await connection.scalar(
                select(func.count())
                .select_from(users)
                .where(users.c.role == "admin", users.c.is_active.is_(True))
            )
        assert active == 1
