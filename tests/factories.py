"""Small builders of valid request bodies; override only what a test is about."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import ColumnElement, FromClause, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.auth import service as auth_service
from bookshelf.auth.service import Auth
from bookshelf.books.isbn import isbn13_check_digit
from bookshelf.db.database import Database, unit_of_work
from bookshelf.db.engine import create_engine
from bookshelf.users.schemas import Role

_counter = itertools.count(1)


def unique_isbn() -> str:
    """A valid ISBN-13 no other call in this process returns."""
    core = f"979{random.randrange(10**8, 10**9):09d}"
    return core + isbn13_check_digit(core)


def book_payload(**overrides: Any) -> dict[str, Any]:
    number = next(_counter)
    payload: dict[str, Any] = {
        "title": f"Test Book {number}",
        "authors": ["Ursula K. Le Guin"],
        "isbn": unique_isbn(),
        "publisher": "Ace Books",
        "published_date": "1969-03",
        "page_count": 286,
        "language": "en",
        "subjects": ["science-fiction"],
        "description": "A test book.",
    }
    payload.update(overrides)
    return payload


BOOKS = "/api/v1/books"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


async def create_book(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Create a book through the API (asserting 201) and return its JSON."""
    response = await client.post(BOOKS, json=book_payload(**overrides))
    assert response.status_code == 201, response.text
    book: dict[str, Any] = response.json()
    return book


def assert_problem(
    response: httpx.Response, status: int, problem_type: str, *, instance: str | None = None
) -> dict[str, Any]:
    """Assert an RFC 9457 problem; ``problem_type`` is a Bookshelf slug or a full URI."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert set(problem) >= PROBLEM_KEYS, problem
    expected = problem_type if ":" in problem_type else f"urn:bookshelf:problem:{problem_type}"
    assert problem["type"] == expected
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    if instance is not None:
        assert problem["instance"] == instance
    return problem


@dataclass(frozen=True)
class Account:
    """A user created for a test, signed in: a valid access token and refresh token."""

    id: uuid.UUID
    email: str
    password: str
    role: Role
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


async def create_account(
    database: Database,
    auth: Auth,
    role: Role = Role.READER,
    *,
    display_name: str | None = None,
) -> Account:
    """A new account made through the service (no HTTP round trip) and signed in: the one way
    tests get a user. ``database`` and ``auth`` are a started app's, or built from its
    settings."""
    tag = uuid.uuid4().hex[:12]
    email = f"{role.value}-{tag}@example.org"
    password = f"a long test passphrase {uuid.uuid4().hex}"
    password_hash = await auth.hasher.hash(password)
    async with unit_of_work(database, write=True) as connection:
        user = await auth_service.create_user(
            connection,
            email=email,
            password_hash=password_hash,
            display_name=display_name or f"{role.value.title()} {tag[:6]}",
            role=role,
            email_verified=True,
        )
        tokens = await auth_service.start_session(connection, auth, user.id)
    return Account(user.id, email, password, role, tokens.access_token, tokens.refresh_token)


async def app_account(
    app: FastAPI, role: Role = Role.READER, *, display_name: str | None = None
) -> Account:
    """``create_account`` in a started app's database."""
    return await create_account(app.state.database, app.state.auth, role, display_name=display_name)


async def sign_in(app: FastAPI, role: Role = Role.ADMIN) -> dict[str, str]:
    """The ``Authorization`` header of a new account with ``role`` in a started app."""
    return (await app_account(app, role)).headers


@asynccontextmanager
async def inspector(app: FastAPI) -> AsyncIterator[AsyncEngine]:
    """A SQLAlchemy engine on a started app's database, apart from the app's own pool."""
    engine = create_engine(app.state.settings)
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def connected(target: AsyncEngine | Database, *, write: bool) -> AsyncIterator[Any]:
    """A connection of the app's own data layer (``Database``) or of an inspecting engine;
    with ``write``, in a transaction committed when the block ends."""
    if isinstance(target, Database):
        async with unit_of_work(target, write=write) as connection:
            yield connection
    else:
        async with target.begin() if write else target.connect() as connection:
            yield connection


async def count_rows(
    engine: AsyncEngine | Database, table: FromClause, *where: ColumnElement[bool]
) -> int:
    """How many rows of ``table`` (matching every ``where``) are really in the database."""
    async with connected(engine, write=False) as connection:
        count = await connection.scalar(select(func.count()).select_from(table).where(*where))
    assert count is not None
    return int(count)


# --- accounts and reviews --------------------------------------------------------------------

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
USERS = "/api/v1/users"
USER_KEYS = {
    *("id", "email", "display_name", "role", "is_active", "email_verified"),
    *("created_at", "updated_at"),
}
REVIEW_KEYS = {
    *("id", "book_id", "user_id", "author_name", "rating", "body"),
    *("created_at", "updated_at"),
}
PASSPHRASE = "a perfectly long passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """The OAuth2 password grant, sent as a form."""
    form = {"username": email, "password": password, "grant_type": "password"}
    return await client.post(TOKEN, data=form)


async def register(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    number = next(_counter)
    payload = {"email": f"new-{number}-{uuid.uuid4().hex[:6]}@example.org", "password": PASSPHRASE}
    payload.update(overrides)
    return await client.post(REGISTER, json=payload)


def reviews_path(book_id: str) -> str:
    return f"{BOOKS}/{book_id}/reviews"


async def post_review(
    client: httpx.AsyncClient, book_id: str, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    """Create a review (asserting 201) with ``headers``' token and return its JSON."""
    response = await client.post(
        reviews_path(book_id), json={"rating": 4, **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    review: dict[str, Any] = response.json()
    return review


def assert_unauthenticated(response: httpx.Response, *, invalid_token: bool) -> dict[str, Any]:
    """A 401 problem with a Bearer challenge; ``error="invalid_token"`` iff a token was sent."""
    slug = "invalid-token" if invalid_token else "not-authenticated"
    problem = assert_problem(response, 401, slug)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer "), challenge
    assert ('error="invalid_token"' in challenge) is invalid_token, challenge
    return problem
