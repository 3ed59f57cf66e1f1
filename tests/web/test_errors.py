"""Every error a browser can meet on a page is a readable page of the same status, with its
headers (Retry-After, Allow) and the pages' security headers: never JSON, never a trace. The
API's answers stay problems."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from bookshelf.config import Settings
from bookshelf.ops.headers import PAGE_CSP
from bookshelf.users.schemas import Role
from tests.conftest import AccountFactory
from tests.factories import assert_problem
from tests.ops.support import random_address, started
from tests.web.support import Browser, heading

HTML = "text/html; charset=utf-8"


def assert_page(response: httpx.Response, status: int, title: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == HTML
    assert response.headers["content-security-policy"] == PAGE_CSP.decode()
    assert response.headers["cache-control"] == "no-store"
    assert heading(response) == title
    assert "Traceback" not in response.text
    assert '"type":' not in response.text


async def test_unknown_pages_and_books_are_404_pages(browser: Browser) -> None:
    assert_page(await browser.get("/no/such/page"), 404, "Page not found")
    assert_page(await browser.get("/books/not-an-id"), 404, "Page not found")
    missing = await browser.get("/books/0b6f3d1e-4a52-4c8e-9f10-2d7a5c9e8b41")
    assert_page(missing, 404, "Page not found")
    assert "No book has the id" in missing.text
    api = await browser.client.get("/api/v1/nope")
    assert_problem(api, 404, "about:blank")


async def test_a_role_that_is_not_enough_is_a_403_page(
    browser: Browser, make_account: AccountFactory
) -> None:
    browser.sign_in_as(await make_account(Role.READER))
    response = await browser.get("/books/new")
    assert_page(response, 403, "Not allowed")
    assert "This needs the editor role." in response.text


async def test_a_wrong_method_is_a_405_page_that_says_what_is_allowed(browser: Browser) -> None:
    response = await browser.client.put("/sign-in")
    assert_page(response, 405, "Not allowed here")
    assert response.headers["allow"] == "GET, HEAD, POST"


async def test_a_bad_cursor_is_a_422_page(browser: Browser) -> None:
    response = await browser.get("/?cursor=not-a-cursor")
    assert_page(response, 422, "Not valid")


async def test_a_body_over_the_cap_is_a_413_page(browser: Browser, settings: Settings) -> None:
    await browser.get("/sign-in")
    response = await browser.post("/sign-in", {"email": "x" * (settings.max_body_bytes + 1)})
    assert_page(response, 413, "Too large")


async def test_rate_limited_posts_are_a_429_page_with_retry_after(settings: Settings) -> None:
    limited = settings.model_copy(
        update={"rate_limit_enabled": True, "rate_limit_auth": "2/minute"}
    )
    async with started(limited) as app, Browser(app, address=random_address()) as browser:
        await browser.get("/sign-in")
        answers = [
            await browser.post("/sign-in", {"email": "a@example.org", "password": "wrong"})
            for _ in range(3)
        ]
        page_still_served = await browser.get("/sign-in")
    assert [a.status_code for a in answers] == [400, 400, 429]
    assert_page(answers[2], 429, "Too many requests")
    retry_after = answers[2].headers["retry-after"]
    assert int(retry_after) >= 1
    assert f"Try again in {retry_after} seconds" in answers[2].text
    assert page_still_served.status_code == 200  # the default budget is another


async def test_a_busy_search_is_a_503_page_with_retry_after(settings: Settings) -> None:
    busy = settings.model_copy(update={"search_concurrency": 1, "search_wait_seconds": 0.05})
    async with started(busy) as app, Browser(app) as browser:
        await app.state.search_slots.take()
        try:
            response = await browser.get("/?q=dune")
        finally:
            app.state.search_slots.give_back()
    assert_page(response, 503, "Temporarily unavailable")
    assert response.headers["retry-after"] == "1"


async def test_a_page_past_the_time_limit_is_a_503_page(settings: Settings) -> None:
    async def slow() -> None:
        await asyncio.sleep(2)

    timed = settings.model_copy(update={"request_timeout_seconds": 0.2})
    async with started(timed) as app, Browser(app) as browser:
        app.add_api_route("/a-slow-page", slow, include_in_schema=False)
        response = await browser.get("/a-slow-page")
    assert_page(response, 503, "Temporarily unavailable")
    assert response.headers["retry-after"] == "1"


async def test_an_unexpected_error_is_a_500_page_with_the_pages_headers(
    settings: Settings,
) -> None:
    async def explode() -> None:
        raise RuntimeError("boom: select secret from credentials")

    async with started(settings.model_copy(update={"json_logs": True})) as app:
        app.add_api_route("/a-broken-page", explode, include_in_schema=False)
        async with Browser(app) as browser:
            response = await browser.get("/a-broken-page")
    assert_page(response, 500, "Something went wrong")
    assert "select secret" not in response.text
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-request-id"] in response.text


@pytest.mark.parametrize("path", ["/", "/sign-in", "/books/import"])
async def test_head_of_a_page_has_no_body(app: FastAPI, browser: Browser, path: str) -> None:
    got = await browser.client.get(path)
    head = await browser.client.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
