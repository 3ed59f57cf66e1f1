"""Expired sessions, refresh tokens and idempotency records are deleted — in batches, by
``bookshelf purge`` and by each instance's periodic task — and nothing live goes with them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from bookshelf.auth.models import auth_sessions, refresh_tokens, sign_in_addresses
from bookshelf.cli import app as cli
from bookshelf.db.database import Database
from bookshelf.db.engine import create_engine
from bookshelf.db.types import utc_now
from bookshelf.idempotency.models import idempotency_records
from bookshelf.retention import purge_expired
from bookshelf.users.models import users
from tests.conftest import make_settings
from tests.factories import connected, count_rows
from tests.ops.support import started

EXPIRED, LIVE = 5, 2


async def _fill(engine: AsyncEngine | Database) -> uuid.UUID:
    """EXPIRED expired and LIVE live rows in each table; returns the live session's id. The
    expired sessions each carry a refresh token that is itself still within its lifetime, so
    only the cascade from the session removes it."""
    now = utc_now()
    past, future = now - timedelta(hours=1), now + timedelta(hours=1)
    user_id = uuid.uuid4()
    async with connected(engine, write=True) as connection:
        await connection.execute(
            insert(users).values(
                id=user_id,
                email=f"retention-{user_id.hex[:8]}@example.org",
                password_hash="$argon2id$not-a-real-hash",
                role="reader",
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
        sessions = [(uuid.uuid4(), past) for _ in range(EXPIRED)]
        sessions += [(uuid.uuid4(), future) for _ in range(LIVE)]
        for session_id, expires_at in sessions:
            await connection.execute(
                insert(auth_sessions).values(
                    id=session_id, user_id=user_id, created_at=now, expires_at=expires_at
                )
            )
        live_session = sessions[-1][0]
        tokens = [(session_id, future) for session_id, _ in sessions[:EXPIRED]]
        tokens += [(live_session, past)] * EXPIRED + [(live_session, future)] * LIVE
        for session_id, expires_at in tokens:
            await connection.execute(
                insert(refresh_tokens).values(
                    token_hash=uuid.uuid4().hex * 2,
                    session_id=session_id,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        for n, expires_at in enumerate([past] * EXPIRED + [future] * LIVE):
            await connection.execute(
                insert(idempotency_records).values(
                    scope="POST /api/v1/books",
                    key=f"retention-{n}",
                    fingerprint="0" * 64,
                    locked_at=now,
                    expires_at=expires_at,
                )
            )
        for n, expires_at in enumerate([past] * EXPIRED + [future] * LIVE):
            await connection.execute(
                insert(sign_in_addresses).values(
                    user_id=user_id, address_hash=f"{n:064d}", expires_at=expires_at
                )
            )
    return live_session


async def _counts(engine: AsyncEngine | Database) -> dict[str, int]:
    tables = (auth_sessions, refresh_tokens, idempotency_records, sign_in_addresses)
    return {table.name: await count_rows(engine, table) for table in tables}


LEFT_AFTER_PURGE = {
    "auth_sessions": LIVE,
    "refresh_tokens": LIVE,
    "idempotency_records": LIVE,
    "sign_in_addresses": LIVE,
}


async def test_purge_deletes_every_expired_row_in_batches_and_keeps_live_ones(
    app: FastAPI, engine: AsyncEngine
) -> None:
    database: Database = app.state.database
    await _fill(engine)
    # A batch smaller than the backlog: the purge must loop until it is gone.
    report = await purge_expired(database, batch_size=2)
    assert report.deleted == {
        "auth_sessions": EXPIRED,
        "refresh_tokens": EXPIRED,  # the other EXPIRED went with their sessions
        "idempotency_records": EXPIRED,
        "account_tokens": 0,  # none made here (tests/mail covers their lifetime)
        "sign_in_addresses": EXPIRED,
        "mail_outbox": 0,
    }
    assert await _counts(engine) == LEFT_AFTER_PURGE
    assert (await purge_expired(database)).total == 0


def test_bookshelf_purge_reports_what_it_deleted(database_url: str) -> None:
    engine = create_engine(make_settings(database_url))

    async def fill() -> None:
        try:
            await _fill(engine)
        finally:
            await engine.dispose()

    asyncio.run(fill())
    result = CliRunner().invoke(cli, ["purge"], env={"BOOKSHELF_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"auth_sessions: {EXPIRED} expired row(s) deleted",
        f"refresh_tokens: {EXPIRED} expired row(s) deleted",
        f"idempotency_records: {EXPIRED} expired row(s) deleted",
        "account_tokens: 0 expired row(s) deleted",
        f"sign_in_addresses: {EXPIRED} expired row(s) deleted",
        "mail_outbox: 0 expired row(s) deleted",
    ]

    async def remaining() -> dict[str, int]:
        engine = create_engine(make_settings(database_url))
        try:
            return await _counts(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(remaining()) == LEFT_AFTER_PURGE


@pytest.mark.usefixtures("clean_environment")
def test_bookshelf_purge_names_an_unreachable_database() -> None:
    url = "postgresql://nobody@127.0.0.1:9/bookshelf"
    result = CliRunner().invoke(cli, ["purge"], env={"BOOKSHELF_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "cannot use the database" in result.stderr


async def test_each_instance_purges_periodically(database_url: str) -> None:
    settings = make_settings(database_url, purge_interval_seconds=1)
    async with started(settings) as app:
        await _fill(app.state.database)
        async with asyncio.timeout(15):
            while await _counts(app.state.database) != LEFT_AFTER_PURGE:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
