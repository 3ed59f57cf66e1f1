"""The bench's own database: created on the local PostgreSQL, migrated and seeded by the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

EDITOR_EMAIL = "bench-editor@example.com"
EDITOR_PASSWORD = "bench-editor-password-2026"  # noqa: S105 - a throw-away bench account


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        rows: list[asyncpg.Record] = await connection.fetch(query)
        return rows
    finally:
        await connection.close()


class BenchDatabase:
    """A database of the bench's own, named ``name``, on the server of ``admin_url``."""

    def __init__(self, admin_url: str, name: str) -> None:
        self.name = name
        self.dsn = _dsn(admin_url, name)
        self._admin_dsn = _dsn(admin_url)
        # The URL Bookshelf is configured with (its settings pick the async driver).
        self.url = make_url(self.dsn).render_as_string(hide_password=False)

    def recreate(self) -> None:
        asyncio.run(
            _execute(
                self._admin_dsn,
                f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)',
                f'CREATE DATABASE "{self.name}"',
            )
        )

    def books_if_exists(self) -> int | None:
        """How many books the database holds, or None when there is no such database (or no
        books table in it)."""
        exists = asyncio.run(
            _fetch(self._admin_dsn, f"SELECT 1 FROM pg_database WHERE datname = '{self.name}'")
        )
        if not exists:
            return None
        tables = asyncio.run(_fetch(self.dsn, "SELECT to_regclass('books') IS NOT NULL AS found"))
        return self.count_books() if tables[0]["found"] else None

    def drop(self) -> None:
        asyncio.run(
            _execute(self._admin_dsn, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        )

    def cli(self, *arguments: str, env: dict[str, str], stdin: str | None = None) -> None:
        """Run ``bookshelf <arguments>`` against this database."""
        subprocess.run(
            [sys.executable, "-m", "bookshelf", *arguments],
            env=env,
            input=stdin,
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def seed(self, books: int, *, env: dict[str, str], random_seed: int) -> None:
        self.cli("seed", "--books", str(books), "--seed", str(random_seed), env=env)
        self.analyze()

    def analyze(self) -> None:
        asyncio.run(_execute(self.dsn, "VACUUM ANALYZE"))

    def create_editor(self, env: dict[str, str]) -> None:
        # An admin outranks an editor: it may create and change books.
        self.cli("create-admin", "--email", EDITOR_EMAIL, env=env, stdin=EDITOR_PASSWORD + "\n")

    def count_books(self) -> int:
        rows = asyncio.run(_fetch(self.dsn, "SELECT count(*) AS n FROM books"))
        return int(rows[0]["n"])

    def sample_ids(self, count: int) -> list[str]:
        rows = asyncio.run(
            _fetch(self.dsn, f"SELECT id FROM books TABLESAMPLE SYSTEM (10) LIMIT {count}")
        )
        return [str(row["id"]) for row in rows]

    def one_book_search(self) -> str:
        """What a reader looking for one book types: a word of its title and its author's
        surname (an author with one book in the catalog, as most authors are)."""
        rows = asyncio.run(
            _fetch(
                self.dsn,
                "SELECT books.title, book_authors.name_key FROM book_authors "
                "JOIN books ON books.id = book_authors.book_id WHERE book_authors.name_key IN "
                "(SELECT name_key FROM book_authors GROUP BY name_key HAVING count(*) = 1) "
                "ORDER BY books.id LIMIT 1",
            )
        )
        title_word = rows[0]["title"].split()[-1].lower()
        surname = rows[0]["name_key"].split()[-1]
        return f"{title_word} {surname}"

    def versions(self, ids: list[str]) -> dict[str, int]:
        quoted = ",".join(f"'{book_id}'" for book_id in ids)
        rows = asyncio.run(
            _fetch(self.dsn, f"SELECT id, version FROM books WHERE id IN ({quoted})")
        )
        return {str(row["id"]): int(row["version"]) for row in rows}


def sign_in(base_url: str) -> str:
    """An access token for the bench's editor, from Bookshelf's own token endpoint."""
    body = f"username={EDITOR_EMAIL}&password={EDITOR_PASSWORD}".encode()
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        base_url + "/api/v1/auth/token",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        token: str = json.load(response)["access_token"]
        return token


def get_json(base_url: str, path: str) -> Any:
    with urllib.request.urlopen(base_url + path, timeout=30) as response:  # noqa: S310
        return json.load(response)
