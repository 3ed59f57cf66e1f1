"""The web app's security matrix: every page and form, for every kind of visitor.

The routes come from the app (``web.install.PAGE_ROUTERS``) and ``POLICY`` says who may use
each; a route without an entry (or an entry without a route) fails the suite. Each (route,
visitor) pair is its own test, on SQLite and on PostgreSQL, with fresh state for each request
(a new session for the visitor, a new book, a new review written by the visitor when the
visitor is a real user, fresh mailed-link tokens), so an allowed request is checked for its
exact success status. What is refused: a visitor who is not signed in (or whose session is
over, or whose cookie is forged) is sent to the sign-in page; a role that is not enough gets
the 403 page. Posts carry the form's CSRF token, as the visitor's browser would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update

from bookshelf.auth import sessions
from bookshelf.auth.account_tokens import Purpose
from bookshelf.db.database import unit_of_work
from bookshelf.users.models import users
from bookshelf.web.install import PAGE_ROUTERS
from tests.conftest import (
    BACKENDS,
)
from tests.factories import book_payload
from tests.test_security_matrix import World, running_world, tampered
from tests.web.support import Browser

POLICY: dict[tuple[str, str], str] = {
    ("GET", "/"): "public",
    ("GET", "/static/{name}"): "public",
    ("GET", "/books/{book_id}"): "public",
    ("POST", "/books/{book_id}/reviews"): "signed_in",
    ("POST", "/books/{book_id}/reviews/{review_id}"): "signed_in",
    ("POST", "/books/{book_id}/reviews/{review_id}/delete"): "signed_in",
    ("GET", "/books/new"): "editor",
    ("POST", "/books/new"): "editor",
    ("GET", "/books/{book_id}/edit"): "editor",
    ("POST", "/books/{book_id}/edit"): "editor",
    ("GET", "/books/{book_id}/delete"): "admin",
    ("POST", "/books/{book_id}/delete"): "admin",
    ("GET", "/books/import"): "editor",
    ("POST", "/books/import"): "editor",
    ("GET", "/sign-in"): "public",
    ("POST", "/sign-in"): "form",
    ("POST", "/sign-out"): "form",
    ("GET", "/register"): "public",
    ("POST", "/register"): "form",
    ("GET", "/forgot-password"): "public",
    ("POST", "/forgot-password"): "form",
    ("GET", "/resend-verification"): "public",
    ("POST", "/resend-verification"): "form",
    ("GET", "/verify-email"): "public",
    ("POST", "/verify-email"): "form",
    ("GET", "/reset-password"): "public",
    ("POST", "/reset-password"): "form",
    ("GET", "/cancel-email-change"): "public",
    ("POST", "/cancel-email-change"): "form",
    ("GET", "/account"): "signed_in",
    ("POST", "/account/name"): "signed_in",
    ("POST", "/account/password"): "signed_in",
    ("POST", "/account/email"): "signed_in",
    ("POST", "/account/sign-out-everywhere"): "signed_in",
    ("GET", "/admin/users"): "admin",
    ("POST", "/admin/users/{user_id}"): "admin",
}
ROUTES = [
    (method, route.path)  # type: ignore[attr-defined]
    for router in PAGE_ROUTERS
    for route in router.routes
    for method in sorted(route.methods)  # type: ignore[attr-defined]
]
RANK = {"reader": 0, "editor": 1, "admin": 2}
REQUIRED_RANK = {"signed_in": 0, "editor": 1, "admin": 2}
# Who visits: nobody, each role, and cookies that name no usable session.
VISITORS = ("anonymous", "reader", "editor", "admin", "deactivated", "signed_out", "forged")
NOBODY = {"anonymous", "deactivated", "signed_out", "forged"}
# A form's answer when it is taken: a redirect to the result, or a page that says what was done.
PAGE_ANSWERS = {
    ("POST", "/books/{book_id}/delete"),
    ("POST", "/books/import"),
    ("POST", "/register"),
    ("POST", "/forgot-password"),
    ("POST", "/resend-verification"),
    ("POST", "/verify-email"),
    ("POST", "/reset-password"),
    ("POST", "/cancel-email-change"),
    ("POST", "/account/email"),
}


def success(method: str, path: str) -> int:
    return 200 if method == "GET" or (method, path) in PAGE_ANSWERS else 303


Form = Callable[[World, str], Awaitable[dict[str, Any]]]


def _fixed(make: Callable[[], dict[str, Any]]) -> Form:
    async def form(_world: World, _visitor: str) -> dict[str, Any]:
        return make()

    return form


def _book_form() -> dict[str, Any]:
    payload = book_payload()
    return {
        "data": {
            **{k: str(v) for k, v in payload.items() if k not in ("authors", "subjects")},
            "authors": "\n".join(payload["authors"]),
            "subjects": "\n".join(payload["subjects"]),
        }
    }


def _link(purpose: Purpose, name: str, **extra: str) -> Form:
    async def form(world: World, _visitor: str) -> dict[str, Any]:
        return {"data": {"token": await world.account_token(name, purpose), **extra}}

    return form


async def _sign_in(world: World, _visitor: str) -> dict[str, Any]:
    target = world.users["target"]
    return {"data": {"email": target.email, "password": target.password}}


async def _password(world: World, visitor: str) -> dict[str, Any]:
    known = world.users[visitor].password if visitor in world.users else "unknown"
    return {"data": {"current_password": known, "password": known}}


async def _email(world: World, visitor: str) -> dict[str, Any]:
    known = world.users[visitor].password if visitor in world.users else "unknown"
    address = f"moved-{uuid.uuid4().hex[:8]}@example.org"
    return {"data": {"email": address, "current_password": known}}


def _address() -> dict[str, Any]:
    return {"data": {"email": f"someone-{uuid.uuid4().hex[:8]}@example.org"}}


FORMS: dict[tuple[str, str], Form] = {
    ("POST", "/books/new"): _fixed(_book_form),
    ("POST", "/books/{book_id}/edit"): _fixed(
        lambda: {"data": {**_book_form()["data"], "version": "1"}}
    ),
    ("POST", "/books/{book_id}/delete"): _fixed(lambda: {"data": {"version": "1"}}),
    ("POST", "/books/import"): _fixed(
        lambda: {
            "data": {"mode": "partial"},
            "files": {"file": ("b.ndjson", json.dumps(book_payload()).encode(), "text/plain")},
        }
    ),
    ("POST", "/books/{book_id}/reviews"): _fixed(lambda: {"data": {"rating": "4"}}),
    ("POST", "/books/{book_id}/reviews/{review_id}"): _fixed(lambda: {"data": {"rating": "2"}}),
    ("POST", "/sign-in"): _sign_in,
    ("POST", "/register"): _fixed(
        lambda: {
            "data": {
                "email": f"new-{uuid.uuid4().hex[:8]}@example.org",
                "password": f"another long passphrase {uuid.uuid4().hex}",
            }
        }
    ),
    ("POST", "/forgot-password"): _fixed(_address),
    ("POST", "/resend-verification"): _fixed(_address),
    ("POST", "/verify-email"): _link(Purpose.VERIFY_EMAIL, "target"),
    ("POST", "/reset-password"): _link(
        Purpose.RESET_PASSWORD, "resetter", new_password=f"a new passphrase {uuid.uuid4().hex}"
    ),
    ("POST", "/cancel-email-change"): _link(Purpose.CANCEL_EMAIL_CHANGE, "canceller"),
    ("POST", "/account/name"): _fixed(lambda: {"data": {"display_name": "Renamed"}}),
    ("POST", "/account/password"): _password,
    ("POST", "/account/email"): _email,
    ("POST", "/admin/users/{user_id}"): _fixed(
        lambda: {"data": {"change": "role", "value": "reader"}}
    ),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The app, with the API matrix's accounts, running for the whole module."""
    async with running_world(request.param, tmp_path_factory, "web_matrix") as state:
        yield state


