"""Alembic migrations: upgrade head, downgrade base and upgrade again leave a working database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Uuid, bindparam, insert, inspect, select, update
from sqlalchemy import text as sa_text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth.models import account_tokens
from bookshelf.books.models import book_authors, books
from bookshelf.db import migrate
from bookshelf.db.engine import create_engine
from bookshelf.db.types import UtcDateTime
from bookshelf.mail.models import mail_outbox
from bookshelf.users.models import users
from tests.conftest import make_settings, throwaway_postgres_database
from tests.factories import book_payload, inspector, sign_in
from tests.ops.support import http, started

pytestmark = pytest.mark.slow

APP_TABLES = {
    "books",
    "book_authors",
    "book_subjects",
    "idempotency_records",
    "users",
    "auth_sessions",
    "refresh_tokens",
    "reviews",
    "account_tokens",
    "mail_outbox",
    "sign_in_addresses",
}
# FTS5 creates the virtual table and its shadow tables.
SQLITE_SEARCH_TABLES = {
    "books_fts",
    "books_fts_config",
    "books_fts_data",
    "books_fts_docsize",
    "books_fts_idx",
}
EXPECTED_TABLES = {
    "sqlite": APP_TABLES | SQLITE_SEARCH_TABLES | {"alembic_version"},
    "postgresql": APP_TABLES | {"alembic_version"},
}
BOOKS_INDEXES = {
    "ix_books_sort_title_id",
    "ix_books_published_sort_id",
    "ix_books_created_at_id",
    "ix_books_language",
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database that no other test uses."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    async with throwaway_postgres_database("bookshelf_migrations") as url:
        yield url


@pytest.fixture
async def fresh_engine(fresh_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(fresh_url))
    yield engine
    await engine.dispose()


def _foreign_keys(connection: Connection, table: str) -> list[tuple[str, str, str | None]]:
    """(column, referred table, ON DELETE) of each foreign key. SQLite's inspector drops the
    ON DELETE of a column added with ALTER TABLE, so SQLite's own pragma is asked there."""
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(f"PRAGMA foreign_key_list({table})").all()
        return sorted((row[3], row[2], row[6]) for row in rows)
    return sorted(
        (fk["constrained_columns"][0], fk["referred_table"], fk["options"].get("ondelete"))
        for fk in inspect(connection).get_foreign_keys(table)
    )


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    schema: dict[str, Any] = {"tables": tables}
    if "books" in tables:
        schema["books_columns"] = {c["name"] for c in inspector.get_columns("books")}
        schema["books_indexes"] = {i["name"] for i in inspector.get_indexes("books")}
        schema["books_unique"] = {
            tuple(u["column_names"]) for u in inspector.get_unique_constraints("books")
        }
        schema["author_fks"] = [
            (fk["referred_table"], fk["options"].get("ondelete"))
            for fk in inspector.get_foreign_keys("book_authors")
        ]
        schema["books_fks"] = _foreign_keys(connection, "books")
    if "reviews" in tables:
        schema["reviews_fks"] = _foreign_keys(connection, "reviews")
        schema["reviews_unique"] = {
            tuple(u["column_names"]) for u in inspector.get_unique_constraints("reviews")
        }
    return schema


