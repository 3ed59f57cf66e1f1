"""The web app's defences: CSRF tokens and the Origin check on every post (a refused post
changes nothing), the cookies' attributes, and the security headers of every page."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.config import Settings
from bookshelf.ops.headers import PAGE_CSP
from bookshelf.reviews.models import reviews
from bookshelf.users.schemas import Role
from bookshelf.web.install import PAGE_ROUTERS
from tests.conftest import AccountFactory, make_settings
from tests.factories import bearer, count_rows, create_book, post_review
from tests.ops.support import started
from tests.web.support import Browser, heading, set_cookies

PAGE_HEADERS = {
    "content-security-policy": PAGE_CSP.decode(),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert heading(response) == "Not allowed"
    assert "out of date" in response.text


@pytest.fixture
async def reader_browser(app: FastAPI, make_account: AccountFactory) -> Browser:
    browser = Browser(app)
    browser.sign_in_as(await make_account(Role.READER))
    return browser


async def _book_id(client: httpx.AsyncClient) -> str:
    return str((await create_book(client))["id"])


# --- CSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "not-the-token", "A" * 43])
async def test_a_post_without_the_right_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, reader_browser: Browser, engine: AsyncEngine, token: str | None
) -> None:
    book_id = await _book_id(client)
    await reader_browser.get(f"/books/{book_id}")

    refused = await reader_browser.post(
        f"/books/{book_id}/reviews", {"rating": "5", "body": "Forged."}, token=token
    )
    accepted = await reader_browser.post(
        f"/books/{book_id}/reviews", {"rating": "5", "body": "Mine."}
    )

    assert_refused(refused)
    assert accepted.status_code == 303, accepted.text
    assert await count_rows(engine, reviews) == 1  # the accepted one only


async def test_a_token_shown_before_signing_in_is_refused_after(
    app: FastAPI, client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book_id = await _book_id(client)
    account = await make_account(Role.READER)
    async with Browser(app) as browser:
        await browser.get(f"/books/{book_id}")
        before = browser.token
        signed_in = await browser.submit(
            "/sign-in", "/sign-in", {"email": account.email, "password": account.password}
        )
        assert signed_in.status_code == 303, signed_in.text

        old = await browser.post(f"/books/{book_id}/reviews", {"rating": "4"}, token=before)
        await browser.get(f"/books/{book_id}")
        assert browser.token != before
        fresh = await browser.post(f"/books/{book_id}/reviews", {"rating": "4"})

    assert_refused(old)
    assert fresh.status_code == 303
    assert await count_rows(engine, reviews) == 1


async def test_a_token_of_another_session_is_refused(
    app: FastAPI, client: httpx.AsyncClient, make_account: AccountFactory, engine: AsyncEngine
) -> None:
    book_id = await _book_id(client)
    mallory, alice = await make_account(Role.READER), await make_account(Role.READER)
    async with Browser(app) as attacker, Browser(app) as victim:
        attacker.sign_in_as(mallory)
        victim.sign_in_as(alice)
        await attacker.get(f"/books/{book_id}")
        await victim.get(f"/books/{book_id}")
        forged = await victim.post(
            f"/books/{book_id}/reviews", {"rating": "1"}, token=attacker.token
        )
    assert_refused(forged)
    assert await count_rows(engine, reviews) == 0


async def test_signing_out_needs_the_token(reader_browser: Browser) -> None:
    await reader_browser.get("/account")
    refused = await reader_browser.post("/sign-out", token=None)
    still_in = await reader_browser.get("/account")
    assert_refused(refused)
    assert still_in.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver"},  # the same host over another scheme: another origin
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["other-site", "null", "other-scheme", "sec-fetch-site"],
)
async def test_a_post_from_another_origin_is_refused_even_with_the_token(
    client: httpx.AsyncClient,
    reader_browser: Browser,
    engine: AsyncEngine,
    headers: dict[str, str],
) -> None:
    book_id = await _book_id(client)
    await reader_browser.get(f"/books/{book_id}")
    sent = dict(headers)
    origin = sent.pop("Origin", None)
    refused = await reader_browser.post(
        f"/books/{book_id}/reviews", {"rating": "2"}, origin=origin, headers=sent
    )
    assert_refused(refused)
    assert await count_rows(engine, reviews) == 0


async def test_a_post_without_origin_is_judged_by_its_token(
    client: httpx.AsyncClient, reader_browser: Browser, engine: AsyncEngine
) -> None:
    """An old browser (or a proxy that drops the header): the token alone decides."""
    book_id = await _book_id(client)
    await reader_browser.get(f"/books/{book_id}")
    same_site = await reader_browser.post(
        f"/books/{book_id}/reviews",
        {"rating": "3"},
        origin=None,
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert same_site.status_code == 303, same_site.text
    assert await count_rows(engine, reviews) == 1


async def test_the_public_url_is_an_accepted_origin(
    database_url: str, make_account: AccountFactory
) -> None:
    settings = make_settings(database_url, public_url="https://books.example.org")
    async with started(settings) as app, Browser(app) as browser:
        await browser.get("/sign-in")
        response = await browser.post(
            "/sign-in",
            {"email": "nobody@example.org", "password": "wrong"},
            origin="https://books.example.org",
        )
    assert response.status_code == 400  # the form was taken: a wrong password, not a 403
    assert "The email or password is wrong." in response.text


# --- cookies ----------------------------------------------------------------------------------


async def test_session_and_form_cookies_are_host_only_secure_http_only_and_lax(
    browser: Browser, make_account: AccountFactory
) -> None:
    account = await make_account(Role.READER)
    shown = await browser.get("/sign-in")
    signed_in = await browser.post(
        "/sign-in", {"email": account.email, "password": account.password, "next": "/account"}
    )

    form_cookie = set_cookies(shown)["__Host-bookshelf_csrf"]
    cookies = set_cookies(signed_in)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/account"
    assert set(cookies) == {"__Host-bookshelf_session", "__Host-bookshelf_csrf"}
    for line in [form_cookie, *cookies.values()]:
        attributes = [part.strip().lower() for part in line.split(";")[1:]]
        assert "httponly" in attributes, line
        assert "secure" in attributes, line
        assert "samesite=lax" in attributes, line
        assert "path=/" in attributes, line
        assert not [a for a in attributes if a.startswith("domain")], line
    assert "max-age=2592000" in cookies["__Host-bookshelf_session"].lower()


async def test_in_development_cookies_work_over_plain_http(
    database_url: str, make_account: AccountFactory
) -> None:
    """``python3 dev.py serve`` is plain http on 127.0.0.1: no Secure, so no __Host- prefix."""
    settings = make_settings(database_url, environment="development")
    async with started(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as plain:
            shown = await plain.get("/sign-in")
    line = set_cookies(shown)["bookshelf_csrf"]
    assert "secure" not in line.lower()
    assert "httponly" in line.lower()


async def test_the_session_cookie_is_no_bearer_token_for_the_api(
    app: FastAPI, browser: Browser, make_account: AccountFactory
) -> None:
    account = await make_account(Role.READER)
    browser.sign_in_as(account)
    cookie = browser.cookie(app.state.site.cookies.session)
    assert cookie is not None
    response = await browser.client.get("/api/v1/users/me", headers=bearer(cookie))
    assert response.status_code == 401


async def test_a_session_signed_out_through_the_api_is_gone_from_the_browser(
    browser: Browser, make_account: AccountFactory
) -> None:
    account = await make_account(Role.READER)
    browser.sign_in_as(account)
    assert (await browser.get("/account")).status_code == 200
    logout = await browser.client.post("/api/v1/auth/logout", headers=account.headers)
    after = await browser.get("/account")
    assert logout.status_code == 204
    assert after.status_code == 303
    assert after.headers["location"] == "/sign-in?next=%2Faccount"
    assert "max-age=0" in set_cookies(after)["__Host-bookshelf_session"].lower()


# --- headers on every page --------------------------------------------------------------------


def _page_paths(app: FastAPI, ids: dict[str, str]) -> list[str]:
    paths = []
    for router in PAGE_ROUTERS:
        for route in router.routes:
            methods = getattr(route, "methods", set())
            if "GET" in methods:
                paths.append(route.path.format(**ids))  # type: ignore[attr-defined]
    return paths


async def test_every_page_has_the_strict_headers_and_no_inline_script_or_style(
    app: FastAPI, client: httpx.AsyncClient, make_account: AccountFactory
) -> None:
    book = await create_book(client)
    admin = await make_account(Role.ADMIN)
    await post_review(client, book["id"], admin.headers, body="<script>alert(1)</script>")
    ids = {"book_id": book["id"], "name": app.state.site.assets.names[0]}
    async with Browser(app) as anonymous, Browser(app) as signed_in:
        signed_in.sign_in_as(admin)
        seen = []
        for path in _page_paths(app, ids):
            for browser in (anonymous, signed_in):
                response = await browser.get(path)
                seen.append((path, response.status_code))
                for name, value in PAGE_HEADERS.items():
                    assert response.headers.get(name) == value, (path, name)
                if response.headers.get("content-type", "").startswith("text/html"):
                    assert "<script" not in response.text, path
                    assert not re.search(r"\sstyle=", response.text), path
                    assert "unsafe-inline" not in response.headers["content-security-policy"]
        # The review's text is shown escaped, never run.
        page = await anonymous.client.get(f"/books/{book['id']}")
    assert ("/account", 200) in seen
    assert ("/account", 303) in seen
    assert (f"/books/{book['id']}", 200) in seen
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_hsts_on_pages_over_https(settings: Settings) -> None:
    async with started(settings) as app, Browser(app) as browser:
        response = await browser.get("/")
    assert response.headers["strict-transport-security"].startswith("max-age=")
