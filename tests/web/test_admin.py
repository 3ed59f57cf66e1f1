"""Admins' page of accounts: keyset pages, a search by the start of the address, and changes
of role, activity and verification with the API's last-admin rule."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from bookshelf.web.admin import PAGE_SIZE
from tests.conftest import AccountFactory
from tests.factories import Account
from tests.web.support import Browser

_ROW = re.compile(r'<th scope="row">([^<]+)</th>')
_NEXT = re.compile(r'<a href="([^"]+)" rel="next">')


@pytest.fixture
async def admin_account(make_account: AccountFactory) -> Account:
    return await make_account(Role.ADMIN)


@pytest.fixture
async def admin(app: FastAPI, admin_account: Account) -> Browser:
    browser = Browser(app)
    browser.sign_in_as(admin_account)
    return browser


async def _user(engine: AsyncEngine, account: Account) -> dict[str, object]:
    async with engine.connect() as connection:
        row = (await connection.execute(select(users).where(users.c.id == account.id))).one()
    return dict(row._mapping)


async def test_accounts_in_pages_and_by_the_start_of_their_address(
    admin: Browser, make_account: AccountFactory
) -> None:
    accounts = [await make_account(Role.READER) for _ in range(PAGE_SIZE + 1)]
    first = await admin.get("/admin/users")
    following = _NEXT.search(first.text)
    assert following is not None
    second = await admin.get(following.group(1).replace("&amp;", "&"))
    shown = _ROW.findall(first.text) + _ROW.findall(second.text)
    searched = await admin.get("/admin/users?email=editor-")
    readers = await admin.get("/admin/users?email=READER-")

    assert len(shown) == PAGE_SIZE + 2  # the readers and the admin
    assert shown == sorted(shown)
    assert {account.email for account in accounts} <= set(shown)
    assert _ROW.findall(searched.text) == []
    assert "No account starts with" in searched.text
    assert len(_ROW.findall(readers.text)) == PAGE_SIZE


async def test_an_admin_changes_a_role_deactivates_and_vouches(
    admin: Browser, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    target = await make_account(Role.READER)
    path = f"/admin/users/{target.id}"
    await admin.get("/admin/users")
    promoted = await admin.post(path, {"change": "role", "value": "editor", "email": "reader-"})
    deactivated = await admin.post(path, {"change": "active", "value": "false"})
    vouched = await admin.post(path, {"change": "verified", "value": "true"})
    nonsense = await admin.post(path, {"change": "role", "value": "overlord"})
    user = await _user(engine, target)
    assert promoted.headers["location"] == "/admin/users?email=reader-"
    assert deactivated.status_code == vouched.status_code == 303
    assert nonsense.status_code == 422
    assert user["role"] == "editor"
    assert user["is_active"] is False


async def test_the_last_admin_cannot_demote_themselves(
    admin: Browser, admin_account: Account, engine: AsyncEngine
) -> None:
    await admin.get("/admin/users")
    refused = await admin.post(
        f"/admin/users/{admin_account.id}", {"change": "role", "value": "reader"}
    )
    assert refused.status_code == 409
    assert "Admins cannot demote or deactivate themselves" in refused.text
    assert (await _user(engine, admin_account))["role"] == "admin"


async def test_an_editor_may_not_see_the_accounts(
    app: FastAPI, make_account: AccountFactory
) -> None:
    async with Browser(app) as editor:
        editor.sign_in_as(await make_account(Role.EDITOR))
        response = await editor.get("/admin/users")
    assert response.status_code == 403