async def cookie_for(world: World, visitor: str) -> str | None:
    """The session cookie a visitor's browser holds."""
    if visitor == "anonymous":
        return None
    name = {"signed_out": "reader", "forged": "reader"}.get(visitor, visitor)
    _, _, session_id = await world.session(name)
    token = world.app.state.site.sessions.issue(world.users[name].id, session_id)
    if visitor == "signed_out":
        async with unit_of_work(world.database, write=True) as connection:
            await sessions.revoke_session(connection, session_id)
    return tampered(token) if visitor == "forged" else token


async def path_for(world: World, path: str, visitor: str) -> str:
    values: dict[str, str] = {"name": world.app.state.site.assets.names[0]}
    if "{book_id}" in path:
        values["book_id"] = await world.new_book()
    if "{review_id}" in path:
        author = visitor if visitor in RANK else "author"
        values["review_id"] = await world.new_review(values["book_id"], author)
    if "{user_id}" in path:
        values["user_id"] = str(world.users["target"].id)
    return path.format(**values)


async def visit(
    world: World, method: str, path: str, visitor: str, *, url: str | None = None
) -> httpx.Response:
    url = url or await path_for(world, path, visitor)
    async with Browser(world.app) as browser:
        cookie = await cookie_for(world, visitor)
        if cookie is not None:
            browser.set_session_cookie(cookie)
        if method == "GET":
            return await browser.get(url)
        await browser.get("/sign-in")  # the visit's form token
        form = await FORMS[(method, path)](world, visitor) if (method, path) in FORMS else {}
        return await browser.post(url, form.get("data", {}), files=form.get("files"))


