"""Books record who added them (created_by) and who last changed them (updated_by)."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from tests.conftest import Account, AccountFactory
from tests.factories import BOOKS, book_payload


async def create_as(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    response = await client.post(BOOKS, json=book_payload(), headers=account.headers)
    assert response.status_code == 201, response.text
    book: dict[str, str] = response.json()
    return book


async def test_the_creating_editor_is_recorded_as_creator_and_updater(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    editor = await make_account(Role.EDITOR)

    book = await create_as(anonymous_client, editor)

    assert book["created_by"] == book["updated_by"] == str(editor.id)
    stored = (await anonymous_client.get(f"{BOOKS}/{book['id']}")).json()
    assert (stored["created_by"], stored["updated_by"]) == (str(editor.id), str(editor.id))


async def test_a_change_records_the_updater_and_keeps_the_creator(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, admin: Account
) -> None:
    author, other = await make_account(Role.EDITOR), await make_account(Role.EDITOR)
    book = await create_as(anonymous_client, author)
    path = f"{BOOKS}/{book['id']}"

    patched = await anonymous_client.patch(path, json={"title": "Edited"}, headers=other.headers)

    assert patched.status_code == 200, patched.text
    assert (patched.json()["created_by"], patched.json()["updated_by"]) == (
        str(author.id),
        str(other.id),
    )
    by_admin = await anonymous_client.patch(path, json={"page_count": 7}, headers=admin.headers)
    assert (by_admin.json()["created_by"], by_admin.json()["updated_by"]) == (
        str(author.id),
        str(admin.id),
    )
    fetched = (await anonymous_client.get(path)).json()
    assert (fetched["created_by"], fetched["updated_by"]) == (str(author.id), str(admin.id))


async def test_an_empty_patch_does_not_claim_the_book(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    author, other = await make_account(Role.EDITOR), await make_account(Role.EDITOR)
    book = await create_as(anonymous_client, author)

    response = await anonymous_client.patch(f"{BOOKS}/{book['id']}", json={}, headers=other.headers)

    assert response.status_code == 200
    assert response.json()["updated_by"] == str(author.id)


async def test_client_cannot_set_created_by_or_updated_by(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    editor = await make_account(Role.EDITOR)
    someone = str(uuid.uuid4())

    created = await anonymous_client.post(
        BOOKS, json=book_payload(created_by=someone), headers=editor.headers
    )
    book = await create_as(anonymous_client, editor)
    patched = await anonymous_client.patch(
        f"{BOOKS}/{book['id']}", json={"updated_by": someone}, headers=editor.headers
    )

    assert created.status_code == 422
    assert patched.status_code == 422
    assert (await anonymous_client.get(f"{BOOKS}/{book['id']}")).json()["updated_by"] == str(
        editor.id
    )


async def test_removing_the_account_keeps_the_book_without_an_author_reference(
    anonymous_client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    editor = await make_account(Role.EDITOR)
    book = await create_as(anonymous_client, editor)
    async with engine.begin() as connection:
        await connection.execute(delete(users).where(users.c.id == editor.id))

    fetched = await anonymous_client.get(f"{BOOKS}/{book['id']}")

    assert fetched.status_code == 200
    assert (fetched.json()["created_by"], fetched.json()["updated_by"]) == (None, None)
