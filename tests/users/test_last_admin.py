"""The last active admin can never be demoted or deactivated, even by two admins acting on
each other at the same moment: decided inside the writing transaction, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from tests.conftest import Account, AccountFactory
from tests.factories import USERS, count_rows

ROUNDS = 10


async def active_admins(engine: AsyncEngine) -> int:
    return await count_rows(engine, users, users.c.role == "admin", users.c.is_active.is_(True))


async def only_these_admins(engine: AsyncEngine, make_account: AccountFactory) -> list[Account]:
    async with engine.begin() as connection:
        await connection.execute(update(users).where(users.c.role == "admin").values(role="reader"))
    return [await make_account(Role.ADMIN), await make_account(Role.ADMIN)]


@pytest.mark.parametrize(
    "change", [{"role": "reader"}, {"is_active": False}], ids=["demote", "deactivate"]
)
async def test_two_admins_acting_on_each_other_at_once_leave_one_admin(
    app: FastAPI,
    engine: AsyncEngine,
    make_account: AccountFactory,
    anonymous_client: httpx.AsyncClient,
    change: dict[str, Any],
) -> None:
    outcomes = []
    for _ in range(ROUNDS):
        first, second = await only_these_admins(engine, make_account)
        responses = await asyncio.gather(
            anonymous_client.patch(f"{USERS}/{second.id}", json=change, headers=first.headers),
            anonymous_client.patch(f"{USERS}/{first.id}", json=change, headers=second.headers),
        )
        outcomes.append(sorted(r.status_code for r in responses))
        assert await active_admins(engine) == 1, outcomes
    # One wins each round; the other is refused: no longer an active admin (401 when its
    # account was deactivated before it was loaded, 403 when found demoted or under the lock).
    for statuses in outcomes:
        assert statuses[0] == 200, outcomes
        assert statuses[1] in {401, 403}, outcomes