def test_every_route_has_a_policy_and_every_form_a_body() -> None:
    assert sorted(set(ROUTES) - set(POLICY)) == [], "page routes without a policy entry"
    assert sorted(set(POLICY) - set(ROUTES)) == [], "policy entries without a route"
    assert set(FORMS) <= {route for route in ROUTES if route[0] == "POST"}


@pytest.mark.parametrize("visitor", VISITORS)
@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.asyncio(loop_scope="module")
async def test_access(world: World, route: tuple[str, str], visitor: str) -> None:
    method, path = route
    policy = POLICY[route]
    response = await visit(world, method, path, visitor)
    if policy in {"public", "form"} or (
        visitor not in NOBODY and RANK[visitor] >= REQUIRED_RANK[policy]
    ):
        assert response.status_code == success(method, path), response.text
    elif visitor in NOBODY:
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith("/sign-in")
    else:
        assert response.status_code == 403, response.text
        assert f"This needs the {policy} role." in response.text


WRITES = [route for route in ROUTES if route[0] == "POST" and POLICY[route] != "form"]
# What an account whose address is not confirmed may still do (the API's rule).
UNVERIFIED_MAY = {("POST", "/account/sign-out-everywhere")}


@pytest.mark.parametrize("route", WRITES, ids=[f"{m} {p}" for m, p in WRITES])
@pytest.mark.asyncio(loop_scope="module")
async def test_an_unverified_account_reads_but_does_not_write(
    world: World, route: tuple[str, str]
) -> None:
    method, path = route
    url = await path_for(world, path, "admin")  # its review is written while still verified
    async with unit_of_work(world.database, write=True) as connection:
        await connection.execute(
            update(users).where(users.c.id == world.users["admin"].id).values(email_verified=False)
        )
    try:
        response = await visit(world, method, path, "admin", url=url)
        reading = await visit(world, "GET", "/account", "admin")
    finally:
        async with unit_of_work(world.database, write=True) as connection:
            await connection.execute(
                update(users)
                .where(users.c.id == world.users["admin"].id)
                .values(email_verified=True)
            )
    if route in UNVERIFIED_MAY:
        assert response.status_code == success(method, path), response.text
    else:
        assert response.status_code == 403, response.text
        assert "Confirm your email address first" in response.text
    assert reading.status_code == 200