async def database_schema(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(_schema)


async def assert_at_head(engine: AsyncEngine) -> None:
    schema = await database_schema(engine)
    assert schema["tables"] == EXPECTED_TABLES[engine.dialect.name]
    columns = schema["books_columns"]
    assert {"id", "isbn", "title", "sort_title", "published_sort", "version"} <= columns
    assert {"created_by", "updated_by", "rating_count", "rating_sum"} <= columns
    assert schema["books_fks"] == [
        ("created_by", "users", "SET NULL"),
        ("updated_by", "users", "SET NULL"),
    ]
    assert schema["reviews_fks"] == [
        ("book_id", "books", "CASCADE"),
        ("user_id", "users", "CASCADE"),
    ]
    assert ("book_id", "user_id") in schema["reviews_unique"]
    assert ("search_vector" in columns) is (engine.dialect.name == "postgresql")
    assert schema["books_indexes"] >= BOOKS_INDEXES
    assert ("isbn",) in schema["books_unique"]
    assert schema["author_fks"] == [("books", "CASCADE")]
    assert (await migrate.current_revision(engine),) == migrate.script_heads()


async def assert_at_base(engine: AsyncEngine) -> None:
    schema = await database_schema(engine)
    assert schema["tables"] == {"alembic_version"}
    assert await migrate.current_revision(engine) is None


def test_the_heads_readiness_compares_with_are_alembics() -> None:
    """``migrate.HEADS`` is written in the package (a serving worker never loads Alembic): a
    new migration must update it, and this says so."""
    from alembic.script import ScriptDirectory

    alembic_head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert alembic_head is not None
    assert migrate.HEADS == migrate.script_heads() == (alembic_head,), (
        "a migration was added: set db.migrate.HEADS to Alembic's heads"
    )


async def test_fresh_database_has_no_revision(fresh_engine: AsyncEngine) -> None:
    assert await migrate.current_revision(fresh_engine) is None
    assert (await database_schema(fresh_engine))["tables"] == set()


async def test_upgrade_downgrade_upgrade_round_trip_leaves_a_working_api(
    fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    await migrate.upgrade(fresh_engine)
    await assert_at_head(fresh_engine)

    await migrate.downgrade(fresh_engine, "base")
    await assert_at_base(fresh_engine)

    await migrate.upgrade(fresh_engine)
    await assert_at_head(fresh_engine)

    async with (
        started(make_settings(fresh_url)) as app,
        http(app, headers=await sign_in(app)) as client,
    ):
        created = await client.post(
            "/api/v1/books",
            json=book_payload(title="The Left Hand of Darkness", subjects=["classics"]),
        )
        assert created.status_code == 201, created.text
        book_id = created.json()["id"]

        found = await client.get("/api/v1/books", params={"q": "darkness left"})
        assert found.status_code == 200, found.text
        assert [item["id"] for item in found.json()["items"]] == [book_id]
        by_subject = await client.get("/api/v1/books", params={"subject": "Classics"})
        assert [item["id"] for item in by_subject.json()["items"]] == [book_id]

        renamed = await client.patch(f"/api/v1/books/{book_id}", json={"title": "The Dispossessed"})
        assert renamed.status_code == 200, renamed.text
        stale = await client.get("/api/v1/books", params={"q": "darkness"})
        assert stale.json()["items"] == []
        fresh = await client.get("/api/v1/books", params={"q": "dispossessed"})
        assert [item["id"] for item in fresh.json()["items"]] == [book_id]

        reviewed = await client.post(f"/api/v1/books/{book_id}/reviews", json={"rating": 4})
        assert reviewed.status_code == 201, reviewed.text
        book = (await client.get(f"/api/v1/books/{book_id}")).json()
        assert (book["rating_count"], book["rating_average"]) == (1, 4.0)


async def test_upgrade_is_idempotent(fresh_engine: AsyncEngine) -> None:
    await migrate.upgrade(fresh_engine)
    await migrate.upgrade(fresh_engine)
    await assert_at_head(fresh_engine)


async def test_downgrade_drops_data_and_upgrade_starts_empty(
    fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    await migrate.upgrade(fresh_engine)
    async with (
        started(make_settings(fresh_url)) as app,
        http(app, headers=await sign_in(app)) as client,
    ):
        assert (await client.post("/api/v1/books", json=book_payload())).status_code == 201

    await migrate.downgrade(fresh_engine, "base")
    await migrate.upgrade(fresh_engine)

    async with started(make_settings(fresh_url)) as app, http(app) as client:
        listed = await client.get("/api/v1/books")
        assert listed.status_code == 200
        assert listed.json() == {"items": [], "next_cursor": None}


async def test_app_with_auto_migrate_upgrades_a_fresh_database(fresh_url: str) -> None:
    # make_settings pins auto_migrate=False; copy with it turned on.
    settings = make_settings(fresh_url, auto_migrate=True)
    assert settings.should_auto_migrate is True
    async with started(settings) as app:
        async with inspector(app) as engine:
            await assert_at_head(engine)
        async with http(app, headers=await sign_in(app)) as client:
            assert (await client.post("/api/v1/books", json=book_payload())).status_code == 201


async def test_downgrade_to_0001_keeps_the_books_and_their_search(
    fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    await migrate.upgrade(fresh_engine)
    async with (
        started(make_settings(fresh_url)) as app,
        http(app, headers=await sign_in(app)) as client,
    ):
        kept = await client.post("/api/v1/books", json=book_payload(title="Solaris"))
        other = await client.post("/api/v1/books", json=book_payload(title="Roadside Picnic"))
        assert (kept.status_code, other.status_code) == (201, 201)
        book_id = kept.json()["id"]
        review = await client.post(f"/api/v1/books/{book_id}/reviews", json={"rating": 5})
        assert review.status_code == 201, review.text

    await migrate.downgrade(fresh_engine, "0001")

    assert await migrate.current_revision(fresh_engine) == "0001"
    schema = await database_schema(fresh_engine)
    assert schema["tables"] & {"users", "auth_sessions", "refresh_tokens", "reviews"} == set()
    assert schema["books_columns"].isdisjoint(
        {"created_by", "updated_by", "rating_count", "rating_sum"}
    )
    async with fresh_engine.connect() as connection:
        assert (await connection.exec_driver_sql("SELECT COUNT(*) FROM books")).scalar() == 2
        if fresh_engine.dialect.name == "sqlite":
            # The table rebuild must leave the FTS index pointing at the right rows.
            matched = await connection.exec_driver_sql(
                "SELECT books.id FROM books_fts JOIN books ON books.rowid = books_fts.rowid "
                "WHERE books_fts MATCH 'solaris'"
            )
            assert [uuid.UUID(row[0]) for row in matched] == [uuid.UUID(book_id)]

    await migrate.upgrade(fresh_engine)
    await assert_at_head(fresh_engine)
    async with started(make_settings(fresh_url)) as app, http(app) as client:
        found = await client.get("/api/v1/books", params={"q": "solaris"})
        assert [item["id"] for item in found.json()["items"]] == [book_id]
        book = found.json()["items"][0]
        assert (book["rating_count"], book["rating_average"]) == (0, None)
        assert book["created_by"] is None


async def test_upgrade_to_0003_normalises_old_book_text_to_nfc(
    fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    decomposed, composed = "Zu\u0308rich", "Z\u00fcrich"
    await migrate.upgrade(fresh_engine, "0002")
    book_id, plain_id = uuid.uuid4(), uuid.uuid4()
    async with fresh_engine.begin() as connection:
        for id_, text in ((book_id, decomposed), (plain_id, "Bern")):
            await connection.execute(
                insert(books).values(
                    id=id_,
                    title=f"Nights in {text}",
                    sort_title=f"nights in {text}".casefold(),
                    authors=[f"Anna {text}"],
                    subjects=[text],
                    description=f"{text} by night",
                    published_sort=date(9999, 12, 31),
                    version=1,
                    created_at=datetime.now(UTC),
                    updated_at=datetime.now(UTC),
                )
            )
            await connection.execute(
                insert(book_authors).values(
                    book_id=id_, position=0, name_key=f"anna {text}".casefold()
                )
            )

    await migrate.upgrade(fresh_engine)

    async with fresh_engine.connect() as connection:
        row = (await connection.execute(select(books).where(books.c.id == book_id))).one()
        keys = (await connection.execute(select(book_authors.c.name_key))).scalars().all()
    assert (row.title, row.sort_title) == (f"Nights in {composed}", f"nights in {composed}".lower())
    assert (row.authors, row.subjects) == ([f"Anna {composed}"], [composed])
    assert row.description == f"{composed} by night"
    assert row.version == 2  # a new representation, so a new ETag
    assert sorted(keys) == sorted([f"anna {composed}".lower(), "anna bern"])
    async with started(make_settings(fresh_url)) as app, http(app) as client:
        for params in ({"q": composed}, {"author": f"anna {composed}"}):
            found = await client.get("/api/v1/books", params=params)
            assert [item["id"] for item in found.json()["items"]] == [str(book_id)], params

    await migrate.downgrade(fresh_engine, "0002")

    assert await migrate.current_revision(fresh_engine) == "0002"
    async with fresh_engine.connect() as connection:
        titles = (await connection.execute(select(books.c.title))).scalars().all()
    assert sorted(titles) == ["Nights in Bern", f"Nights in {composed}"]


async def test_upgrade_to_0006_keeps_only_the_newest_live_token_of_a_purpose(
    fresh_engine: AsyncEngine,
) -> None:
    """Tokens issued at once by an older release could both stay alive; the unique index the
    upgrade makes needs one per account and purpose, so the older ones are marked used (cancel
    links are exempt: each notice keeps its own)."""
    await migrate.upgrade(fresh_engine, "0005")
    user_id, now = uuid.uuid4(), datetime.now(UTC)
    rows = [
        ("old-reset", "reset-password", now - timedelta(minutes=5)),
        ("new-reset", "reset-password", now),
        ("verify", "verify-email", now),
        ("cancel-1", "cancel-email-change", now - timedelta(minutes=5)),
        ("cancel-2", "cancel-email-change", now),
    ]
    async with fresh_engine.begin() as connection:
        await connection.execute(
            insert(users).values(
                id=user_id,
                email="tokens@example.org",
                password_hash="$argon2id$not-a-real-hash",
                role="reader",
                is_active=True,
                email_verified=True,
                created_at=now,
                updated_at=now,
            )
        )
        for token_hash, purpose, created_at in rows:
            await connection.execute(
                insert(account_tokens).values(
                    token_hash=token_hash,
                    user_id=user_id,
                    purpose=purpose,
                    email="tokens@example.org",
                    created_at=created_at,
                    expires_at=now + timedelta(hours=1),
                )
            )

    await migrate.upgrade(fresh_engine)

    async with fresh_engine.connect() as connection:
        live = (
            await connection.execute(
                select(account_tokens.c.token_hash).where(account_tokens.c.used_at.is_(None))
            )
        ).scalars()
        assert sorted(live) == ["cancel-1", "cancel-2", "new-reset", "verify"]
    with pytest.raises(IntegrityError):
        async with fresh_engine.begin() as connection:
            await connection.execute(
                insert(account_tokens).values(
                    token_hash="another-reset",
                    user_id=user_id,
                    purpose="reset-password",
                    email="tokens@example.org",
                    created_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
    await migrate.downgrade(fresh_engine, "0005")
    assert await migrate.current_revision(fresh_engine) == "0005"


async def test_upgrade_to_0007_dates_dead_mail_and_downgrade_empties_its_bodies(
    fresh_engine: AsyncEngine,
) -> None:
    """Messages dead before 0007 died when their last attempt was due; going back to 0006
    clears the bodies dead messages now keep, as that release expects; the outbox keeps its
    constraint and index through SQLite's table rebuild."""
    await migrate.upgrade(fresh_engine, "0006")
    due = datetime(2026, 11, 30, 12, tzinfo=UTC)
    columns = "id, kind, recipient, subject, body, status, attempts, created_at, next_attempt_at"
    async with fresh_engine.begin() as connection:
        for status, body in (("dead", None), ("pending", "a link")):
            await connection.execute(
                sa_text(
                    f"INSERT INTO mail_outbox ({columns}) VALUES (:id, 'test', "  # noqa: S608
                    "'r@example.org', 'Subject', :body, :status, 1, :due, :due)"
                ).bindparams(
                    bindparam("id", type_=Uuid()),
                    bindparam("due", type_=UtcDateTime()),
                ),
                {"id": uuid.uuid4(), "body": body, "status": status, "due": due},
            )

    await migrate.upgrade(fresh_engine)

    async with fresh_engine.begin() as connection:
        rows = {row.status: row for row in await connection.execute(select(mail_outbox))}
        assert (rows["dead"].dead_at, rows["pending"].dead_at) == (due, None)
        await connection.execute(update(mail_outbox).values(body="a kept link"))

    await migrate.downgrade(fresh_engine, "0006")

    async with fresh_engine.connect() as connection:
        bodies = dict(
            (await connection.execute(sa_text("SELECT status, body FROM mail_outbox"))).all()
        )
        assert bodies == {"dead": None, "pending": "a kept link"}
        indexes = await connection.run_sync(
            lambda sync: {index["name"] for index in inspect(sync).get_indexes("mail_outbox")}
        )
        assert "ix_mail_outbox_status_next_attempt_at" in indexes
    with pytest.raises(IntegrityError):
        async with fresh_engine.begin() as connection:
            await connection.execute(sa_text("UPDATE mail_outbox SET status = 'lost'"))
