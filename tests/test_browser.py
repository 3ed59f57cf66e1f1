"""End to end in a real browser: an editor signs in through Swagger UI's Authorize dialog (OAuth2
password flow) and adds a book with "Try it out".

The app runs in a real uvicorn server (a background thread, a free port of 127.0.0.1) on a fresh
SQLite file; the browser is Debian's Chromium driven by Playwright's sync API (Playwright cannot
download its own browsers here). Without a Chromium the test is skipped, except under
CI=true, where it fails. Every wait is bounded; on failure a screenshot is saved in tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, expect, sync_playwright
from sqlalchemy import select

from bookshelf.books.models import books
from bookshelf.db.engine import create_engine
from bookshelf.main import create_app
from bookshelf.users.schemas import Role
from tests.conftest import database_account, make_settings, migrate_database
from tests.factories import Account, book_payload
from tests.servers import running_server

pytestmark = pytest.mark.browser

# Debian's chromium here; BOOKSHELF_TEST_CHROMIUM names another build (e.g. on CI runners).
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
UI_TIMEOUT_MS = 5_000
# Swagger UI's id of an operation's block: operations-{tag}-{operationId}.
CREATE_BOOK_BLOCK = "#operations-books-create_book"


@pytest.fixture
def chromium() -> Path:
    configured = os.environ.get("BOOKSHELF_TEST_CHROMIUM")
    found = configured or next(filter(None, map(shutil.which, CHROMIUM_CANDIDATES)), None)
    if found is None or not Path(found).exists():
        reason = "no Chromium found (apt-get install chromium); Playwright cannot download one"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: the browser test must run)")
        pytest.skip(reason)
    return Path(found)


@pytest.fixture
async def database_file_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'browser.db'}"
    await migrate_database(url)
    return url


@pytest.fixture
async def editor(database_file_url: str) -> Account:
    return await database_account(database_file_url, Role.EDITOR, display_name="Browser Editor")


@pytest.fixture
def server_url(database_file_url: str) -> Iterator[str]:
    """A real uvicorn server on a free port of 127.0.0.1, in a background thread."""
    with running_server(create_app(make_settings(database_file_url))) as url:
        yield url


async def _books_titled(url: str, title: str) -> list[tuple[str, uuid.UUID | None]]:
    engine = create_engine(make_settings(url))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(books.c.title, books.c.created_by).where(books.c.title == title)
            )
            return [(row.title, row.created_by) for row in rows]
    finally:
        await engine.dispose()


def button(scope: Locator, label: str) -> Locator:
    """The button whose visible text is ``label`` (Swagger UI's aria-labels say other things)."""
    return scope.locator("button").filter(has_text=re.compile(rf"^\s*{label}\s*$"))


def test_an_editor_adds_a_book_through_swagger_ui(
    chromium: Path,
    server_url: str,
    editor: Account,
    database_file_url: str,
    tmp_path: Path,
) -> None:
    payload = book_payload(title=f"Added from Swagger UI {uuid.uuid4().hex[:8]}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.set_default_navigation_timeout(UI_TIMEOUT_MS)
            try:
                page.goto(f"{server_url}/docs")

                # Sign in: the Authorize dialog's OAuth2 password flow.
                button(page.locator(".auth-wrapper"), "Authorize").click()
                dialog = page.locator(".dialog-ux .modal-ux")
                expect(dialog).to_be_visible()
                dialog.locator("#oauth_username").fill(editor.email)
                dialog.locator("#oauth_password").fill(editor.password)
                button(dialog, "Authorize").click()
                # Signed in: the dialog says so and offers Logout instead of Authorize.
                expect(dialog.get_by_text("Authorized", exact=True)).to_be_visible()
                expect(button(dialog, "Logout")).to_be_visible()
                button(dialog, "Close").click()
                expect(dialog).to_be_hidden()

                # Try it out: POST /api/v1/books with a valid book.
                block = page.locator(CREATE_BOOK_BLOCK)
                block.locator(".opblock-summary").first.click()
                block.locator("button.try-out__btn").click()
                block.locator("textarea.body-param__text").fill(json.dumps(payload))
                block.locator("button.execute").click()

                status = block.locator(".live-responses-table tbody .response-col_status")
                expect(status).to_have_text("201", timeout=UI_TIMEOUT_MS)
                body = block.locator(
                    ".live-responses-table tbody .response-col_description pre"
                ).first
                expect(body).to_contain_text(payload["title"])
            except BaseException as error:
                screenshot = tmp_path / "swagger-ui-failure.png"
                with contextlib.suppress(PlaywrightError):
                    page.screenshot(path=str(screenshot), full_page=True, timeout=UI_TIMEOUT_MS)
                    error.add_note(f"screenshot of the page: {screenshot}")
                raise
        finally:
            browser.close()

    assert asyncio.run(_books_titled(database_file_url, payload["title"])) == [
        (payload["title"], editor.id)
    ]
