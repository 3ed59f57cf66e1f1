"""The security matrix: every operation of the OpenAPI document, for every kind of caller.

The operations come from the app's own schema, and ``POLICY`` says who may call each one; a route
added without a policy entry (or an entry left behind by a removed route) fails the suite. Each
(operation, identity) pair is its own test, on SQLite and on PostgreSQL.

Every request gets fresh state: a new sign-in session for the caller (so a logout does not sign
out later tests), a new book for ``{book_id}`` and a new review for ``{review_id}`` (written by
the caller when the caller is a real user, so "your own review" paths succeed). That makes the
allowed calls deterministic, so they are checked for their exact success status.

The app runs for the whole module (one database per backend) in pytest-asyncio's module-scoped
event loop, which the tests share, so accounts are created once per backend.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import update

from bookshelf.auth import account_tokens
from bookshelf.auth import service as auth_service
from bookshelf.auth.account_tokens import Purpose
from bookshelf.auth.tokens import key_id
from bookshelf.db.database import Database, unit_of_work
from bookshelf.main import create_app
from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from tests.conftest import (
    BACKENDS,
    make_settings,
    migrate_database,
    new_postgres_database,
    remove_postgres_database,
)
from tests.factories import BOOKS, assert_problem, book_payload, create_account

API = "/api/v1"
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}

# Who may call what. "token_endpoint": sign-up and sign-in, which need no bearer token.
POLICY: dict[tuple[str, str], str] = {
    ("GET", f"{API}/books"): "public",
    ("POST", f"{API}/books"): "editor",
    ("GET", f"{API}/books/export"): "public",
    ("POST", f"{API}/books/import"): "editor",
    ("GET", f"{API}/books/{{book_id}}"): "public",
    ("PATCH", f"{API}/books/{{book_id}}"): "editor",
    ("DELETE", f"{API}/books/{{book_id}}"): "admin",
    ("GET", f"{API}/books/{{book_id}}/reviews"): "public",
    ("POST", f"{API}/books/{{book_id}}/reviews"): "signed_in",
    ("GET", f"{API}/books/{{book_id}}/reviews/{{review_id}}"): "public",
    ("PATCH", f"{API}/books/{{book_id}}/reviews/{{review_id}}"): "signed_in",
    ("DELETE", f"{API}/books/{{book_id}}/reviews/{{review_id}}"): "signed_in",
    ("POST", f"{API}/auth/register"): "token_endpoint",
    ("POST", f"{API}/auth/token"): "token_endpoint",
    ("POST", f"{API}/auth/refresh"): "token_endpoint",
    ("POST", f"{API}/auth/logout"): "signed_in",
    ("POST", f"{API}/auth/logout-everywhere"): "signed_in",
    ("POST", f"{API}/auth/email-change/cancel"): "token_endpoint",
    ("POST", f"{API}/auth/verify-email"): "token_endpoint",
    ("POST", f"{API}/auth/verify-email/resend"): "token_endpoint",
    ("POST", f"{API}/auth/password-reset"): "token_endpoint",
    ("POST", f"{API}/auth/password-reset/confirm"): "token_endpoint",
    ("GET", f"{API}/users/me"): "signed_in",
    ("PATCH", f"{API}/users/me"): "signed_in",
    ("GET", f"{API}/users"): "admin",
    ("PATCH", f"{API}/users/{{user_id}}"): "admin",
}
UNPROTECTED = {"public", "token_endpoint"}
REQUIRED_RANK = {"signed_in": 0, "editor": 1, "admin": 2}
RANK = {"reader": 0, "editor": 1, "admin": 2}

# The status of an allowed call (with the fresh state each request gets).
SUCCESS: dict[tuple[str, str], int] = {
    operation: 201 if operation[0] == "POST" else 204 if operation[0] == "DELETE" else 200
    for operation in POLICY
}
SUCCESS[("POST", f"{API}/auth/token")] = 200
SUCCESS[("POST", f"{API}/auth/refresh")] = 200
SUCCESS[("POST", f"{API}/auth/logout")] = 204
SUCCESS[("POST", f"{API}/auth/logout-everywhere")] = 204
SUCCESS[("POST", f"{API}/auth/email-change/cancel")] = 204
SUCCESS[("POST", f"{API}/books/import")] = 200  # one result per line, created or not
SUCCESS[("POST", f"{API}/auth/register")] = 202
SUCCESS[("POST", f"{API}/auth/verify-email")] = 204
SUCCESS[("POST", f"{API}/auth/verify-email/resend")] = 202
SUCCESS[("POST", f"{API}/auth/password-reset")] = 202
SUCCESS[("POST", f"{API}/auth/password-reset/confirm")] = 204

IDENTITIES = ("anonymous", "reader", "editor", "admin", "deactivated", "expired", "tampered")
# Why each bad token is refused (in WWW-Authenticate's error_description).
BAD_TOKEN_REASONS = {
    "deactivated": "the account is deactivated",
    "expired": "the access token has expired",
    "tampered": "the access token is malformed or its signature is wrong",
}


# openapi() needs no database: the parameter list is built at import time.
SCHEMA: dict[str, Any] = create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()
OPERATIONS = [
    (method.upper(), path)
    for path, item in SCHEMA["paths"].items()
    for method in item
    if method in HTTP_METHODS
]
BODY_OPERATIONS = {
    (method.upper(), path)
    for path, item in SCHEMA["paths"].items()
    for method, spec in item.items()
    if method in HTTP_METHODS and "requestBody" in spec
}


ACCOUNTS = (
    ("reader", Role.READER),
    ("editor", Role.EDITOR),
    ("admin", Role.ADMIN),
    ("deactivated", Role.ADMIN),  # even an admin is nobody once deactivated
    ("curator", Role.ADMIN),  # creates the books and reviews that requests act on
    ("author", Role.READER),  # writes the reviews of callers who are not users
    ("target", Role.READER),  # the account that /users/{user_id} and sign-in act on
    ("resetter", Role.READER),  # whose password the reset links set
    ("canceller", Role.READER),  # whose address change the cancel links cancel
    ("unverified", Role.READER),  # has not followed the verification link
)


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    password: str


class World:
    """One backend's running app, its accounts, and helpers that make fresh state in it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.users: dict[str, User] = {}

    @property
    def database(self) -> Database:
        database: Database = self.app.state.database
        return database

    async def setup(self) -> None:
        for name, role in ACCOUNTS:
            account = await create_account(
                self.database, self.app.state.auth, role, display_name=name.title()
            )
            self.users[name] = User(account.id, account.email, account.password)
        async with unit_of_work(self.database, write=True) as connection:
            deactivated = self.users["deactivated"].id
            await connection.execute(
                update(users).where(users.c.id == deactivated).values(is_active=False)
            )
            unverified = self.users["unverified"].id
            await connection.execute(
                update(users).where(users.c.id == unverified).values(email_verified=False)
            )

    async def account_token(self, name: str, purpose: Purpose) -> str:
        """A fresh mailed-link token of ``name`` (as if taken from the mail)."""
        async with unit_of_work(self.database, write=True) as connection:
            return await account_tokens.issue(
                connection,
                user_id=self.users[name].id,
                purpose=purpose,
                email=self.users[name].email,
                ttl=timedelta(hours=1),
            )

    async def session(self, name: str) -> tuple[str, str, uuid.UUID]:
        """A fresh sign-in of ``name``: (access token, refresh token, session id)."""
        async with unit_of_work(self.database, write=True) as connection:
            tokens = await auth_service.start_session(
                connection, self.app.state.auth, self.users[name].id
            )
        session_id = self.app.state.auth.signer.verify(tokens.access_token).session_id
        return tokens.access_token, tokens.refresh_token, session_id

    async def handmade_token(self, name: str, *, expires_in: timedelta) -> str:
        """An access token signed like the app's own, for a real user and session."""
        settings = self.app.state.settings
        secret = settings.jwt_secrets[0]
        _, _, session_id = await self.session(name)
        now = datetime.now(UTC)
        claims = {
            "sub": str(self.users[name].id),
            "sid": str(session_id),
            "jti": uuid.uuid4().hex,
            "iss": settings.jwt_issuer,
            "aud": settings.jwt_audience,
            "iat": int((now + expires_in - timedelta(minutes=15)).timestamp()),
            "exp": int((now + expires_in).timestamp()),
        }
        return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key_id(secret)})

    async def token_for(self, identity: str) -> str | None:
        if identity == "anonymous":
            return None
        if identity == "expired":
            return await self.handmade_token("reader", expires_in=-timedelta(minutes=1))
        if identity == "tampered":
            return tampered((await self.session("reader"))[0])
        return (await self.session(identity))[0]

    async def headers_of(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {(await self.session(name))[0]}"}

    async def new_book(self) -> str:
        response = await self.client.post(
            BOOKS, json=book_payload(), headers=await self.headers_of("curator")
        )
        assert response.status_code == 201, response.text
        book_id: str = response.json()["id"]
        return book_id

    async def new_review(self, book_id: str, author: str) -> str:
        response = await self.client.post(
            f"{BOOKS}/{book_id}/reviews", json={"rating": 3}, headers=await self.headers_of(author)
        )
        assert response.status_code == 201, response.text
        review_id: str = response.json()["id"]
        return review_id


def tampered(token: str) -> str:
    """The token with the first character of its signature changed (every bit of it counts,
    unlike the last one's padding bits)."""
    header, payload, signature = token.split(".")
    first = "B" if signature[0] == "A" else "A"
    return f"{header}.{payload}.{first}{signature[1:]}"


Body = Callable[[World], Awaitable[dict[str, Any]]]


def _fixed(make: Callable[[], dict[str, Any]]) -> Body:
    """A body that needs nothing from the world (made fresh for each request)."""

    async def body(_: World) -> dict[str, Any]:
        return make()

    return body


def _new_account() -> dict[str, Any]:
    return {
        "json": {
            "email": f"new-{uuid.uuid4().hex[:8]}@example.org",
            "password": f"another long passphrase {uuid.uuid4().hex}",
        }
    }


async def _sign_in(world: World) -> dict[str, Any]:
    target = world.users["target"]
    return {"data": {"username": target.email, "password": target.password}}


# The body of a valid call, as httpx keyword arguments, for each operation that takes one.
async def _refresh(world: World) -> dict[str, Any]:
    return {"json": {"refresh_token": (await world.session("target"))[1]}}


def _ndjson_books() -> dict[str, Any]:
    return {
        "content": json.dumps(book_payload()) + "\n",
        "headers": {"Content-Type": "application/x-ndjson"},
    }


async def _verify(world: World) -> dict[str, Any]:
    return {"json": {"token": await world.account_token("target", Purpose.VERIFY_EMAIL)}}


async def _reset(world: World) -> dict[str, Any]:
    token = await world.account_token("resetter", Purpose.RESET_PASSWORD)
    return {"json": {"token": token, "new_password": f"a new passphrase {uuid.uuid4().hex}"}}


async def _cancel(world: World) -> dict[str, Any]:
    return {"json": {"token": await world.account_token("canceller", Purpose.CANCEL_EMAIL_CHANGE)}}


def _address() -> dict[str, Any]:
    return {"json": {"email": f"someone-{uuid.uuid4().hex[:8]}@example.org"}}


BODIES: dict[tuple[str, str], Body] = {
    ("POST", f"{API}/books"): _fixed(lambda: {"json": book_payload()}),
    ("POST", f"{API}/books/import"): _fixed(_ndjson_books),
    ("PATCH", f"{API}/books/{{book_id}}"): _fixed(lambda: {"json": {"description": "Changed."}}),
    ("POST", f"{API}/books/{{book_id}}/reviews"): _fixed(lambda: {"json": {"rating": 4}}),
    ("PATCH", f"{API}/books/{{book_id}}/reviews/{{review_id}}"): _fixed(
        lambda: {"json": {"rating": 2}}
    ),
    ("POST", f"{API}/auth/register"): _fixed(_new_account),
    ("POST", f"{API}/auth/token"): _sign_in,
    ("POST", f"{API}/auth/refresh"): _refresh,
    ("POST", f"{API}/auth/verify-email"): _verify,
    ("POST", f"{API}/auth/verify-email/resend"): _fixed(_address),
    ("POST", f"{API}/auth/password-reset"): _fixed(_address),
    ("POST", f"{API}/auth/password-reset/confirm"): _reset,
    ("POST", f"{API}/auth/email-change/cancel"): _cancel,
    ("PATCH", f"{API}/users/me"): _fixed(lambda: {"json": {"display_name": "Renamed"}}),
    ("PATCH", f"{API}/users/{{user_id}}"): _fixed(lambda: {"json": {"role": "reader"}}),
}


async def url_for(world: World, path: str, identity: str) -> str:
    """``path`` with its parameters filled with things that exist (created for this request)."""
    values: dict[str, str] = {}
    if "{book_id}" in path:
        values["book_id"] = await world.new_book()
    if "{review_id}" in path:
        author = identity if identity in RANK else "author"
        values["review_id"] = await world.new_review(values["book_id"], author)
    if "{user_id}" in path:
        values["user_id"] = str(world.users["target"].id)
    return path.format(**values)


@asynccontextmanager
async def running_world(
    backend: str, tmp_path_factory: pytest.TempPathFactory, name: str
) -> AsyncIterator[World]:
    """The app on a migrated database of its own (``name`` names it), its accounts made."""
    database = None
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp(name) / f"{name}.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        database = f"bookshelf_{name}_{uuid.uuid4().hex[:12]}"
        url = await new_postgres_database(database)
    try:
        await migrate_database(url)
        app = create_app(make_settings(url, require_verified_email=True))
        async with app.router.lifespan_context(app):
            state = World(app)
            async with state.client:
                await state.setup()
                yield state
    finally:
        if database is not None:
            await remove_postgres_database(database)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The app running for the whole module."""
    async with running_world(request.param, tmp_path_factory, "matrix") as state:
        yield state


def test_every_operation_has_a_policy_and_every_policy_an_operation() -> None:
    assert sorted(set(OPERATIONS) - set(POLICY)) == [], "operations without a policy entry"
    assert sorted(set(POLICY) - set(OPERATIONS)) == [], "policy entries without an operation"
    assert len(OPERATIONS) == len(set(OPERATIONS))
    assert set(POLICY.values()) <= {"public", "token_endpoint", *REQUIRED_RANK}


def test_every_operation_with_a_request_body_gets_one() -> None:
    assert set(BODIES) == BODY_OPERATIONS


def test_the_documented_security_matches_the_policy() -> None:
    """Swagger UI's padlock and the documented 401/403 answers follow the policy."""
    for method, path in OPERATIONS:
        spec = SCHEMA["paths"][path][method.lower()]
        policy = POLICY[(method, path)]
        secured = spec.get("security") == [{"OAuth2PasswordBearer": []}]
        assert secured == (policy not in UNPROTECTED), (method, path)
        if policy not in UNPROTECTED:
            assert "401" in spec["responses"], (method, path)
        if policy in {"editor", "admin"}:
            assert "403" in spec["responses"], (method, path)


def _expect_bad_token(response: httpx.Response, identity: str) -> None:
    assert_problem(response, 401, "invalid-token")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{BAD_TOKEN_REASONS[identity]}"' in challenge


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("operation", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.asyncio(loop_scope="module")
async def test_access(world: World, operation: tuple[str, str], identity: str) -> None:
    method, path = operation
    policy = POLICY.get(operation)
    if policy is None:
        pytest.fail(f"{method} {path} has no entry in POLICY")
    url = await url_for(world, path, identity)
    token = await world.token_for(identity)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = await BODIES[operation](world) if operation in BODIES else {}
    headers.update(body.pop("headers", {}))
    response = await world.client.request(method, url, headers=headers, **body)
    success = SUCCESS[operation]

    if policy in UNPROTECTED:
        if identity in BAD_TOKEN_REASONS and response.status_code == 401:
            _expect_bad_token(response, identity)  # refusing a bad token is allowed too
        else:
            assert response.status_code == success, response.text
        return
    if identity == "anonymous":
        assert_problem(response, 401, "not-authenticated")
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert "error=" not in challenge  # no credentials is not an error (RFC 6750 3.1)
        return
    if identity in BAD_TOKEN_REASONS:
        _expect_bad_token(response, identity)
        return
    if RANK[identity] < REQUIRED_RANK[policy]:
        problem = assert_problem(response, 403, "forbidden")
        assert problem["detail"] == f"This needs the {policy} role."
        assert "WWW-Authenticate" not in response.headers
        return
    assert response.status_code == success, response.text


# What an unverified account may still do when BOOKSHELF_REQUIRE_VERIFIED_EMAIL is on.
UNVERIFIED_MAY = {("POST", f"{API}/auth/logout"), ("POST", f"{API}/auth/logout-everywhere")}
READER_OPERATIONS = [
    operation
    for operation in OPERATIONS
    if POLICY[operation] == "signed_in" and operation[0] not in {"GET", "HEAD"}
]


@pytest.mark.parametrize(
    "operation", READER_OPERATIONS, ids=[f"{m} {p}" for m, p in READER_OPERATIONS]
)
@pytest.mark.asyncio(loop_scope="module")
async def test_an_unverified_account_reads_but_does_not_write(
    world: World, operation: tuple[str, str]
) -> None:
    method, path = operation
    url = await url_for(world, path, "unverified")
    headers = await world.headers_of("unverified")
    body = await BODIES[operation](world) if operation in BODIES else {}

    response = await world.client.request(method, url, headers=headers, **body)
    reading = await world.client.get(
        f"{API}/users/me", headers=await world.headers_of("unverified")
    )

    if operation in UNVERIFIED_MAY:
        assert response.status_code == SUCCESS[operation], response.text
    else:
        assert_problem(response, 403, "email-not-verified")
    assert reading.status_code == 200, reading.text
    assert reading.json()["email_verified"] is False


@pytest.mark.asyncio(loop_scope="module")
async def test_a_handmade_token_is_accepted_until_it_expires(world: World) -> None:
    """The "expired" identity is refused for its expiry alone: the same token, still valid,
    works."""
    valid = await world.handmade_token("reader", expires_in=timedelta(minutes=5))
    response = await world.client.get(
        f"{API}/users/me", headers={"Authorization": f"Bearer {valid}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(world.users["reader"].id)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_untampered_token_works(world: World) -> None:
    token = (await world.session("reader"))[0]
    assert tampered(token) != token
    for sent, status in ((token, 200), (tampered(token), 401)):
        response = await world.client.get(
            f"{API}/users/me", headers={"Authorization": f"Bearer {sent}"}
        )
        assert response.status_code == status, response.text


@pytest.mark.asyncio(loop_scope="module")
async def test_posting_a_book_needs_the_editor_role(world: World) -> None:
    """Done when: no token is 401, a reader is 403, an editor is 201 (and the book is theirs)."""
    anonymous = await world.client.post(BOOKS, json=book_payload())
    assert_problem(anonymous, 401, "not-authenticated")
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    reader = await world.client.post(
        BOOKS, json=book_payload(), headers=await world.headers_of("reader")
    )
    assert_problem(reader, 403, "forbidden")

    editor = await world.client.post(
        BOOKS, json=book_payload(), headers=await world.headers_of("editor")
    )
    assert editor.status_code == 201, editor.text
    assert editor.json()["created_by"] == str(world.users["editor"].id)
