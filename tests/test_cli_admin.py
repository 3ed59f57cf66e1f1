"""``bookshelf create-admin``: bootstrap the first admin, or promote an existing account.

CliRunner's stdin is not a TTY, so the command reads the password from one line of stdin. Each
test gets a database of its own (a fresh SQLite file, or a fresh PostgreSQL database), and what
the command did is checked in the database and by signing in through the API.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from bookshelf.cli import app as cli
from bookshelf.db.engine import create_engine
from bookshelf.main import create_app
from bookshelf.users.models import users
from tests.conftest import (
    make_settings,
    migrate_database,
)

pytestmark = pytest.mark.usefixtures("clean_environment")

API = "/api/v1"
EMAIL = "Root.Admin@Example.ORG"
NORMALISED = "root.admin@example.org"
PASSWORD = "a long bootstrap passphrase"


@pytest.fixture
def sqlite_file_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'admin.db'}"


@pytest.fixture
async def migrated_sqlite_url(sqlite_file_url: str) -> str:
    await migrate_database(sqlite_file_url)
    return sqlite_file_url


def create_admin(url: str, *args: str, stdin: str = PASSWORD + "\n") -> Result:
    return CliRunner().invoke(
        cli, ["create-admin", *args], input=stdin, env={"BOOKSHELF_DATABASE_URL": url}
    )


def assert_refused(result: Result, message: str) -> None:
    """Exit 2 with exactly one line on stderr: ``message``."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.splitlines() == [message]
    assert result.stdout == ""


async def _accounts(url: str) -> dict[str, Any]:
    engine = create_engine(make_settings(url))
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(select(users))).all()
    finally:
        await engine.dispose()
    return {row.email: row for row in rows}


def accounts(url: str) -> dict[str, Any]:
    """Every account in the database, by email."""
    return asyncio.run(_accounts(url))


async def _deactivate(url: str, email: str) -> None:
    engine = create_engine(make_settings(url))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(users).where(users.c.email == email).values(is_active=False)
            )
    finally:
        await engine.dispose()


async def _call_api(url: str, steps: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    app = create_app(make_settings(url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.request(method, path, **kwargs) for method, path, kwargs in steps]


def sign_in(url: str, email: str, password: str) -> httpx.Response:
    form = {"username": email, "password": password, "grant_type": "password"}
    response: httpx.Response = asyncio.run(
        _call_api(url, [("POST", f"{API}/auth/token", {"data": form})])
    )[0]
    return response


def list_users_as(url: str, email: str, password: str) -> httpx.Response:
    """Sign in through the API, then call the admins-only ``GET /users``."""
    token = sign_in(url, email, password)
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    response: httpx.Response = asyncio.run(
        _call_api(url, [("GET", f"{API}/users", {"headers": headers})])
    )[0]
    return response


def register(url: str, email: str, password: str) -> None:
    body = {"email": email, "password": password}
    response = asyncio.run(_call_api(url, [("POST", f"{API}/auth/register", {"json": body})]))[0]
    assert response.status_code == 202, response.text


def assert_admin_can_work(url: str, email: str, password: str) -> None:
    response = list_users_as(url, email, password)
    assert response.status_code == 200, response.text
    listed = {item["email"]: item for item in response.json()["items"]}
    assert listed[email]["role"] == "admin"


def test_creates_the_first_admin_on_a_fresh_sqlite_file(sqlite_file_url: str) -> None:
    result = create_admin(sqlite_file_url, "--email", EMAIL, "--display-name", "Root")

    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout == f"{NORMALISED} is an admin (created)\n"
    assert result.stderr == ""
    found = accounts(sqlite_file_url)  # the fresh file was migrated on the way (SQLite default)
    assert list(found) == [NORMALISED]
    account = found[NORMALISED]
    assert account.role == "admin"
    assert account.is_active is True
    assert account.display_name == "Root"
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert_admin_can_work(sqlite_file_url, NORMALISED, PASSWORD)


def test_the_password_is_the_line_without_its_line_ending(sqlite_file_url: str) -> None:
    result = create_admin(sqlite_file_url, "--email", EMAIL, stdin=PASSWORD + "\r\nignored\n")

    assert result.exit_code == 0, (result.output, result.exception)
    assert sign_in(sqlite_file_url, NORMALISED, PASSWORD).status_code == 200
    assert sign_in(sqlite_file_url, NORMALISED, PASSWORD + "\r").status_code == 400


def test_an_existing_account_is_refused_and_left_exactly_as_it_was(
    migrated_sqlite_url: str,
) -> None:
    """A stranger registered the address first: the command changes nothing of the account
    (not its role, password, activity or verification) and says so on one line."""
    register(migrated_sqlite_url, NORMALISED, "the reader's own passphrase")
    before = accounts(migrated_sqlite_url)[NORMALISED]

    result = create_admin(migrated_sqlite_url, "--email", EMAIL, stdin="a different passphrase\n")

    assert result.exit_code == 1, (result.output, result.exception)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"bookshelf: {NORMALISED} already has an account; nothing was changed (with --promote "
        "it becomes an admin with the password given here, signed out everywhere)"
    ]
    assert accounts(migrated_sqlite_url) == {NORMALISED: before}
    assert sign_in(migrated_sqlite_url, NORMALISED, "a different passphrase").status_code == 400
    assert (
        sign_in(migrated_sqlite_url, NORMALISED, "the reader's own passphrase").status_code == 200
    )


def test_promote_takes_the_account_over_with_the_given_password(migrated_sqlite_url: str) -> None:
    """Asked explicitly, the account becomes an active, verified admin whose password is the
    one typed here; its sessions end and the old password stops working."""
    register(migrated_sqlite_url, NORMALISED, "the reader's own passphrase")
    reader = sign_in(migrated_sqlite_url, NORMALISED, "the reader's own passphrase")
    assert reader.status_code == 200, reader.text
    asyncio.run(_deactivate(migrated_sqlite_url, NORMALISED))

    result = create_admin(
        migrated_sqlite_url, "--email", EMAIL, "--promote", stdin="a different passphrase\n"
    )

    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout == f"{NORMALISED} is an admin (promoted)\n"
    account = accounts(migrated_sqlite_url)[NORMALISED]
    assert (account.role, account.is_active, account.email_verified) == ("admin", True, True)
    assert (
        sign_in(migrated_sqlite_url, NORMALISED, "the reader's own passphrase").status_code == 400
    )
    refresh = {"refresh_token": reader.json()["refresh_token"]}
    [refreshed] = asyncio.run(
        _call_api(migrated_sqlite_url, [("POST", f"{API}/auth/refresh", {"json": refresh})])
    )
    assert refreshed.status_code == 400  # the reader's session was signed out
    assert_admin_can_work(migrated_sqlite_url, NORMALISED, "a different passphrase")


def test_promote_on_a_free_address_creates_the_admin(migrated_sqlite_url: str) -> None:
    result = create_admin(migrated_sqlite_url, "--email", EMAIL, "--promote")

    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout == f"{NORMALISED} is an admin (created)\n"
    assert_admin_can_work(migrated_sqlite_url, NORMALISED, PASSWORD)


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        (EMAIL, "too short", "must be at least 12 characters long"),
        (EMAIL, "qwerty123456", "is one of the most common passwords; choose another"),
        ("administrator@example.org", "Administrator", "must not be your email address"),
        (EMAIL, "", "must be at least 12 characters long"),
    ],
    ids=["short", "common", "email", "empty"],
)
def test_a_weak_password_is_refused_and_creates_nobody(
    migrated_sqlite_url: str, email: str, password: str, reason: str
) -> None:
    result = create_admin(migrated_sqlite_url, "--email", email, stdin=password + "\n")

    assert_refused(result, f"bookshelf: password {reason}")
    assert accounts(migrated_sqlite_url) == {}


def test_a_weak_password_does_not_demote_or_change_an_existing_account(
    migrated_sqlite_url: str,
) -> None:
    register(migrated_sqlite_url, NORMALISED, "the reader's own passphrase")

    result = create_admin(migrated_sqlite_url, "--email", EMAIL, stdin="short\n")

    assert_refused(result, "bookshelf: password must be at least 12 characters long")
    assert accounts(migrated_sqlite_url)[NORMALISED].role == "reader"


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.org", "nobody@", ""])
def test_an_invalid_email_is_refused_and_creates_nobody(
    migrated_sqlite_url: str, email: str
) -> None:
    result = create_admin(migrated_sqlite_url, "--email", email)

    assert result.exit_code == 2, (result.output, result.exception)
    [line] = result.stderr.splitlines()
    assert line.startswith("bookshelf: --email: ")
    assert len(line) > len("bookshelf: --email: ")
    assert accounts(migrated_sqlite_url) == {}


def test_the_email_option_is_required(sqlite_file_url: str) -> None:
    result = create_admin(sqlite_file_url)

    assert result.exit_code == 2
    assert "--email" in result.stderr
    assert not Path(sqlite_file_url.removeprefix("sqlite:///")).exists()


def test_creates_an_admin_on_a_postgres_database_after_migrate(fresh_postgres_url: str) -> None:
    env = {"BOOKSHELF_DATABASE_URL": fresh_postgres_url}
    migrated = CliRunner().invoke(cli, ["migrate"], env=env)
    assert migrated.exit_code == 0, (migrated.output, migrated.exception)

    result = create_admin(fresh_postgres_url, "--email", EMAIL)

    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout == f"{NORMALISED} is an admin (created)\n"
    account = accounts(fresh_postgres_url)[NORMALISED]
    assert (account.role, account.is_active) == ("admin", True)
    assert account.password_hash.startswith("$argon2id$")
    assert_admin_can_work(fresh_postgres_url, NORMALISED, PASSWORD)

    hash_before = accounts(fresh_postgres_url)[NORMALISED].password_hash
    again = create_admin(fresh_postgres_url, "--email", NORMALISED, stdin="another passphrase\n")
    assert again.exit_code == 1, (again.output, again.exception)
    assert list(accounts(fresh_postgres_url)) == [NORMALISED]
    assert accounts(fresh_postgres_url)[NORMALISED].password_hash == hash_before

    promoted = create_admin(
        fresh_postgres_url, "--email", NORMALISED, "--promote", stdin="another passphrase\n"
    )
    assert promoted.exit_code == 0, (promoted.output, promoted.exception)
    assert promoted.stdout == f"{NORMALISED} is an admin (promoted)\n"
    assert_admin_can_work(fresh_postgres_url, NORMALISED, "another passphrase")


def test_an_unmigrated_postgres_database_is_a_one_line_error(fresh_postgres_url: str) -> None:
    """PostgreSQL is not migrated automatically: the command says what failed, no traceback."""
    result = create_admin(fresh_postgres_url, "--email", EMAIL)

    assert result.exit_code == 1, (result.output, result.exception)
    [line] = result.stderr.splitlines()
    assert line.startswith("bookshelf: cannot use the database at postgresql+asyncpg://")
    assert "users" in line
    assert "Traceback" not in result.output
